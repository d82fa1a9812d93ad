import numpy as np
import pytest
import torch
from recon_runner.camera import (
    Camera,
    backproject,
    backproject_depth,
    camera_from_fov,
    clip_matrix,
    look_at,
    project,
    scene_near_far,
    to_clip,
)


def _posed_camera() -> Camera:
    return Camera(
        fx=300.0,
        fy=310.0,
        cx=130.0,
        cy=118.0,
        width=256,
        height=240,
        c2w=look_at([1.5, -2.0, 1.0], [0.1, 0.2, -0.1]),
    )


def test_identity_camera_maps_known_points_to_known_pixels():
    cam = Camera(100.0, 100.0, 64.0, 48.0, 128, 96, np.eye(4))
    pixels, depth = project(cam, np.array([[0.0, 0.0, -2.0], [1.0, 0.5, -2.0]]))
    # On the axis: the principal point. Right and up in the camera: right and up in the image
    # (v decreases because row 0 is the top).
    np.testing.assert_allclose(pixels[0], [64.0, 48.0])
    np.testing.assert_allclose(pixels[1], [64.0 + 50.0, 48.0 - 25.0])
    np.testing.assert_allclose(depth, [2.0, 2.0])


def test_project_then_backproject_returns_the_point_numpy_and_torch():
    cam = _posed_camera()
    rng = np.random.default_rng(0)
    points = rng.uniform(-0.5, 0.5, size=(200, 3))
    pixels, depth = project(cam, points)
    assert (depth > 0).all()
    np.testing.assert_allclose(backproject(cam, pixels, depth), points, atol=1e-9)

    tpoints = torch.tensor(points, dtype=torch.float64)
    tpixels, tdepth = project(cam, tpoints)
    assert isinstance(tpixels, torch.Tensor)
    back = backproject(cam, tpixels, tdepth)
    torch.testing.assert_close(back, tpoints, atol=1e-9, rtol=0)


def test_look_at_points_the_camera_at_the_target():
    c2w = look_at([3.0, 0.0, 1.0], [0.0, 0.0, 0.0])
    rot = c2w[:3, :3]
    np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    cam = camera_from_fov(50.0, 64, 64, c2w)
    pixel, _ = project(cam, np.zeros((1, 3)))
    np.testing.assert_allclose(pixel[0], [32.0, 32.0], atol=1e-9)
    # World +Z (the `up` hint) appears towards the top of the image.
    above, _ = project(cam, np.array([[0.0, 0.0, 0.3]]))
    assert above[0, 1] < 32.0


def test_backproject_depth_of_a_fronto_parallel_plane():
    cam = Camera(50.0, 50.0, 16.0, 12.0, 32, 24, np.eye(4))
    points = backproject_depth(cam, np.full((24, 32), 3.0))
    assert points.shape == (24, 32, 3)
    np.testing.assert_allclose(points[..., 2], -3.0)
    # Pixel (row 0, col 0) has its centre at (0.5, 0.5): left of and above the axis.
    np.testing.assert_allclose(points[0, 0], [(0.5 - 16) / 50 * 3, (12 - 0.5) / 50 * 3, -3.0])


def test_clip_matrix_agrees_with_project_and_puts_row_zero_at_the_top():
    cam = _posed_camera()
    lo, hi = np.full(3, -0.5), np.full(3, 0.5)
    near, far = scene_near_far(cam, lo, hi)
    points = np.random.default_rng(1).uniform(-0.5, 0.5, size=(50, 3))
    clip = to_clip(torch.tensor(points), torch.tensor(clip_matrix(cam, near, far)).unsqueeze(0))[
        0
    ].numpy()
    ndc = clip[:, :3] / clip[:, 3:]
    pixels, depth = project(cam, points)
    np.testing.assert_allclose((ndc[:, 0] + 1) * cam.width / 2, pixels[:, 0], atol=1e-9)
    np.testing.assert_allclose((ndc[:, 1] + 1) * cam.height / 2, pixels[:, 1], atol=1e-9)
    np.testing.assert_allclose(clip[:, 3], depth, atol=1e-9)
    assert (ndc[:, 2] > -1).all() and (ndc[:, 2] < 1).all()


def test_near_and_far_enclose_the_scene():
    cam = _posed_camera()
    near, far = scene_near_far(cam, [-1, -1, -1], [1, 1, 1])
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])
    _, depth = project(cam, corners)
    assert 0 < near < depth.min() and far > depth.max()


def test_resized_camera_sees_points_at_scaled_pixels():
    cam = _posed_camera()
    half = cam.resized(128, 120)
    points = np.array([[0.1, -0.2, 0.05]])
    full_px, _ = project(cam, points)
    half_px, _ = project(half, points)
    np.testing.assert_allclose(half_px, full_px / 2)
