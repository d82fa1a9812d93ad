"""write_capture renders from the cameras it is given, or from orbit_cameras by default."""

import json

import numpy as np
import pytest
from recon_runner.synthetic import CaptureStyle, orbit_cameras, sphere_object, write_capture

SIZE = 32


def _poses(root):
    frames = json.loads((root / "transforms.json").read_text())["frames"]
    return [np.array(f["transform_matrix"]) for f in frames]


def test_default_cameras_are_the_orbit(tmp_path):
    obj = sphere_object(0.3, np.zeros(3), subdivisions=2)
    write_capture(obj, tmp_path, views=4, width=SIZE, height=SIZE)
    expected = [c.c2w for c in orbit_cameras(obj, 4, SIZE, SIZE)]
    np.testing.assert_allclose(_poses(tmp_path), expected)


def test_given_cameras_are_rendered_and_written(tmp_path):
    obj = sphere_object(0.3, np.zeros(3), subdivisions=2)
    cameras = orbit_cameras(obj, 6, SIZE, SIZE)[::2]  # three, not the default orbit
    style = CaptureStyle(depth_blocks=4)
    views = write_capture(obj, tmp_path, width=SIZE, height=SIZE, style=style, cameras=cameras)
    assert len(views) == 3
    np.testing.assert_allclose(_poses(tmp_path), [c.c2w for c in cameras])
    assert all(v.camera is c for v, c in zip(views, cameras, strict=True))
    assert all(v.depth.shape == (SIZE, SIZE) and (v.depth > 0).any() for v in views)


def test_cameras_of_another_size_are_refused(tmp_path):
    obj = sphere_object(0.3, np.zeros(3), subdivisions=2)
    cameras = orbit_cameras(obj, 2, SIZE * 2, SIZE * 2)
    with pytest.raises(ValueError, match="32x32"):
        write_capture(obj, tmp_path, width=SIZE, height=SIZE, cameras=cameras)
