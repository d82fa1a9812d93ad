"""Tidying the cut between observed and unobserved faces, so the kept surface ends cleanly.

A per-face visibility test is noisy at its edges: a face smaller than a pixel can be missed by
every view in the middle of a well-seen region (a pinhole), and near a grazing silhouette a
few faces pass on their own (slivers, triangles hanging by one edge, small islands). The
rules here are topological, on edge adjacency, so they are exact and cheap:

1. unobserved components smaller than `pinhole_area` are kept (a pinhole is a miss of the
   test, not a place no camera looked);
2. kept faces with fewer than two kept edge neighbours are dropped, repeatedly, so the
   border is a chain of edges, not a fringe of spikes;
3. kept components under `island_fraction` of the kept area are dropped.

scipy's sparse connected components does the grouping; no mesh library is needed for it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

BoolArray = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

# Passes of the dangling-face rule; each pass peels one layer of a spike.
DANGLING_PASSES = 8


def twin_faces(faces: npt.ArrayLike) -> BoolArray:
    """[F] bool: faces whose three corners another face also has. Decimation can leave such
    a pair (a face and its reversed copy); together they enclose nothing and make their
    edges non-manifold, so both are dropped before the surface is cut or closed."""
    f = np.sort(np.asarray(faces, dtype=np.int64), axis=1)
    _, inverse, counts = np.unique(f, axis=0, return_inverse=True, return_counts=True)
    twin: BoolArray = counts[inverse.reshape(-1)] > 1
    return twin


def edge_neighbours(faces: npt.ArrayLike) -> I64:
    """[F,3] index of the face across each edge (edge k runs from corner k to k+1), -1 on a
    boundary edge or where more than two faces share the edge (non-manifold)."""
    f = np.asarray(faces, dtype=np.int64)
    count = len(f)
    edges = np.stack([f, np.roll(f, -1, axis=1)], axis=2).reshape(-1, 2)
    key = np.sort(edges, axis=1)
    _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    owner = np.arange(3 * count) // 3
    order = np.argsort(inverse, kind="stable")
    neighbour = np.full(3 * count, -1, dtype=np.int64)
    sorted_edges = inverse[order]
    pair = (sorted_edges[:-1] == sorted_edges[1:]) & (counts[sorted_edges[:-1]] == 2)
    first, second = order[:-1][pair], order[1:][pair]
    neighbour[first] = owner[second]
    neighbour[second] = owner[first]
    return neighbour.reshape(count, 3)


def components(neighbours: I64, member: BoolArray) -> I64:
    """Component label of every face among the `member` faces (edge-connected); -1 elsewhere."""
    count = len(neighbours)
    rows = np.repeat(np.arange(count), 3)
    cols = neighbours.reshape(-1)
    use = (cols >= 0) & member[rows] & member[np.maximum(cols, 0)]
    graph = coo_matrix(
        (np.ones(int(use.sum()), dtype=np.int8), (rows[use], cols[use])), shape=(count, count)
    )
    _, labels = connected_components(graph, directed=False)
    out = np.where(member, labels, -1)
    return out.astype(np.int64)


def _component_areas(labels: I64, areas: F64) -> tuple[I64, F64]:
    member = labels >= 0
    ids, compact = np.unique(labels[member], return_inverse=True)
    sums = np.bincount(compact, weights=areas[member], minlength=len(ids))
    per_face = np.zeros(len(labels))
    per_face[member] = sums[compact]
    return ids, per_face


def clean_border(
    faces: npt.ArrayLike,
    observed: BoolArray,
    areas: F64,
    pinhole_area: float,
    island_fraction: float = 0.01,
    closable: BoolArray | None = None,
) -> BoolArray:
    """The faces to keep: `observed` with pinholes closed, dangling faces and islands removed.
    A patch holding a face outside `closable` (when given) is never a pinhole: it is known
    to be a hole, however small."""
    neighbours = edge_neighbours(faces)
    keep = np.asarray(observed, dtype=bool).copy()
    if not keep.any():
        return keep

    holes = components(neighbours, ~keep)
    _, hole_area = _component_areas(holes, areas)
    pinhole = hole_area < pinhole_area
    if closable is not None:
        pinhole &= ~np.isin(holes, holes[~keep & ~np.asarray(closable, dtype=bool)])
    keep |= ~keep & pinhole

    for _ in range(DANGLING_PASSES):
        kept_neighbour = (neighbours >= 0) & keep[np.maximum(neighbours, 0)]
        dangling = keep & (kept_neighbour.sum(axis=1) < 2)
        if not dangling.any():
            break
        keep &= ~dangling

    if keep.any():
        _, island_area = _component_areas(components(neighbours, keep), areas)
        keep &= island_area >= island_fraction * float(areas[keep].sum())
    return keep
