"""Pose refinement: known pose errors come back, and the capture's world frame stays."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from recon_runner.stages.capture import back_project, load_capture
from recon_runner.stages.fusion import fuse
from recon_runner.stages.icp import Surface, point_to_plane, rotation_degrees
from recon_runner.stages.pose_refine import (
    align_views,
    anchor,
    apply_motions,
    poses,
    scene_depth,
    with_poses,
)
from recon_runner.surface_query import sample_surface
from recon_runner.synthetic import (
    CaptureStyle,
    SyntheticObject,
    orbit_cameras,
    shapes,
    write_capture,
)

ERROR_DEGREES, ERROR_M = 0.5, 0.005
ROUNDS = 2  # the standard preset's pose_rounds


def lumpy_object() -> SyntheticObject:
    """Three unequal balls fused together: no symmetry, so a view's depth fixes all six
    degrees of freedom of its pose (a sphere, a torus or a plane would leave some free)."""
    centres = np.array([[0.0, 0.0, 0.0], [0.22, 0.05, 0.02], [-0.05, 0.17, 0.12]])
    radii = np.array([0.2, 0.13, 0.1])

    def sdf(p: np.ndarray) -> np.ndarray:
        d = np.stack(
            [np.linalg.norm(p - c, axis=1) - r for c, r in zip(centres, radii, strict=True)]
        )
        k = 0.04
        out = d[0]
        for other in d[1:]:
            h = np.clip(0.5 + 0.5 * (other - out) / k, 0.0, 1.0)
            out = other * (1 - h) + out * h - k * h * (1 - h)
        return out

    mesh = shapes.from_signed_distance(sdf, [-0.3, -0.3, -0.3], [0.45, 0.4, 0.35], voxel=0.006)
    return SyntheticObject("lumpy", "three fused balls", mesh, lambda p: np.full((len(p), 3), 0.5))


def rigid(rotvec: np.ndarray, translation: np.ndarray) -> np.ndarray:
    angle = np.linalg.norm(rotvec)
    k = np.zeros((3, 3)) if angle == 0 else np.cross(np.eye(3), rotvec / angle)
    out = np.eye(4)
    out[:3, :3] = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k
    out[:3, 3] = translation
    return out


def test_point_to_plane_recovers_a_known_motion() -> None:
    obj = lumpy_object()
    rng = np.random.default_rng(0)
    target = sample_surface(obj.mesh.vertices, obj.mesh.faces, 100_000, rng)
    source = sample_surface(obj.mesh.vertices, obj.mesh.faces, 3000, rng).points
    axis = np.array([0.3, -0.8, 0.5]) / np.linalg.norm([0.3, -0.8, 0.5])
    motion = rigid(np.radians(ERROR_DEGREES) * axis, np.array([0.004, -0.003, 0.0]))
    moved = source @ motion[:3, :3].T + motion[:3, 3]
    found = point_to_plane(
        moved, Surface.of(target.points, target.normals), 10, reach=0.03, huber=0.005
    ).transform
    back = found @ motion
    assert rotation_degrees(back[:3, :3]) < ERROR_DEGREES / 10
    assert np.linalg.norm(back[:3, 3]) < ERROR_M / 10


def test_anchor_undoes_a_common_motion_of_every_camera() -> None:
    obj = lumpy_object()
    given = [c.c2w for c in orbit_cameras(obj, 6, 64, 64)]
    common = rigid(np.array([0.01, -0.02, 0.015]), np.array([0.03, 0.01, -0.02]))
    frame = anchor([common @ g for g in given], given, depth=1.5)
    np.testing.assert_allclose(frame @ common, np.eye(4), atol=1e-9)


@pytest.fixture(scope="module")
def posed_capture(tmp_path_factory: pytest.TempPathFactory):
    """A capture whose written poses are off by 0.25-0.5 deg and 2.5-5 mm per view, with
    the part all views share taken out (it is a move of the whole world, which no capture
    can tell from the truth): (capture folder, true poses)."""
    obj = lumpy_object()
    root = tmp_path_factory.mktemp("posed")
    style = CaptureStyle(pose_error_degrees=ERROR_DEGREES, pose_error_m=ERROR_M)
    write_capture(obj, root, views=6, width=192, height=192, style=style)
    true = [c.c2w for c in orbit_cameras(obj, 6, 192, 192)]
    meta = json.loads((root / "transforms.json").read_text())
    written = [np.asarray(f["transform_matrix"]) for f in meta["frames"]]
    depth = scene_depth(load_capture(root))
    shared = anchor(true, written, depth)  # moves the truth onto the written poses
    for frame, pose in zip(meta["frames"], written, strict=True):
        frame["transform_matrix"] = (np.linalg.inv(shared) @ pose).tolist()
    (root / "transforms.json").write_text(json.dumps(meta))
    return root, true


def surface_errors(capture, true: list[np.ndarray]) -> np.ndarray:
    """Per view, the mean distance (m) between where its pose and the true pose put its
    depth points."""
    out = []
    for view, t in zip(capture.views, true, strict=True):
        points = back_project(view).astype(np.float64)
        back = np.linalg.inv(view.camera.c2w)
        local = points @ back[:3, :3].T + back[:3, 3]
        out.append(np.linalg.norm(points - (local @ t[:3, :3].T + t[:3, 3]), axis=1).mean())
    return np.asarray(out)


def test_known_pose_errors_come_back(posed_capture) -> None:
    """Each view aligned to the surface fused from all of them, twice, as `standard` does.

    The bound is not a tenth of the error: aligning to a surface fused from the views
    themselves settles where the views agree with their own blur, and on this capture that
    leaves about half of the surface error (measured: mean 6.8 -> 3.2 mm, worst view
    10.7 -> 4.5 mm; four rounds instead of two give the same). A tenth is reached against
    the true surface (`test_point_to_plane_recovers_a_known_motion`); the gap is the
    fused target's bias, not the alignment. Camera rotations are not asserted: at this
    field of view a turn of the camera and a sideways shift move the surface alike, and
    only the surface error is what the reconstruction feels."""
    root, true = posed_capture
    capture = load_capture(root)
    given = poses(capture)
    depth = scene_depth(capture)
    before = surface_errors(capture, true)
    for _ in range(ROUNDS):  # as the pipeline: align to depth fused without the masks
        fused = fuse(capture, 160, 30_000, torch.device("cpu"), carve=False)
        motions = align_views(capture, fused.mesh, fused.voxel_size)
        corrected = apply_motions(poses(capture), motions)
        frame = anchor(corrected, given, depth)
        capture = with_poses(capture, [frame @ c for c in corrected])
    after = surface_errors(capture, true)
    assert after.mean() < 0.6 * before.mean(), (before, after)
    assert np.all(after < before), (before, after)
    # The anchor kept the world frame: the corrected cameras sit on the given ones on
    # average, to well within the per-view error.
    centres = np.array(
        [v.camera.c2w[:3, 3] - g[:3, 3] for v, g in zip(capture.views, given, strict=True)]
    )
    assert np.linalg.norm(centres.mean(axis=0)) < ERROR_M


def test_a_consistent_capture_keeps_its_poses(tmp_path: Path) -> None:
    obj = lumpy_object()
    write_capture(obj, tmp_path, views=6, width=128, height=128)
    capture = load_capture(tmp_path)
    fused = fuse(capture, 128, 20_000, torch.device("cpu"))
    motions = align_views(capture, fused.mesh, fused.voxel_size)
    assert all(np.array_equal(m, np.eye(4)) for m in motions)
