"""Known objects to reconstruct: each a dense ground-truth mesh and its true surface colour.

Together they cover the cases fusion alone handles badly: thin parts (`dumbbell`), a hole
through the object (`frame`), a non-genus-0 surface (`torus`, `frame`), sharp edges
(`block`, `frame`), fine colour detail (`checker_sphere`, `frame`) and strands passing in
front of each other with deep concavities between them (`knot`). Each is rotated off
the axes and moved off the origin, so a convention error anywhere shows in the figures.
Colours are sRGB in [0, 1], the values a viewer displays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from recon_runner.mesh import Mesh
from recon_runner.synthetic import shapes

Points = npt.NDArray[np.float64]
ColourFunction = Callable[[npt.NDArray[np.floating]], npt.NDArray[np.float64]]


@dataclass(frozen=True)
class SyntheticObject:
    name: str
    description: str
    mesh: Mesh
    true_colour: ColourFunction  # world points [N,3] -> sRGB [N,3] in [0, 1]

    @property
    def bounds(self) -> tuple[Points, Points]:
        v = self.mesh.vertices.astype(np.float64)
        return v.min(axis=0), v.max(axis=0)


@dataclass(frozen=True)
class _Placement:
    rotation: Points
    offset: Points

    def local(self, points: npt.NDArray[np.floating]) -> Points:
        return (np.asarray(points, dtype=np.float64) - self.offset) @ self.rotation

    def place(self, mesh: Mesh) -> Mesh:
        return shapes.transformed(mesh, self.rotation, self.offset)


def _placement(
    angles: tuple[float, float, float], offset: tuple[float, float, float]
) -> _Placement:
    return _Placement(shapes.rotation_xyz(*angles), np.asarray(offset, dtype=np.float64))


def _mix(a: npt.ArrayLike, b: npt.ArrayLike, t: npt.NDArray[np.float64]) -> Points:
    t = t[:, None]
    return (1.0 - t) * np.asarray(a, dtype=np.float64) + t * np.asarray(b, dtype=np.float64)


def _checker_sphere() -> SyntheticObject:
    at = _placement((0.3, -0.2, 0.5), (0.05, -0.03, 0.1))

    def colour(points: npt.NDArray[np.floating]) -> Points:
        p = at.local(points)
        lon = np.arctan2(p[:, 1], p[:, 0])
        lat = np.arcsin(np.clip(p[:, 2] / np.linalg.norm(p, axis=1), -1.0, 1.0))
        cell = np.floor(lon / (2 * np.pi / 16)) + np.floor((lat + np.pi / 2) / (np.pi / 8))
        return _mix([0.92, 0.55, 0.12], [0.10, 0.24, 0.66], (cell % 2).astype(np.float64))

    return SyntheticObject(
        "checker_sphere",
        "sphere with a 16x8 checker: fine colour detail with sharp colour edges",
        at.place(shapes.icosphere(0.45, 6)),
        colour,
    )


def _torus() -> SyntheticObject:
    at = _placement((0.55, 0.25, 0.0), (-0.04, 0.06, 0.02))

    def colour(points: npt.NDArray[np.floating]) -> Points:
        p = at.local(points)
        u = np.arctan2(p[:, 1], p[:, 0])
        v = np.arctan2(p[:, 2], np.hypot(p[:, 0], p[:, 1]) - 0.38)
        hue = np.stack([np.cos(u), np.cos(u - 2 * np.pi / 3), np.cos(u + 2 * np.pi / 3)], 1)
        return np.clip(0.5 + 0.35 * hue + 0.1 * np.sin(v)[:, None], 0.0, 1.0)

    return SyntheticObject(
        "torus",
        "ring torus: genus 1, a hole seen through from most views, smooth hue around it",
        at.place(shapes.torus(0.38, 0.13, 320, 112)),
        colour,
    )


def _frame() -> SyntheticObject:
    at = _placement((0.35, -0.25, 0.4), (0.02, 0.0, -0.05))

    def colour(points: npt.NDArray[np.floating]) -> Points:
        p = at.local(points)
        stripe = np.floor((p[:, 0] + p[:, 1]) / 0.1) % 2
        return _mix([0.95, 0.90, 0.78], [0.62, 0.10, 0.16], stripe)

    return SyntheticObject(
        "frame",
        "square frame with a square hole through it: sharp edges and diagonal stripes",
        at.place(shapes.square_frame(0.9, 0.45, 0.16)),
        colour,
    )


_BLOCK_EXTENTS = np.array([0.8, 0.5, 0.35])
_BLOCK_FACE_COLOURS = np.array(
    [
        [0.85, 0.20, 0.20],
        [0.20, 0.70, 0.30],
        [0.20, 0.35, 0.85],
        [0.90, 0.80, 0.20],
        [0.70, 0.30, 0.75],
        [0.25, 0.75, 0.80],
    ]
)


def _block() -> SyntheticObject:
    at = _placement((0.45, 0.6, -0.3), (0.0, 0.05, 0.08))

    def colour(points: npt.NDArray[np.floating]) -> Points:
        p = at.local(points) / (_BLOCK_EXTENTS / 2.0)
        axis = np.argmax(np.abs(p), axis=1)
        positive = p[np.arange(len(p)), axis] > 0
        return np.asarray(_BLOCK_FACE_COLOURS[axis * 2 + positive], dtype=np.float64)

    return SyntheticObject(
        "block",
        "rectangular block: sharp edges and corners, one flat colour per face",
        at.place(shapes.box(_BLOCK_EXTENTS)),
        colour,
    )


def _dumbbell_sdf(p: Points) -> npt.NDArray[np.float64]:
    """Two spheres joined by a thin rod, blended with a smooth minimum (no creases)."""
    ends = [np.linalg.norm(p - [s * 0.32, 0.0, 0.0], axis=1) - 0.2 for s in (-1.0, 1.0)]
    along = np.clip(p[:, 0], -0.32, 0.32)
    rod = np.linalg.norm(p - np.column_stack([along, np.zeros((len(p), 2))]), axis=1) - 0.03
    d = np.minimum(ends[0], ends[1])
    k = 0.02
    h = np.clip(0.5 + 0.5 * (rod - d) / k, 0.0, 1.0)
    return rod * (1 - h) + d * h - k * h * (1 - h)


def _dumbbell() -> SyntheticObject:
    at = _placement((0.2, 0.15, 0.7), (0.03, -0.02, 0.0))

    def colour(points: npt.NDArray[np.floating]) -> Points:
        p = at.local(points)
        t = np.clip((p[:, 0] + 0.32) / 0.64, 0.0, 1.0)
        ends = _mix([0.85, 0.25, 0.15], [0.15, 0.65, 0.30], t)
        on_rod = np.clip((0.2 - np.abs(p[:, 0])) / 0.04, 0.0, 1.0)
        return _mix(ends, [0.80, 0.80, 0.86], on_rod) if len(p) else ends

    lower, upper = [-0.54, -0.22, -0.22], [0.54, 0.22, 0.22]
    local = shapes.from_signed_distance(_dumbbell_sdf, lower, upper, voxel=0.004)
    return SyntheticObject(
        "dumbbell",
        "two balls on a rod 6 cm thick: a thin part a few TSDF voxels across",
        at.place(local),
        colour,
    )


# A trefoil knot as sin t + 2 sin 2t, cos t - 2 cos 2t, -sin 3t (and its derivatives),
# scaled so the knot spans about 0.9 m: its strands pass 0.19 m apart (centre to centre)
# and its tightest bend has a radius of 0.21 m, so a 6 cm tube neither touches itself nor
# folds.
_KNOT_SCALE, _KNOT_TUBE = 0.16, 0.06


def _trefoil(t: npt.NDArray[np.float64], order: int = 0) -> Points:
    s, c = (np.sin, np.cos)
    if order == 0:
        terms = (s(t) + 2 * s(2 * t), c(t) - 2 * c(2 * t), -s(3 * t))
    elif order == 1:
        terms = (c(t) + 4 * c(2 * t), -s(t) + 4 * s(2 * t), -3 * c(3 * t))
    else:
        terms = (-s(t) - 8 * s(2 * t), -c(t) + 8 * c(2 * t), 9 * s(3 * t))
    return _KNOT_SCALE * np.stack(terms, axis=1)


def _knot() -> SyntheticObject:
    at = _placement((0.4, -0.3, 0.2), (0.02, 0.04, -0.03))
    samples = np.linspace(0.0, 2.0 * np.pi, 4096, endpoint=False)
    curve = cKDTree(_trefoil(samples))

    def colour(points: npt.NDArray[np.floating]) -> Points:
        p = at.local(points)
        _, nearest = curve.query(p)
        t = samples[nearest]
        hue = np.stack([np.cos(t), np.cos(t - 2 * np.pi / 3), np.cos(t + 2 * np.pi / 3)], 1)
        stripe = (np.floor(t / (2 * np.pi / 24)) % 2)[:, None]
        return np.clip(0.55 + 0.25 * hue - 0.2 * stripe, 0.0, 1.0)

    local = shapes.tube(
        _trefoil,
        lambda t: _trefoil(t, 1),
        lambda t: _trefoil(t, 2),
        _KNOT_TUBE,
        segments=900,
        sides=48,
    )
    return SyntheticObject(
        "knot",
        "trefoil knot of a 12 cm tube: strands passing in front of each other, deep "
        "concavities between them, surface hidden from most views",
        at.place(local),
        colour,
    )


_BUILDERS: dict[str, Callable[[], SyntheticObject]] = {
    "checker_sphere": _checker_sphere,
    "torus": _torus,
    "frame": _frame,
    "block": _block,
    "dumbbell": _dumbbell,
    "knot": _knot,
}
OBJECT_NAMES: tuple[str, ...] = tuple(_BUILDERS)


@cache
def make_object(name: str) -> SyntheticObject:
    """The named object (built once per process: the dense meshes take a moment)."""
    try:
        return _BUILDERS[name]()
    except KeyError:
        raise ValueError(f"unknown object {name!r}; choose one of {OBJECT_NAMES}") from None


def sphere_object(radius: float, centre: npt.ArrayLike, subdivisions: int = 5) -> SyntheticObject:
    """A plain sphere with a smooth colour, for tests that check positions in closed form."""
    c = np.asarray(centre, dtype=np.float64)

    def colour(points: npt.NDArray[np.floating]) -> Points:
        n = (np.asarray(points, dtype=np.float64) - c) / radius
        return np.clip(0.5 + 0.4 * n, 0.0, 1.0)

    mesh = shapes.transformed(shapes.icosphere(radius, subdivisions), np.eye(3), c)
    return SyntheticObject("sphere", f"sphere of radius {radius} m", mesh, colour)
