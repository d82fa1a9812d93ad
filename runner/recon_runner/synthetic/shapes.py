"""Closed triangle meshes of analytic shapes, built directly in numpy.

Each builder returns a watertight mesh with counter-clockwise faces seen from outside and no
internal faces, so area-weighted samples of it are samples of the true surface: that is what
the accuracy figures compare a reconstruction against. Shapes with sharp edges are built
exactly; smooth blends come from a signed distance function through marching cubes at a
resolution fine enough that the facets stay well below the tolerances measured.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from recon_runner.mesh import Mesh

Points = npt.NDArray[np.float64]
SignedDistance = Callable[[Points], npt.NDArray[np.float64]]
# A closed curve's position (or a derivative) at parameters [N] in [0, 2 pi): [N, 3].
Curve = Callable[[npt.NDArray[np.float64]], Points]


def _mesh(vertices: npt.ArrayLike, faces: npt.ArrayLike) -> Mesh:
    return Mesh(
        vertices=np.ascontiguousarray(vertices, dtype=np.float32),
        faces=np.ascontiguousarray(faces, dtype=np.int32),
    )


def icosphere(radius: float, subdivisions: int) -> Mesh:
    """A sphere of near-uniform triangles (20 * 4**subdivisions faces)."""
    t = (1.0 + 5.0**0.5) / 2.0
    verts = np.array(
        [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t],
         [0, -1, -t], [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]],
        dtype=np.float64,
    )  # fmt: skip
    faces = np.array(
        [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
         [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8],
         [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]],
        dtype=np.int64,
    )  # fmt: skip
    verts /= np.linalg.norm(verts, axis=1, keepdims=True)
    for _ in range(subdivisions):
        edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
        unique, inverse = np.unique(edges, axis=0, return_inverse=True)
        mids = verts[unique].mean(axis=1)
        mids /= np.linalg.norm(mids, axis=1, keepdims=True)
        m = inverse.reshape(-1, 3) + len(verts)  # midpoints of edges 01, 12, 20
        a, b, c = faces.T
        faces = np.concatenate(
            [
                np.stack([a, m[:, 0], m[:, 2]], 1),
                np.stack([b, m[:, 1], m[:, 0]], 1),
                np.stack([c, m[:, 2], m[:, 1]], 1),
                m,
            ]
        )
        verts = np.concatenate([verts, mids])
    return _mesh(verts * radius, faces)


def _grid_faces(rows: int, cols: int, wrap_rows: bool, wrap_cols: bool) -> npt.NDArray[np.int64]:
    """Two triangles per cell of a rows x cols vertex grid (row-major vertex ids)."""
    r_end = rows if wrap_rows else rows - 1
    c_end = cols if wrap_cols else cols - 1
    grid_r, grid_c = np.meshgrid(np.arange(r_end), np.arange(c_end), indexing="ij")
    r, c = grid_r.ravel(), grid_c.ravel()
    r1, c1 = (r + 1) % rows, (c + 1) % cols
    v00, v01, v10, v11 = r * cols + c, r * cols + c1, r1 * cols + c, r1 * cols + c1
    return np.concatenate([np.stack([v00, v10, v11], 1), np.stack([v00, v11, v01], 1)])


def torus(major: float, minor: float, major_segments: int, minor_segments: int) -> Mesh:
    """A ring torus around the z axis."""
    u = np.linspace(0, 2 * np.pi, major_segments, endpoint=False)
    v = np.linspace(0, 2 * np.pi, minor_segments, endpoint=False)
    uu, vv = np.meshgrid(u, v, indexing="ij")
    ring = major + minor * np.cos(vv)
    verts = np.stack([ring * np.cos(uu), ring * np.sin(uu), minor * np.sin(vv)], -1)
    faces = _grid_faces(major_segments, minor_segments, True, True)
    return _mesh(verts.reshape(-1, 3), faces)


def tube(
    centre: Curve, tangent: Curve, normal: Curve, radius: float, segments: int, sides: int
) -> Mesh:
    """A tube of `radius` around a closed curve given by its position, first and second
    derivative at parameters in [0, 2 pi): rings of `sides` vertices in the curve's Frenet
    frame, which is periodic on a closed curve of non-zero curvature, so the last ring joins
    the first without a twist. The curve's radius of curvature must exceed `radius` and its
    strands must stay more than 2 `radius` apart, or the tube crosses itself."""
    t = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    c, d1, d2 = centre(t), tangent(t), normal(t)
    along = d1 / np.linalg.norm(d1, axis=1, keepdims=True)
    bend = d2 - np.sum(d2 * along, axis=1, keepdims=True) * along
    bend /= np.linalg.norm(bend, axis=1, keepdims=True)
    binormal = np.cross(along, bend)
    angle = np.linspace(0.0, 2.0 * np.pi, sides, endpoint=False)
    ring = (
        np.cos(angle)[None, :, None] * bend[:, None]
        + np.sin(angle)[None, :, None] * binormal[:, None]
    )
    verts = c[:, None] + radius * ring
    mesh = _mesh(verts.reshape(-1, 3), _grid_faces(segments, sides, True, True))
    if signed_volume(mesh) < 0:  # the frame's handedness decides the winding
        mesh = _mesh(mesh.vertices, mesh.faces[:, ::-1])
    return mesh


def box(extents: npt.ArrayLike) -> Mesh:
    """An axis-aligned box centred on the origin; its twelve edges are perfectly sharp."""
    h = np.asarray(extents, dtype=np.float64) / 2.0
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) * h
    # Corner index = 4*(x>0) + 2*(y>0) + (z>0); each quad listed counter-clockwise from outside.
    quads = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
    faces = [[q[0], q[1], q[2]] for q in quads] + [[q[0], q[2], q[3]] for q in quads]
    return _mesh(corners, faces)


def square_frame(outer: float, inner: float, thickness: float) -> Mesh:
    """A square slab with a square hole through it (a picture frame), in the xy plane."""
    square = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)  # CCW from +z
    z = thickness / 2.0
    rings = [(outer, z), (inner, z), (outer, -z), (inner, -z)]  # ids: ring * 4 + corner
    verts = np.concatenate([np.column_stack([square * s / 2.0, np.full(4, h)]) for s, h in rings])
    faces = []
    for k in range(4):
        n = (k + 1) % 4
        ot, it, ob, ib = k, 4 + k, 8 + k, 12 + k
        otn, itn, obn, ibn = n, 4 + n, 8 + n, 12 + n
        faces += [[ot, otn, itn], [ot, itn, it]]  # top, facing +z
        faces += [[ob, ibn, obn], [ob, ib, ibn]]  # bottom, facing -z
        faces += [[ob, obn, otn], [ob, otn, ot]]  # outer wall, facing away from the hole
        faces += [[ib, it, itn], [ib, itn, ibn]]  # inner wall, facing into the hole
    return _mesh(verts, faces)


def from_signed_distance(
    sdf: SignedDistance, lower: npt.ArrayLike, upper: npt.ArrayLike, voxel: float
) -> Mesh:
    """The zero level set of `sdf` (negative inside) on a grid of `voxel` spacing."""
    from skimage.measure import marching_cubes

    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    counts = np.ceil((hi - lo) / voxel).astype(int) + 1
    axes = [lo[i] + voxel * np.arange(counts[i]) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1)
    values = sdf(grid.reshape(-1, 3)).reshape(grid.shape[:3])
    verts, faces, _, _ = marching_cubes(values, level=0.0, spacing=(voxel,) * 3)
    mesh = _mesh(verts + lo, faces[:, ::-1])
    if signed_volume(mesh) < 0:
        mesh = _mesh(mesh.vertices, mesh.faces[:, ::-1])
    return mesh


def signed_volume(mesh: Mesh) -> float:
    """Enclosed volume, positive when the faces wind counter-clockwise from outside."""
    v = mesh.vertices.astype(np.float64)[mesh.faces]
    return float(np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum() / 6.0)


def transformed(mesh: Mesh, rotation: npt.ArrayLike, offset: npt.ArrayLike) -> Mesh:
    """The mesh rotated about the origin, then moved by `offset`."""
    r = np.asarray(rotation, dtype=np.float64)
    verts = mesh.vertices.astype(np.float64) @ r.T + np.asarray(offset, dtype=np.float64)
    return _mesh(verts, mesh.faces)


def rotation_xyz(rx: float, ry: float, rz: float) -> Points:
    """Rotation by rx, then ry, then rz radians about the fixed world axes."""
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return z @ y @ x
