"""Closing what no camera saw with a membrane spanned by the observed border.

The fused and refined mesh is closed, but its unobserved part is a guess of fusion (a visual
hull where depth was silent). `closeHoles` keeps that closed topology and replaces the guessed
positions: every vertex that no observed face uses is moved to the harmonic (membrane)
surface whose boundary is the observed surface, i.e. each free vertex becomes the mean of its
neighbours (the uniform graph Laplacian, solved with scipy.sparse's direct solver). A
harmonic fill is the smallest-tension surface through the border, so it adds no bulge the
capture does not support; where the border is a planar convex loop it is Tutte's embedding,
which cannot fold over itself. Uniform rather than cotangent weights, because the guessed
triangles can be badly shaped and uniform weights keep the fill's triangles even.

A free region that touches no observed vertex (a part of the surface wholly unseen and
unconnected to what was seen) has nothing to span; it keeps its fused positions.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import spsolve

BoolArray = npt.NDArray[np.bool_]


def vertex_adjacency(faces: npt.ArrayLike, vertex_count: int) -> csr_matrix:
    """Symmetric 0/1 adjacency of the mesh's edges."""
    f = np.asarray(faces, dtype=np.int64)
    rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2], f[:, 1], f[:, 2], f[:, 0]])
    cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0], f[:, 0], f[:, 1], f[:, 2]])
    adjacency = coo_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(vertex_count, vertex_count)
    ).tocsr()
    adjacency.data[:] = 1.0  # an edge shared by two faces is listed twice
    return adjacency


def membrane(
    vertices: npt.ArrayLike, faces: npt.ArrayLike, fixed: BoolArray
) -> npt.NDArray[np.float64]:
    """Vertex positions with every free (not `fixed`) vertex on the harmonic surface spanned
    by the fixed ones; fixed vertices, and free regions with no fixed neighbour, unchanged."""
    v = np.asarray(vertices, dtype=np.float64)
    out = v.copy()
    free = ~np.asarray(fixed, dtype=bool)
    if not free.any() or free.all():
        return out
    adjacency = vertex_adjacency(faces, len(v))
    free_ids = np.flatnonzero(free)
    # Free regions anchored to at least one fixed vertex; the others have nothing to span.
    _, labels = connected_components(adjacency[free_ids][:, free_ids], directed=False)
    touches_fixed = np.asarray(adjacency[free_ids][:, ~free].sum(axis=1)).reshape(-1) > 0
    anchored_labels = np.unique(labels[touches_fixed])
    solve = free_ids[np.isin(labels, anchored_labels)]
    if len(solve) == 0:
        return out
    known = np.setdiff1d(np.arange(len(v)), solve)
    a = adjacency[solve]
    degree = np.asarray(a.sum(axis=1)).reshape(-1)
    # degree * x_i - sum of free neighbours = sum of known neighbours, for each free vertex.
    system = coo_matrix((degree, (np.arange(len(solve)), np.arange(len(solve))))) - a[:, solve]
    rhs = a[:, known] @ v[known]
    out[solve] = np.column_stack([spsolve(system.tocsc(), rhs[:, k]) for k in range(3)])
    return out
