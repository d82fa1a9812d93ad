"""Camera poses corrected per view, in the capture's own world frame.

A handheld capture's poses come from the phone's visual-inertial tracking and drift: each
view is off by about half a degree and a few millimetres. Every stage after fusion compares
renders with the views through those poses, so a wrong pose makes the depth and colour
terms pull the surface to several places at once. Here each view is first aligned to the
fused surface (`icp.point_to_plane` of its depth), and `refine` then optimises a small
residual correction per view jointly with the geometry.

The data fix the views only relative to each other: moving every camera and the surface
together changes nothing a view sees. That freedom is anchored to the capture's own frame:
the corrected cameras are moved as one rigid body onto the given ones in the least-squares
sense (`anchor`), over each camera's centre and three points one scene depth along its
axes, so the mesh stays where the given poses put the object on average. A capture whose
views already agree keeps its poses exactly (`MIN_SHIFT_VOXELS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
import roma
import torch

from recon_runner.mesh import Mesh
from recon_runner.stages.capture import Capture, View, back_project
from recon_runner.stages.icp import Surface, point_to_plane, rotation_degrees
from recon_runner.stages.refine import PoseRates
from recon_runner.surface_query import face_areas, face_normals

Matrix = npt.NDArray[np.float64]

# Depth points of a view used for its alignment: enough for a 6-parameter fit many times
# over, few enough that a hundred views align in a second.
ICP_POINTS = 4000
ICP_ITERATIONS = 12
# Pairs farther apart than this are not matched; pulls beyond HUBER_VOXELS stop growing.
REACH_VOXELS = 4.0
HUBER_VOXELS = 1.0
# A view whose correction moves its surface by less than this (mean, in voxels) already
# agrees with the others: the given poses are kept.
MIN_SHIFT_VOXELS = 0.5


@dataclass(frozen=True)
class PoseConfig:
    """What a preset sets of pose refinement."""

    # Rounds of aligning every view's depth to the fused surface, each followed by fusing
    # again with the corrected poses (0 keeps the given poses).
    rounds: int = 2
    # Whether `refine` then corrects the cameras further with the geometry, at `rates`.
    jointly: bool = True
    rates: PoseRates = field(default_factory=lambda: PoseRates(rotation=2e-4, translation=0.03))


@dataclass(frozen=True)
class ViewCorrection:
    view: str  # the colour image's path in the capture
    rotation_degrees: float
    translation_m: float  # how far the camera centre moved
    c2w: Matrix  # the refined camera-to-world matrix, in transforms.json's convention

    def as_dict(self) -> dict[str, object]:
        return {
            "view": self.view,
            "rotationDeg": round(self.rotation_degrees, 5),
            "translationM": round(self.translation_m, 7),
            "transformMatrix": [[round(float(x), 9) for x in row] for row in self.c2w],
        }


def poses(capture: Capture) -> list[Matrix]:
    return [view.camera.c2w.copy() for view in capture.views]


def with_poses(capture: Capture, c2ws: Sequence[Matrix]) -> Capture:
    """The capture with new camera-to-world matrices (colour and depth cameras alike)."""
    views = []
    for view, c2w in zip(capture.views, c2ws, strict=True):
        matrix = np.asarray(c2w, dtype=np.float64)
        depth_camera = None if view.depth_camera is None else replace(view.depth_camera, c2w=matrix)
        camera = replace(view.camera, c2w=matrix)
        views.append(replace(view, camera=camera, depth_camera=depth_camera))
    return replace(capture, views=tuple(views))


def mesh_surface(mesh: Mesh) -> Surface:
    """The mesh as ICP's target: face centroids with face normals (degenerate faces left
    out: they have no plane)."""
    areas = face_areas(mesh.vertices, mesh.faces)
    keep = areas > 0
    centroids = mesh.vertices.astype(np.float64)[mesh.faces[keep]].mean(axis=1)
    return Surface.of(centroids, face_normals(mesh.vertices, mesh.faces[keep]))


def _sample(view: View, seed: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    points = back_project(view)
    weights = view.weight[view.depth > 0]
    if len(points) > ICP_POINTS:
        pick = np.random.default_rng(seed).choice(len(points), ICP_POINTS, replace=False)
        points, weights = points[pick], weights[pick]
    return points, weights


def align_views(capture: Capture, mesh: Mesh, voxel: float, seed: int = 0) -> list[Matrix]:
    """Per view, the world-to-world rigid motion that brings its depth onto `mesh`
    (identity where it moves the view's surface by less than MIN_SHIFT_VOXELS)."""
    surface = mesh_surface(mesh)
    motions = []
    for index, view in enumerate(capture.views):
        points, weights = _sample(view, seed + index)
        alignment = point_to_plane(
            points,
            surface,
            ICP_ITERATIONS,
            reach=REACH_VOXELS * voxel,
            huber=HUBER_VOXELS * voxel,
            weights=weights,
        )
        motion = alignment.transform
        moved = points.astype(np.float64) @ motion[:3, :3].T + motion[:3, 3]
        shift = float(np.linalg.norm(moved - points, axis=1).mean())
        motions.append(motion if shift >= MIN_SHIFT_VOXELS * voxel else np.eye(4))
    return motions


def apply_motions(c2ws: Sequence[Matrix], motions: Sequence[Matrix]) -> list[Matrix]:
    return [np.asarray(m, np.float64) @ c for m, c in zip(motions, c2ws, strict=True)]


def _frustum_points(c2w: Matrix, depth: float) -> Matrix:
    """A camera's centre and one point a scene depth along each of its axes."""
    corners = np.array([[0, 0, 0, 1], [depth, 0, 0, 1], [0, depth, 0, 1], [0, 0, -depth, 1]])
    return (corners @ c2w.T)[:, :3]


def anchor(corrected: Sequence[Matrix], given: Sequence[Matrix], depth: float) -> Matrix:
    """The rigid world motion that best puts the corrected cameras back on the given ones
    (least squares over their frustum points): applied to the corrected poses and the mesh,
    it keeps the result in the capture's world frame."""
    x = np.concatenate([_frustum_points(np.asarray(c), depth) for c in corrected])
    y = np.concatenate([_frustum_points(np.asarray(g), depth) for g in given])
    rotation, translation = roma.rigid_points_registration(
        torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    )
    out = np.eye(4)
    out[:3, :3] = rotation.numpy()
    out[:3, 3] = translation.numpy()
    return out


def scene_depth(capture: Capture) -> float:
    """The median depth reading over the capture: how far the cameras stand off."""
    return float(np.median(np.concatenate([v.depth[v.depth > 0] for v in capture.views])))


def transform_mesh(mesh: Mesh, motion: Matrix) -> Mesh:
    v = mesh.vertices.astype(np.float64) @ motion[:3, :3].T + motion[:3, 3]
    return Mesh(v.astype(np.float32), mesh.faces)


def corrections(capture: Capture, given: Sequence[Matrix]) -> list[ViewCorrection]:
    """Each view's final pose against the one the capture gave."""
    out = []
    for view, before in zip(capture.views, given, strict=True):
        after = view.camera.c2w
        out.append(
            ViewCorrection(
                view=view.image_file,
                rotation_degrees=rotation_degrees(before[:3, :3].T @ after[:3, :3]),
                translation_m=float(np.linalg.norm(after[:3, 3] - before[:3, 3])),
                c2w=after.copy(),
            )
        )
    return out


def pose_metrics(items: Sequence[ViewCorrection], refined: bool) -> dict[str, object]:
    """metrics.json's record of the pose refinement."""
    rotations = [c.rotation_degrees for c in items]
    translations = [c.translation_m for c in items]
    return {
        "posesRefined": refined,
        "poseCorrectionMeanDeg": round(float(np.mean(rotations)), 5) if items else 0.0,
        "poseCorrectionMaxDeg": round(float(np.max(rotations)), 5) if items else 0.0,
        "poseCorrectionMeanM": round(float(np.mean(translations)), 7) if items else 0.0,
        "poseCorrectionMaxM": round(float(np.max(translations)), 7) if items else 0.0,
        "poseCorrections": [c.as_dict() for c in items],
    }
