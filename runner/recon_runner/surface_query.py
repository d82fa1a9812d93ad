"""Sampling a triangle mesh's surface and finding the closest surface point to given points.

Accuracy is measured point-to-surface, not point-to-point: two independent samplings of one
surface are millimetres apart on average, which would swamp the errors being measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SurfacePoints:
    """Points on a mesh: where (face, barycentrics of its three corners) and their normals."""

    points: F64  # [N,3]
    faces: I64  # [N]
    bary: F64  # [N,3]
    normals: F64  # [N,3] unit normals of the faces


def face_normals(vertices: npt.ArrayLike, faces: npt.ArrayLike) -> F64:
    v = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]
    n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return n / np.where(length > 0, length, 1.0)


def face_areas(vertices: npt.ArrayLike, faces: npt.ArrayLike) -> F64:
    v = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]
    return 0.5 * np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)


def sample_surface(
    vertices: npt.ArrayLike, faces: npt.ArrayLike, count: int, rng: np.random.Generator
) -> SurfacePoints:
    """`count` points uniformly distributed over the surface area."""
    verts = np.asarray(vertices, dtype=np.float64)
    tri = np.asarray(faces, dtype=np.int64)
    areas = face_areas(verts, tri)
    if areas.sum() <= 0:
        raise ValueError("the mesh has no surface area to sample")
    face = rng.choice(len(tri), size=count, p=areas / areas.sum())
    r1, r2 = rng.random(count), rng.random(count)
    s = np.sqrt(r1)
    bary = np.stack([1.0 - s, s * (1.0 - r2), s * r2], axis=1)
    points = np.einsum("nk,nkd->nd", bary, verts[tri[face]])
    return SurfacePoints(points, face, bary, face_normals(verts, tri)[face])


def closest_on_triangles(p: F64, a: F64, b: F64, c: F64) -> tuple[F64, F64]:
    """Closest point of triangle (a, b, c) to p, row by row: (point [N,3], barycentrics [N,3])."""
    ab, ac = b - a, c - a
    n = np.cross(ab, ac)
    nn = np.einsum("ij,ij->i", n, n)
    safe_nn = np.where(nn > 0, nn, 1.0)
    # Barycentrics of p's projection onto the plane.
    ap = p - a
    w_b = np.einsum("ij,ij->i", np.cross(ap, ac), n) / safe_nn
    w_c = np.einsum("ij,ij->i", np.cross(ab, ap), n) / safe_nn
    bary = np.stack([1.0 - w_b - w_c, w_b, w_c], axis=1)
    inside = (bary >= 0).all(axis=1) & (nn > 0)
    best_bary = bary.copy()
    best_dist = np.full(len(p), np.inf)
    corners = (a, b, c)
    for i, j in ((0, 1), (1, 2), (2, 0)):
        start, end = corners[i], corners[j]
        d = end - start
        dd = np.einsum("ij,ij->i", d, d)
        t = np.clip(np.einsum("ij,ij->i", p - start, d) / np.where(dd > 0, dd, 1.0), 0.0, 1.0)
        q = start + t[:, None] * d
        dist = np.einsum("ij,ij->i", p - q, p - q)
        better = ~inside & (dist < best_dist)
        best_dist = np.where(better, dist, best_dist)
        edge_bary = np.zeros((len(p), 3))
        edge_bary[:, i] = 1.0 - t
        edge_bary[:, j] = t
        best_bary = np.where(better[:, None], edge_bary, best_bary)
    point = best_bary[:, :1] * a + best_bary[:, 1:2] * b + best_bary[:, 2:] * c
    return point, best_bary


class SurfaceIndex:
    """Closest-point queries against one mesh.

    Candidate faces come from a k-d tree over dense surface samples and every face centre;
    the exact point-to-triangle distance is taken over the candidates. When the best point
    found lies on an edge or a corner of its face, the faces around that face's corners are
    tried too: that is where a nearer face the samples missed would be."""

    def __init__(
        self,
        vertices: npt.ArrayLike,
        faces: npt.ArrayLike,
        density_samples: int = 200_000,
        seed: int = 0,
    ) -> None:
        self.vertices = np.asarray(vertices, dtype=np.float64)
        self.faces = np.asarray(faces, dtype=np.int64)
        self.normals = face_normals(self.vertices, self.faces)
        samples = sample_surface(
            self.vertices, self.faces, density_samples, np.random.default_rng(seed)
        )
        centres = self.vertices[self.faces].mean(axis=1)
        self._owner = np.concatenate([samples.faces, np.arange(len(self.faces))])
        self._tree = cKDTree(np.concatenate([samples.points, centres]))
        self._ring = _faces_around_vertices(self.faces, len(self.vertices))

    def closest(self, points: npt.ArrayLike, candidates: int = 8) -> SurfacePoints:
        """Closest surface point of each query point, with the face it lies on."""
        p = np.asarray(points, dtype=np.float64)
        k = min(candidates, len(self._owner))
        _, idx = self._tree.query(p, k=k, workers=-1)
        idx = idx.reshape(len(p), k)
        best_point = np.zeros_like(p)
        best_bary = np.zeros((len(p), 3))
        best_face = np.zeros(len(p), dtype=np.int64)
        best_dist = np.full(len(p), np.inf)

        def consider(rows: I64, face: I64) -> None:
            corner = self.vertices[self.faces[face]]
            q, bary = closest_on_triangles(p[rows], corner[:, 0], corner[:, 1], corner[:, 2])
            dist = np.einsum("ij,ij->i", p[rows] - q, p[rows] - q)
            better = dist < best_dist[rows]
            rows = rows[better]
            best_dist[rows] = dist[better]
            best_point[rows] = q[better]
            best_bary[rows] = bary[better]
            best_face[rows] = face[better]

        every = np.arange(len(p))
        for column in range(k):
            consider(every, self._owner[idx[:, column]])
        edge = np.nonzero((best_bary <= 0).any(axis=1) & (best_dist > 0))[0]
        # Fixed width: with no point near an edge, reshape(0, -1) cannot infer the -1.
        around = self._ring[self.faces[best_face[edge]]].reshape(len(edge), 3 * self._ring.shape[1])
        for column in range(around.shape[1]):
            has = around[:, column] >= 0
            consider(edge[has], around[has, column])
        return SurfacePoints(best_point, best_face, best_bary, self.normals[best_face])


def _faces_around_vertices(faces: I64, vertex_count: int) -> I64:
    """[V, max valence] face ids around each vertex, padded with -1."""
    vertex = faces.reshape(-1)
    face = np.repeat(np.arange(len(faces)), 3)
    order = np.argsort(vertex, kind="stable")
    vertex, face = vertex[order], face[order]
    counts = np.bincount(vertex, minlength=vertex_count)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(len(vertex)) - start[vertex]
    ring = np.full((vertex_count, max(int(counts.max(initial=0)), 1)), -1, dtype=np.int64)
    ring[vertex, slot] = face
    return ring
