"""Rasterization in pure PyTorch, with nvdiffrast's output and gradients.

Two steps. Visibility (which triangle is nearest at each pixel centre) is a discrete
decision with no gradient, so it runs under no_grad, vectorised over (image, triangle)
pairs: the pairs are grouped by the size of their screen bounding box, each group tests a
dense block of candidate pixels against the triangle's edge functions at once, and a
scatter-min over packed (depth, triangle) keys keeps the nearest surface. Then the
barycentrics of the winning triangle are recomputed from `pos` with ordinary differentiable
torch ops, with nvdiffrast's formula, so gradients reach the vertex positions.

Triangles with a vertex at or behind the camera plane (clip w <= 0) are skipped whole rather
than clipped: callers choose the near plane outside the scene (`camera.scene_near_far`).
Fragments with z/w outside [-1, 1] are discarded, like nvdiffrast's depth clipping.
"""

from __future__ import annotations

import torch

from recon_runner.render.interface import batched_positions

# Bounding-box sizes (pixels) that group triangles; a triangle is tested on a square block of
# the next size up, so the spacing bounds the wasted candidates.
_BLOCK_SIZES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
# Candidate (triangle, pixel) pairs tested at once: bounds the memory of one step.
_CANDIDATE_BUDGET = 1 << 21
_NO_HIT = torch.iinfo(torch.int64).max
_W_EPS = 1e-8
_NEXT = [1, 2, 0]
_NEXT_NEXT = [2, 0, 1]


def rasterize(pos: torch.Tensor, tri: torch.Tensor, resolution: tuple[int, int]) -> torch.Tensor:
    """nvdiffrast-compatible rast [B,H,W,4]: (u, v, z/w, triangle index + 1)."""
    pos = batched_positions(pos)
    height, width = int(resolution[0]), int(resolution[1])
    tri_l = tri.to(device=pos.device, dtype=torch.long)
    with torch.no_grad():
        winner = visible_triangles(pos.detach().float(), tri_l, height, width)
    return _rast_from_winners(pos, tri_l, winner, height, width)


def visible_triangles(
    pos: torch.Tensor, tri: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """Index of the nearest triangle at each pixel centre, [B,H,W] int64, -1 for none."""
    batch, n_faces = pos.shape[0], tri.shape[0]
    keys = torch.full((batch * height * width,), _NO_HIT, dtype=torch.int64, device=pos.device)
    if n_faces == 0:
        return torch.full((batch, height, width), -1, dtype=torch.int64, device=pos.device)

    corners = pos.float()[:, tri].reshape(-1, 3, 4)  # [B*F,3,4]
    box_lo, box_size, ok = _screen_boxes(corners, height, width)
    instance = torch.nonzero(ok).squeeze(1)  # flat (image, face) index of faces on screen
    coeffs, regular = _edge_and_depth_functions(corners[instance], height, width)
    instance, coeffs = instance[regular], coeffs[regular]
    box_lo, box_size = box_lo[instance], box_size[instance]
    image = torch.div(instance, n_faces, rounding_mode="floor")
    face = instance - image * n_faces
    size = box_size.max(dim=1).values
    lower = 0
    for block in _BLOCK_SIZES:
        if lower >= max(height, width):
            break
        group = torch.nonzero((size > lower) & (size <= block)).squeeze(1)
        lower = block
        per_chunk = max(1, _CANDIDATE_BUDGET // (block * block))
        for chunk in group.split(per_chunk):
            _scatter_nearest(
                keys,
                block,
                coeffs[chunk],
                box_lo[chunk],
                box_size[chunk],
                image[chunk],
                face[chunk],
                height,
                width,
            )
    winner = keys & 0xFFFFFFFF
    winner = torch.where(keys == _NO_HIT, torch.full_like(winner, -1), winner)
    return winner.reshape(batch, height, width)


def _screen_boxes(
    corners: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clamped box of the pixel centres each triangle can cover, and whether it can cover
    any: cheap, so the costlier set-up below only runs for triangles on screen."""
    x, y, w = corners[..., 0], corners[..., 1], corners[..., 3]
    in_front = (w > _W_EPS).all(-1)
    safe_w = torch.where(w > _W_EPS, w, torch.ones_like(w))
    px = (x / safe_w + 1.0) * (0.5 * width) - 0.5
    py = (y / safe_w + 1.0) * (0.5 * height) - 0.5
    lo_x, hi_x = torch.ceil(px.min(-1).values), torch.floor(px.max(-1).values)
    lo_y, hi_y = torch.ceil(py.min(-1).values), torch.floor(py.max(-1).values)
    ok = in_front & (hi_x >= 0) & (lo_x <= width - 1) & (hi_y >= 0) & (lo_y <= height - 1)
    ok &= (hi_x >= lo_x) & (hi_y >= lo_y)
    lo_x, hi_x = lo_x.clamp(0, width - 1), hi_x.clamp(0, width - 1)
    lo_y, hi_y = lo_y.clamp(0, height - 1), hi_y.clamp(0, height - 1)
    box_lo = torch.stack([lo_x, lo_y], -1).long()
    box_size = torch.stack([hi_x - lo_x + 1, hi_y - lo_y + 1], -1).long()
    return box_lo, box_size, ok


def _edge_and_depth_functions(
    corners: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """[N,4,3]: three edge functions (>= 0 inside) and z/w, each linear in the pixel indices
    as (constant, column, row) coefficients; and which triangles are not degenerate."""
    x, y, z, w = corners.unbind(-1)  # each [N,3]
    # Edge function a_i of nvdiffrast is (c_j x c_k) . (fx, fy, 1) with c = (x, y, w) and
    # (fx, fy) the pixel centre in NDC: A_i*fx + B_i*fy + C_i.
    j, k = _NEXT, _NEXT_NEXT
    xj, yj, wj = x[:, j], y[:, j], w[:, j]
    xk, yk, wk = x[:, k], y[:, k], w[:, k]
    a_coef = yj * wk - wj * yk
    b_coef = wj * xk - xj * wk
    c_coef = xj * yk - yj * xk
    # det(M) = sum_i w_i a_i is constant over the screen: inside means every a_i has its sign.
    det = (w * c_coef).sum(-1)
    regular = det.abs() > 1e-12
    sign = torch.where(det < 0, -1.0, 1.0).to(det.dtype).unsqueeze(-1)
    safe_det = torch.where(regular, det, torch.ones_like(det)).unsqueeze(-1)
    # NDC of pixel centre (px, py) is (2 px + 1) / W - 1; fold that in.
    sx, ox = 2.0 / width, 1.0 / width - 1.0
    sy, oy = 2.0 / height, 1.0 / height - 1.0
    const = c_coef + a_coef * ox + b_coef * oy
    col, row = a_coef * sx, b_coef * sy
    # z/w = sum z_i a_i / det, linear in the pixel too.
    depth = torch.stack([(const * z).sum(-1), (col * z).sum(-1), (row * z).sum(-1)], -1)
    edges = torch.stack([const * sign, col * sign, row * sign], dim=-1)  # [N,3,3]
    return torch.cat([edges, (depth / safe_det).unsqueeze(1)], dim=1), regular


def _scatter_nearest(
    keys: torch.Tensor,
    block: int,
    coef: torch.Tensor,
    lo: torch.Tensor,
    sz: torch.Tensor,
    image: torch.Tensor,
    face: torch.Tensor,
    height: int,
    width: int,
) -> None:
    """Test a block x block grid of pixels at each triangle's box corner; keep the nearest."""
    offs = torch.arange(block, device=keys.device)
    oy, ox = torch.meshgrid(offs, offs, indexing="ij")
    ox, oy = ox.reshape(1, -1), oy.reshape(1, -1)
    px = lo[:, :1] + ox  # [N,S]
    py = lo[:, 1:] + oy
    pxf, pyf = px.float().unsqueeze(1), py.float().unsqueeze(1)
    val = coef[:, :, :1] + coef[:, :, 1:2] * pxf + coef[:, :, 2:3] * pyf  # [N,4,S]
    depth = val[:, 3]
    inside = (val[:, :3] >= 0).all(dim=1)
    inside &= (ox < sz[:, :1]) & (oy < sz[:, 1:])
    inside &= (depth >= -1.0) & (depth <= 1.0)
    sel = inside.nonzero(as_tuple=True)
    pixel = (image[sel[0]] * height + py[sel]) * width + px[sel]
    # Positive floats order like their bit patterns: pack depth above the face index so one
    # integer min picks the nearest fragment (ties: the lower face index).
    depth01 = ((depth[sel] + 1.0) * 0.5).clamp(0.0, 1.0)
    key = (depth01.view(torch.int32).long() << 32) | face[sel[0]]
    keys.scatter_reduce_(0, pixel, key, reduce="amin")


def _rast_from_winners(
    pos: torch.Tensor, tri: torch.Tensor, winner: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """Recompute the winners' barycentrics differentiably, exactly as nvdiffrast does."""
    batch = pos.shape[0]
    flat = winner.reshape(-1)
    pix = torch.nonzero(flat >= 0).squeeze(1)
    face = flat[pix]
    image = torch.div(pix, height * width, rounding_mode="floor")
    rem = pix - image * height * width
    row = torch.div(rem, width, rounding_mode="floor")
    col = rem - row * width
    verts = pos[image.unsqueeze(1), tri[face]]  # [N,3,4]
    fx = (2.0 * col.to(pos.dtype) + 1.0) / width - 1.0
    fy = (2.0 * row.to(pos.dtype) + 1.0) / height - 1.0
    ex = verts[..., 0] - fx.unsqueeze(1) * verts[..., 3]
    ey = verts[..., 1] - fy.unsqueeze(1) * verts[..., 3]
    exj, eyj = ex[:, _NEXT], ey[:, _NEXT]
    exk, eyk = ex[:, _NEXT_NEXT], ey[:, _NEXT_NEXT]
    area = exj * eyk - eyj * exk  # [N,3]: nvdiffrast's a0, a1, a2
    inv = 1.0 / area.sum(1)
    bary = area[:, :2] * inv.unsqueeze(1)
    # nvdiffrast saturates the stored barycentrics but differentiates the unclamped ones.
    bary = bary + (bary.clamp(0.0, 1.0) - bary).detach()
    with torch.no_grad():
        a = area.detach()
        zw = (verts[..., 2].detach() * a).sum(1) / (verts[..., 3].detach() * a).sum(1)
        zw = zw.clamp(-1.0, 1.0)
    values = torch.cat(
        [bary, zw.unsqueeze(1).to(pos.dtype), (face + 1).to(pos.dtype).unsqueeze(1)], dim=1
    )
    rast = torch.zeros(batch * height * width, 4, dtype=pos.dtype, device=pos.device)
    rast = rast.index_put((pix,), values)
    return rast.reshape(batch, height, width, 4)
