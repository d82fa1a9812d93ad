"""Texturing: an atlas where every texel has a colour, matching what the cameras saw."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from recon_runner.evaluation.accuracy import sample_texture_srgb
from recon_runner.render import get_renderer
from recon_runner.stages.capture import load_capture
from recon_runner.stages.fusion import fuse
from recon_runner.stages.targets import prepare_targets
from recon_runner.stages.texture import dilate, fill_unseen, texture_mesh, unwrap

from tests.unit.sphere_capture import sphere_colour, write_sphere_capture


@pytest.fixture(scope="module")
def sphere_setup(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("sphere")
    write_sphere_capture(root, size=96)
    capture = load_capture(root)
    fused = fuse(capture, resolution=64, face_budget=3000, device=torch.device("cpu"))
    bounds = (fused.mesh.vertices.min(axis=0), fused.mesh.vertices.max(axis=0))
    targets = prepare_targets(capture, 96, bounds, torch.device("cpu"))
    return fused, targets


def test_unwrap_gives_one_uv_per_vertex_inside_the_unit_square(sphere_setup) -> None:
    fused, _ = sphere_setup
    atlas = unwrap(fused.mesh, 256, chart_iterations=0)
    assert atlas.uvs.shape == (len(atlas.vertex_map), 2)
    assert atlas.uvs.min() >= 0.0 and atlas.uvs.max() <= 1.0
    # Same triangles: the atlas faces map back onto the mesh faces.
    mapped = atlas.vertex_map[atlas.faces]
    assert sorted(map(tuple, np.sort(mapped, axis=1))) == sorted(
        map(tuple, np.sort(fused.mesh.faces, axis=1))
    )


@pytest.mark.parametrize("iterations", [0, 5])
def test_texture_matches_the_seen_colours_with_no_empty_texels(sphere_setup, iterations) -> None:
    fused, targets = sphere_setup
    textured = texture_mesh(
        fused.mesh,
        targets,
        get_renderer("torch", "cpu"),
        256,
        iterations,
        0.001,
        fused.voxel_size,
        chart_iterations=0,
    )
    assert textured.texture.shape == (256, 256, 3)
    # Every texel, inside the charts or in the padding between them, took a sphere colour
    # (all channels >= 0.1 on this sphere): nothing is left black for filtering to reach.
    assert textured.texture.min() >= 0.08 * 255
    # Colours at the face centres, read as a viewer reads them, match the true colour.
    corners = textured.vertices[textured.faces]
    centre_uv = textured.uvs[textured.faces].mean(axis=1).astype(np.float64)
    got = sample_texture_srgb(textured.texture, centre_uv)
    want = sphere_colour(corners.mean(axis=1))
    assert np.abs(got - want).mean() < 0.02
    assert np.percentile(np.abs(got - want).max(axis=1), 99) < 0.1


def test_fill_unseen_takes_the_nearest_seen_point_in_3d() -> None:
    points = np.array([[0, 0, 0], [1, 0, 0], [0.1, 0, 0], [0.9, 0, 0]], dtype=np.float32)
    colour = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 0]], dtype=np.float32)
    seen = np.array([True, True, False, False])
    filled = fill_unseen(colour, seen, points)
    np.testing.assert_array_equal(filled[2], [1, 0, 0])
    np.testing.assert_array_equal(filled[3], [0, 1, 0])


def test_dilate_fills_every_texel_outside_the_charts() -> None:
    texture = np.zeros((8, 8, 3), dtype=np.float32)
    covered = np.zeros((8, 8), dtype=bool)
    covered[2:4, 2:4] = True
    texture[covered] = [0.2, 0.4, 0.6]
    out = dilate(texture, covered)
    np.testing.assert_allclose(out.reshape(-1, 3), np.tile([0.2, 0.4, 0.6], (64, 1)))
