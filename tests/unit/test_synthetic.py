import json

import numpy as np
import pytest
from PIL import Image
from recon_runner.camera import Camera, backproject_depth
from recon_runner.synthetic import (
    OBJECT_NAMES,
    DepthNoise,
    choose_depth_unit,
    make_object,
    orbit_cameras,
    render_views,
    sphere_object,
    write_capture,
)
from recon_runner.synthetic.shapes import signed_volume

CENTRE = np.array([0.2, -0.1, 0.3])
RADIUS = 0.4


def _edges_pair_up(faces: np.ndarray) -> bool:
    """Closed and consistently oriented: every directed edge has its reverse exactly once."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    forward = {tuple(e) for e in edges.tolist()}
    return len(forward) == len(edges) and all((b, a) in forward for a, b in forward)


@pytest.mark.parametrize("name", OBJECT_NAMES)
def test_objects_are_closed_outward_meshes_with_valid_colours(name):
    obj = make_object(name)
    assert _edges_pair_up(obj.mesh.faces)
    assert signed_volume(obj.mesh) > 0.01
    lo, hi = obj.bounds
    assert 0.5 < np.linalg.norm(hi - lo) < 2.5
    colours = obj.true_colour(obj.mesh.vertices)
    assert colours.shape == (len(obj.mesh.vertices), 3)
    assert colours.min() >= 0.0 and colours.max() <= 1.0
    assert np.ptp(colours, axis=0).max() > 0.3  # visibly coloured, not flat


def test_unknown_object_is_refused():
    with pytest.raises(ValueError, match="choose one of"):
        make_object("teapot")


def test_sphere_capture_is_written_in_the_design_layout(tmp_path):
    sphere = sphere_object(RADIUS, CENTRE, subdivisions=5)
    written = write_capture(sphere, tmp_path, views=6, width=64, height=48)
    meta = json.loads((tmp_path / "transforms.json").read_text())
    assert meta["camera_model"] == "PINHOLE"
    assert (meta["w"], meta["h"]) == (64, 48)
    unit = meta["depth_unit_scale_factor"]
    assert unit == choose_depth_unit(max(float(v.depth.max()) for v in written))
    assert len(meta["frames"]) == 6

    for i, frame in enumerate(meta["frames"]):
        assert frame["file_path"] == f"images/view_{i:03d}.png"
        assert frame["depth_file_path"] == f"depth/view_{i:03d}.png"
        rgba_image = Image.open(tmp_path / frame["file_path"])
        depth_image = Image.open(tmp_path / frame["depth_file_path"])
        assert rgba_image.mode == "RGBA" and depth_image.mode == "I;16"
        rgba, units = np.asarray(rgba_image), np.asarray(depth_image)
        assert units.shape == (48, 64)
        mask = rgba[..., 3] == 255
        np.testing.assert_array_equal(mask, units > 0)
        assert 0.1 < mask.mean() < 0.9  # the sphere is in view, not filling it

        # The capture's own conventions bring every depth pixel back onto the sphere.
        cam = Camera(
            meta["fl_x"], meta["fl_y"], meta["cx"], meta["cy"], 64, 48,
            np.array(frame["transform_matrix"]),
        )  # fmt: skip
        points = backproject_depth(cam, units.astype(np.float64) * unit)[mask]
        radial = np.linalg.norm(points - CENTRE, axis=1) - RADIUS
        assert np.abs(radial).max() < 1e-3
        # Colours are the sphere's colours at those points.
        np.testing.assert_allclose(
            rgba[mask][:, :3] / 255.0, sphere.true_colour(points), atol=2.5 / 255
        )


def test_orbit_sees_the_object_from_above_and_below():
    sphere = sphere_object(RADIUS, CENTRE)
    cameras = orbit_cameras(sphere, views=6)
    heights = [c.position[2] - CENTRE[2] for c in cameras]
    assert min(heights) < -0.3 and max(heights) > 0.3
    for view in render_views(sphere, cameras):
        mask = view.rgba[..., 3] > 0
        # Framed with a margin: the object never touches the image border.
        assert mask.any() and not (mask[0].any() or mask[-1].any() or mask[:, 0].any())


def test_depth_noise_grows_with_depth_and_drops_pixels():
    depth = np.where(np.arange(200_000) % 2 == 0, 1.0, 3.0).astype(np.float32).reshape(400, 500)
    noisy = DepthNoise(sigma_at_1m=0.002, dropout=0.02, seed=1).apply(depth, 0)
    dropped = noisy == 0
    assert abs(dropped.mean() - 0.02) < 0.003
    kept = ~dropped
    near = (noisy - depth)[kept & (depth == 1.0)]
    far = (noisy - depth)[kept & (depth == 3.0)]
    assert near.std() == pytest.approx(0.002, rel=0.05)
    assert far.std() == pytest.approx(0.002 * 9, rel=0.05)
    again = DepthNoise(sigma_at_1m=0.002, dropout=0.02, seed=1).apply(depth, 0)
    np.testing.assert_array_equal(noisy, again)


def test_depth_unit_is_the_finest_that_fits_sixteen_bits():
    assert choose_depth_unit(3.0) == 0.0001
    assert choose_depth_unit(10.0) == 0.0002
    assert choose_depth_unit(60.0) == 0.001
    with pytest.raises(ValueError):
        choose_depth_unit(100.0)
