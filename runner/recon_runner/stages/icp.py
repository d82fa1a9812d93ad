"""Rigid alignment of a point set to a surface: robust point-to-plane ICP.

A phone capture's poses are each off by about half a degree and a few millimetres, which at
arm's length puts one view's surface a centimetre or more away from another's. Fused
together they blur into a thick, doubled surface; aligned to that surface one view at a
time, each view's depth comes back onto the others'. Point-to-plane (Chen and Medioni, 1992)
converges in a few iterations where point-to-point needs dozens, because a surface's points
may slide along it: only the distance to its tangent plane counts.

Nearest neighbours come from scipy's cKDTree (built once per target, O(log n) per query,
far faster on a CPU than torch's dense distance matrix); each linearised step is a 6x6
weighted least-squares solve in torch, with Huber weights so the part of a view that sees
what the target does not (or saw it wrongly) pulls no harder than a few voxels' worth.
Rotation updates go through roma (a maintained rotation library) rather than hand-written
exponential maps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import roma
import torch
from scipy.spatial import cKDTree

Matrix = npt.NDArray[np.float64]

# Damping of each linearised step, relative to the mean curvature of the fit.
DAMPING = 1e-3


@dataclass(frozen=True)
class Surface:
    """Target points with unit normals, and their search tree."""

    points: npt.NDArray[np.float64]  # [M,3]
    normals: npt.NDArray[np.float64]  # [M,3]
    tree: cKDTree

    @staticmethod
    def of(points: npt.ArrayLike, normals: npt.ArrayLike) -> Surface:
        p = np.asarray(points, dtype=np.float64)
        return Surface(p, np.asarray(normals, dtype=np.float64), cKDTree(p))


@dataclass(frozen=True)
class Alignment:
    """`transform` (world to world, 4x4) moves the source onto the surface."""

    transform: Matrix
    # Robust RMS point-to-plane distance (metres) of the matched points before and after.
    residual_before: float
    residual_after: float
    matched: int  # source points within reach of the surface at the last step


def rigid(rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """4x4 from a 3x3 rotation and a translation (float64)."""
    out = torch.eye(4, dtype=torch.float64)
    out[:3, :3] = rotation
    out[:3, 3] = translation
    return out


def point_to_plane(
    source: npt.ArrayLike,
    surface: Surface,
    iterations: int,
    reach: float,
    huber: float,
    weights: npt.ArrayLike | None = None,
) -> Alignment:
    """The rigid motion taking `source` [N,3] onto `surface`.

    `reach`: pairs farther apart than this are not matched (what the surface does not have);
    `huber`: point-to-plane distance beyond which a pair's pull stops growing. Both metres.
    Each step is linearised about the matched points' centroid, so the rotation is solved
    about the view's own surface and does not trade off against the translation."""
    points = torch.as_tensor(np.asarray(source, dtype=np.float64))
    prior = (
        torch.ones(len(points), dtype=torch.float64)
        if weights is None
        else torch.as_tensor(np.asarray(weights, dtype=np.float64))
    )
    total = torch.eye(4, dtype=torch.float64)
    before = after = float("nan")
    matched = 0
    for step in range(iterations + 1):
        moved = points @ total[:3, :3].T + total[:3, 3]
        distance, nearest = surface.tree.query(moved.numpy(), k=1, distance_upper_bound=reach)
        near = np.isfinite(distance)
        matched = int(near.sum())
        if matched < 6:
            break
        p = moved[near]
        q = torch.as_tensor(surface.points[nearest[near]])
        n = torch.as_tensor(surface.normals[nearest[near]])
        residual = ((p - q) * n).sum(dim=1)
        w = prior[near] * torch.clamp(huber / residual.abs().clamp(min=1e-12), max=1.0)
        rms = float(torch.sqrt((w * residual.square()).sum() / w.sum().clamp(min=1e-12)))
        if step == 0:
            before = rms
        after = rms
        if step == iterations:
            break
        centre = (w[:, None] * p).sum(0) / w.sum().clamp(min=1e-12)
        # Rotation columns in metres at the view's own scale, so that one damping weighs
        # rotation and translation alike.
        scale = torch.sqrt((w * (p - centre).square().sum(1)).sum() / w.sum()).clamp(min=1e-6)
        jacobian = torch.cat([torch.cross(p - centre, n, dim=1) / scale, n], dim=1)  # [K,6]
        normal = jacobian.T @ (w[:, None] * jacobian)
        rhs = -(jacobian.T @ (w * residual))
        # Levenberg-Marquardt damping: a direction the view's geometry barely constrains
        # (sliding along a plane, turning about a torus' axis) stays as given instead of
        # taking the noise of the depth.
        damping = DAMPING * torch.trace(normal) / 6.0 + 1e-12
        delta = torch.linalg.solve(normal + damping * torch.eye(6, dtype=torch.float64), rhs)
        delta = torch.cat([delta[:3] / scale, delta[3:]])
        rotation = roma.rotvec_to_rotmat(delta[:3])
        # Rotate about the centroid, then translate: x -> R (x - c) + c + t.
        step_transform = rigid(rotation, centre - rotation @ centre + delta[3:])
        total = step_transform @ total
    return Alignment(total.numpy(), before, after, matched)


def rotation_degrees(rotation: npt.ArrayLike) -> float:
    """Angle of a 3x3 rotation, in degrees."""
    r = torch.as_tensor(np.asarray(rotation, dtype=np.float64))
    return float(torch.rad2deg(roma.rotmat_geodesic_distance(r, torch.eye(3, dtype=r.dtype))))
