"""Silhouette antialiasing in pure PyTorch, after nvdiffrast's analytic method.

A hard-edged render has no gradient with respect to where a silhouette lies: moving an edge
by less than a pixel changes no pixel. Here, for every pair of neighbouring pixels (left and
right, top and bottom) covered by different triangles, the silhouette edge of the nearer
triangle that separates them is found; the fraction of the way along the pair where it
crosses decides how much of one pixel's colour blends into the other, as a box filter across
the edge would. That fraction is computed from the vertex positions with differentiable ops,
so a mask or colour loss moves silhouette vertices.

Only silhouette edges blend: an edge counts when no triangle lies across it, or the one that
does faces the other way in this view. Edges inside a smooth surface are left alone, so
small triangles do not turn into noise. Unlike nvdiffrast, only the first edge the pair's
segment leaves the nearer triangle by is considered.
"""

from __future__ import annotations

import torch

from recon_runner.render.interface import batched_positions

_EDGE_START = [0, 1, 2]
_EDGE_END = [1, 2, 0]
_EDGE_OPPOSITE = [2, 0, 1]


def edge_neighbours(tri: torch.Tensor) -> torch.Tensor:
    """[F,3]: the face across edge k (corners k, k+1) of each face; -1 on an open or
    non-manifold edge. Computed once per topology (the renderer caches it)."""
    tri = tri.long()
    n_faces = tri.shape[0]
    a, b = tri[:, _EDGE_START].reshape(-1), tri[:, _EDGE_END].reshape(-1)
    lo, hi = torch.minimum(a, b), torch.maximum(a, b)
    key = lo * (int(tri.max().item()) + 1 if n_faces else 1) + hi  # one integer per edge
    order = torch.argsort(key)
    sorted_key = key[order]
    same_next = torch.zeros_like(sorted_key, dtype=torch.bool)
    same_next[:-1] = sorted_key[1:] == sorted_key[:-1]
    _, inverse, counts = torch.unique_consecutive(
        sorted_key, return_inverse=True, return_counts=True
    )
    multiplicity = counts[inverse]
    neighbour = torch.full((n_faces * 3,), -1, dtype=torch.long, device=tri.device)
    pair = torch.nonzero(same_next & (multiplicity == 2)).squeeze(1)
    first, second = order[pair], order[pair + 1]
    neighbour[first] = torch.div(second, 3, rounding_mode="floor")
    neighbour[second] = torch.div(first, 3, rounding_mode="floor")
    return neighbour.reshape(n_faces, 3)


def antialias(
    color: torch.Tensor,
    rast: torch.Tensor,
    pos: torch.Tensor,
    tri: torch.Tensor,
    neighbours: torch.Tensor | None = None,
) -> torch.Tensor:
    """color [B,H,W,C] with silhouette pixels blended; differentiable in color and pos."""
    pos = batched_positions(pos)
    tri = tri.to(device=pos.device, dtype=torch.long)
    if neighbours is None:
        neighbours = edge_neighbours(tri)
    batch, height, width, channels = color.shape
    face = rast[..., 3].detach().long() - 1  # [B,H,W]
    depth = rast[..., 2].detach()
    flat_color = color.reshape(-1, channels)
    deltas = []
    for axis in (2, 1):  # neighbours along a row, then along a column
        first = face.narrow(axis, 0, face.shape[axis] - 1)
        second = face.narrow(axis, 1, face.shape[axis] - 1)
        differs = torch.nonzero(first != second)
        if len(differs) == 0:
            continue
        b, row, col = differs.unbind(1)
        row2, col2 = (row, col + 1) if axis == 2 else (row + 1, col)
        pix_a = (b * height + row) * width + col
        pix_b = (b * height + row2) * width + col2
        deltas.append(
            _pair_deltas(
                flat_color,
                pos,
                tri,
                neighbours,
                face,
                depth,
                b,
                pix_a,
                pix_b,
                height,
                width,
                across_rows=axis == 2,
            )
        )
    if not deltas:
        return color
    index = torch.cat([d[0] for d in deltas])
    values = torch.cat([d[1] for d in deltas])
    return flat_color.index_add(0, index, values).reshape(batch, height, width, channels)


def _ndc(pix: torch.Tensor, height: int, width: int, dtype: torch.dtype) -> torch.Tensor:
    row = torch.div(pix, width, rounding_mode="floor") % height
    col = pix % width
    return torch.stack(
        [(2.0 * col.to(dtype) + 1.0) / width - 1.0, (2.0 * row.to(dtype) + 1.0) / height - 1.0],
        dim=1,
    )


def _pair_deltas(
    flat_color: torch.Tensor,
    pos: torch.Tensor,
    tri: torch.Tensor,
    neighbours: torch.Tensor,
    face: torch.Tensor,
    depth: torch.Tensor,
    b: torch.Tensor,
    pix_a: torch.Tensor,
    pix_b: torch.Tensor,
    height: int,
    width: int,
    across_rows: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Colour changes (pixel index, delta) for the given neighbouring pixel pairs.

    Each edge is handled by one kind of pair only: left-right pairs for edges steeper than
    45 degrees, top-bottom pairs for the others. Then an edge moving by d pixels changes one
    pixel per row (or column) by d, which is how the covered area changes, so the gradient
    has the area's magnitude rather than up to twice it."""
    face_flat, depth_flat = face.reshape(-1), depth.reshape(-1)
    fa, fb = face_flat[pix_a], face_flat[pix_b]
    # The nearer triangle owns the edge between them; background is farthest of all.
    a_front = (fb < 0) | ((fa >= 0) & (depth_flat[pix_a] <= depth_flat[pix_b]))
    inner = torch.where(a_front, pix_a, pix_b)
    outer = torch.where(a_front, pix_b, pix_a)
    owner = torch.where(a_front, fa, fb)

    corners = pos[b.unsqueeze(1), tri[owner]]  # [N,3,4]
    w = corners[..., 3:]
    ok = (w.detach() > 0).all(dim=1).squeeze(1)
    screen = corners[..., :2] / torch.where(w > 0, w, torch.ones_like(w))  # [N,3,2] NDC
    p_in = _ndc(inner, height, width, pos.dtype)
    p_out = _ndc(outer, height, width, pos.dtype)

    start, end, third = screen[:, _EDGE_START], screen[:, _EDGE_END], screen[:, _EDGE_OPPOSITE]
    edge = end - start

    def side(p: torch.Tensor) -> torch.Tensor:
        rel = p - start
        return edge[..., 0] * rel[..., 1] - edge[..., 1] * rel[..., 0]

    orient = torch.sign(side(third).detach())
    f_in = side(p_in.unsqueeze(1)) * orient  # [N,3], >= 0 inside
    f_out = side(p_out.unsqueeze(1)) * orient
    crossing = (f_in.detach() >= 0) & (f_out.detach() < 0)
    t = f_in / torch.where(crossing, f_in - f_out, torch.ones_like(f_in))
    t_choice = torch.where(crossing, t.detach(), torch.full_like(t.detach(), 2.0))
    first_edge = t_choice.argmin(dim=1)
    rows = torch.arange(len(owner), device=pos.device)
    has_edge = crossing[rows, first_edge] & ok

    across = neighbours[owner, first_edge]
    silhouette = across < 0
    if bool((~silhouette).any()):
        facing_owner = _facing(pos, tri, b, owner)
        facing_across = _facing(pos, tri, b, across.clamp(min=0))
        silhouette |= facing_owner != facing_across
    chosen = edge[rows, first_edge].detach()
    steep = (chosen[:, 0] * width).abs() <= (chosen[:, 1] * height).abs()
    keep = has_edge & silhouette & (steep if across_rows else ~steep)
    rows = rows[keep]
    t_kept = t[rows, first_edge[keep]].clamp(0.0, 1.0).unsqueeze(1)
    c_in, c_out = flat_color[inner[keep]], flat_color[outer[keep]]
    # Box filter across the edge: the inner pixel loses what the edge leaves uncovered of its
    # span (t < 1/2); the outer pixel gains what the triangle reaches into its span (t > 1/2).
    into_inner = torch.clamp(0.5 - t_kept, min=0.0) * (c_out - c_in)
    into_outer = torch.clamp(t_kept - 0.5, min=0.0) * (c_in - c_out)
    index = torch.cat([inner[keep], outer[keep]])
    return index, torch.cat([into_inner, into_outer])


def _facing(
    pos: torch.Tensor, tri: torch.Tensor, b: torch.Tensor, faces: torch.Tensor
) -> torch.Tensor:
    """Sign of each face's screen-space area in its image (which way it faces the camera)."""
    with torch.no_grad():
        corners = pos[b.unsqueeze(1), tri[faces]]
        w = corners[..., 3:].clamp(min=1e-12)
        s = corners[..., :2] / w
        e1, e2 = s[:, 1] - s[:, 0], s[:, 2] - s[:, 0]
        return torch.sign(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
