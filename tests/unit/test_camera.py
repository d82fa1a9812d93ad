import numpy as np
import pytest
import torch
from recon_api.capture_layout import Intrinsics, parse_layout
from recon_runner.camera import (
    Camera,
    backproject,
    backproject_depth,
    camera_from_fov,
    clip_matrix,
    look_at,
    pixel_lookup,
    project,
    resample_nearest,
    scene_near_far,
    to_clip,
)

from tests.unit.sphere_capture import CENTRE, RADIUS, sphere_cameras, sphere_depth


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


def _camera_of(intrinsics: Intrinsics, c2w: np.ndarray) -> Camera:
    i = intrinsics
    return Camera(i.fx, i.fy, i.cx, i.cy, i.width, i.height, c2w)


@pytest.mark.parametrize(("depth_w", "depth_h"), [(24, 24), (32, 18), (96, 96)])
def test_depth_at_another_resolution_sees_the_same_surface_point(
    depth_w: int, depth_h: int
) -> None:
    """The capture contract scales the colour intrinsics to the depth map's size: a point
    back-projected from a depth pixel, projected through the colour camera, lies on the
    ray of the colour pixel that sees the same surface point at the same z-depth."""
    colour_camera = sphere_cameras(size=96, views=1)[0]
    doc = {
        "w": 96,
        "h": 96,
        "fl_x": colour_camera.fx,
        "fl_y": colour_camera.fy,
        "cx": colour_camera.cx,
        "cy": colour_camera.cy,
        "depth_w": depth_w,
        "depth_h": depth_h,
        "frames": [
            {
                "file_path": "c.png",
                "depth_file_path": "d.png",
                "transform_matrix": colour_camera.c2w.tolist(),
            }
        ],
    }
    (frame,) = parse_layout(doc).frames
    assert frame.colour is not None and frame.depth is not None
    colour = _camera_of(frame.colour, colour_camera.c2w)
    depth_camera = _camera_of(frame.depth, colour_camera.c2w)
    assert (depth_camera.width, depth_camera.height) == (depth_w, depth_h)

    depth = sphere_depth(depth_camera)
    points = backproject_depth(depth_camera, depth)[depth > 0]
    assert np.abs(np.linalg.norm(points - CENTRE, axis=1) - RADIUS).max() < 1e-9
    pixels, z = project(colour, points)
    # The colour camera's ray through that pixel meets the sphere at the same point.
    again = backproject(colour, pixels, sphere_depth_at(colour, pixels))
    np.testing.assert_allclose(again, points, atol=1e-9)
    np.testing.assert_allclose(z, sphere_depth_at(colour, pixels), atol=1e-9)


def sphere_depth_at(camera: Camera, pixels: np.ndarray) -> np.ndarray:
    """Z-depth of the analytic sphere along the rays through continuous pixels [N,2]."""
    x = (pixels[:, 0] - camera.cx) / camera.fx
    y = -(pixels[:, 1] - camera.cy) / camera.fy
    rays = np.stack([x, y, -np.ones_like(x)], axis=-1) @ camera.c2w[:3, :3].T
    oc = camera.c2w[:3, 3] - CENTRE
    a = np.einsum("ij,ij->i", rays, rays)
    b = 2 * rays @ oc
    c = oc @ oc - RADIUS**2
    return (-b - np.sqrt(b * b - 4 * a * c)) / (2 * a)


def test_resampling_depth_onto_the_colour_grid_follows_the_rays() -> None:
    """Nearest-neighbour resampling between a camera and its scaled twin: each colour pixel
    takes the depth pixel its centre's ray falls in. With depth at a third of the colour
    resolution, the centre of colour pixel 3k+1 is on the ray of depth pixel k: there the
    resampled depth is the surface's own."""
    colour = sphere_cameras(size=96, views=1)[0]
    depth_camera = colour.resized(32, 32)
    depth = sphere_depth(depth_camera)
    on_colour = resample_nearest(depth, depth_camera, colour)
    assert on_colour.shape == (96, 96)
    rows, cols, inside = pixel_lookup(colour, depth_camera)
    assert inside.all()
    np.testing.assert_array_equal(rows[:, 0], np.arange(96) // 3)
    np.testing.assert_array_equal(cols[0], np.arange(96) // 3)
    same_rays = np.ix_(np.arange(1, 96, 3), np.arange(1, 96, 3))
    truth = sphere_depth(colour)[same_rays]
    assert (truth > 0).mean() > 0.2
    np.testing.assert_allclose(on_colour[same_rays], truth, atol=1e-9)
    with pytest.raises(ValueError, match="same pose"):
        pixel_lookup(colour, sphere_cameras(size=24, views=2)[1])
