import math

import numpy as np
import pytest
from recon_runner.evaluation.accuracy import (
    evaluate,
    evaluate_textured,
    psnr,
    sample_texture_srgb,
    vertex_colour,
)
from recon_runner.mesh import Mesh, TexturedMesh
from recon_runner.surface_query import SurfaceIndex, closest_on_triangles
from recon_runner.synthetic.shapes import box, icosphere

SAMPLES = 20_000


def _moved(mesh: Mesh, offset) -> Mesh:
    moved = mesh.vertices + np.asarray(offset, dtype=np.float32)
    return Mesh(moved.astype(np.float32), mesh.faces)


def test_identical_meshes_score_perfectly():
    mesh = icosphere(0.5, 4)
    acc = evaluate(mesh, mesh.vertices, mesh.faces, samples=SAMPLES)
    assert acc.chamfer_l1 < 1e-7
    assert acc.fscore == 1.0
    assert acc.normal_consistency == pytest.approx(1.0, abs=1e-6)
    assert acc.diagonal == pytest.approx(math.sqrt(3.0), rel=0.02)
    assert acc.threshold == pytest.approx(0.01 * acc.diagonal)


def test_shifted_sphere_has_the_chamfer_distance_of_geometry():
    radius, shift = 0.5, 0.02
    sphere = icosphere(radius, 5)
    acc = evaluate(sphere, _moved(sphere, [shift, 0, 0]).vertices, sphere.faces, samples=SAMPLES)
    # A point at r*n on one sphere is | |r*n - shift*x| - r | from the other; n_x is uniform
    # on [-1, 1] for uniform points on a sphere (Archimedes).
    nx = np.linspace(-1, 1, 200_001)
    gap = np.abs(np.sqrt(radius**2 - 2 * radius * shift * nx + shift**2) - radius)
    assert acc.chamfer_l1 == pytest.approx(gap.mean(), rel=0.03)
    assert acc.chamfer_l1_ratio == pytest.approx(acc.chamfer_l1 / acc.diagonal)
    expected_recall = float(np.mean(gap < acc.threshold))
    assert acc.recall == pytest.approx(expected_recall, abs=0.02)
    assert acc.precision == pytest.approx(expected_recall, abs=0.02)
    assert 0.0 < acc.fscore < 1.0


def test_a_far_away_reconstruction_scores_zero():
    mesh = box([0.4, 0.4, 0.4])
    acc = evaluate(mesh, _moved(mesh, [5, 0, 0]).vertices, mesh.faces, samples=2000)
    assert acc.fscore == 0.0
    assert acc.chamfer_l1 > 4.0


def test_closest_point_on_a_triangle_inside_edge_and_corner():
    a, b, c = np.array([[0.0, 0, 0]]), np.array([[1.0, 0, 0]]), np.array([[0.0, 1, 0]])
    cases = [
        ([0.2, 0.3, 2.0], [0.2, 0.3, 0.0]),
        ([0.5, -1.0, 0.5], [0.5, 0, 0]),
        ([-1.0, -1, 0], [0, 0, 0]),
    ]
    for query, expected in cases:
        point, bary = closest_on_triangles(np.array([query]), a, b, c)
        np.testing.assert_allclose(point[0], expected, atol=1e-12)
        np.testing.assert_allclose(bary.sum(), 1.0)


def test_surface_index_finds_exact_distances_to_a_box():
    index = SurfaceIndex(box([1.0, 1.0, 1.0]).vertices, box([1.0, 1.0, 1.0]).faces, 5000)
    queries = np.array([[0.0, 0.0, 0.8], [0.9, 0.9, 0.0], [0.1, 0.0, 0.0]])
    found = index.closest(queries)
    dist = np.linalg.norm(found.points - queries, axis=1)
    np.testing.assert_allclose(dist, [0.3, math.hypot(0.4, 0.4), 0.4], atol=1e-6)


def test_surface_index_answers_when_no_closest_point_lies_on_an_edge():
    """Queries whose closest points are all inside faces once crashed the edge pass."""
    index = SurfaceIndex(box([1.0, 1.0, 1.0]).vertices, box([1.0, 1.0, 1.0]).faces, 5000)
    queries = np.array([[0.1, 0.2, 0.7], [-0.2, 0.1, -0.9]])
    found = index.closest(queries)
    dist = np.linalg.norm(found.points - queries, axis=1)
    np.testing.assert_allclose(dist, [0.2, 0.4], atol=1e-6)


def test_texture_lookup_follows_gltf_orientation_and_repeats():
    tex = np.zeros((2, 2, 3), dtype=np.uint8)
    tex[0, 0] = [255, 0, 0]  # top-left texel: uv near (0, 0)
    tex[1, 1] = [0, 0, 255]
    got = sample_texture_srgb(tex, np.array([[0.25, 0.25], [0.75, 0.75], [1.25, 1.25]]))
    np.testing.assert_allclose(got, [[1, 0, 0], [0, 0, 1], [1, 0, 0]])


def test_colour_psnr_of_a_textured_reconstruction():
    sphere = icosphere(0.5, 3)
    uvs = np.full((len(sphere.vertices), 2), 0.5, dtype=np.float32)
    texture = np.full((4, 4, 3), 128, dtype=np.uint8)
    recon = TexturedMesh(sphere.vertices, sphere.faces, uvs, texture)

    def grey(points):
        return np.full((len(points), 3), 0.5)

    acc = evaluate_textured(sphere, grey, recon, samples=5000)
    assert acc.colour_psnr == pytest.approx(psnr([0.5], [128 / 255]), rel=1e-9)
    assert acc.colour_psnr > 40


def test_vertex_colours_match_a_smooth_true_colour():
    sphere = icosphere(0.5, 4)

    def colour(points):
        return np.clip(0.5 + 0.8 * np.asarray(points), 0.0, 1.0)

    exact = evaluate(
        sphere,
        sphere.vertices,
        sphere.faces,
        colour,
        vertex_colour(sphere.faces, colour(sphere.vertices)),
        samples=SAMPLES,
    )
    wrong = evaluate(
        sphere,
        sphere.vertices,
        sphere.faces,
        colour,
        vertex_colour(sphere.faces, 1.0 - colour(sphere.vertices)),
        samples=SAMPLES,
    )
    assert exact.colour_psnr is not None and wrong.colour_psnr is not None
    assert exact.colour_psnr > 40 > 15 > wrong.colour_psnr
