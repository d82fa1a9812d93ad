"""Refinement: rendering-driven vertex optimisation lands closer than the fusion voxel."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from recon_runner.control import StopToken
from recon_runner.errors import StopRequested
from recon_runner.render import get_renderer
from recon_runner.stages.capture import load_capture
from recon_runner.stages.fusion import fuse
from recon_runner.stages.refine import (
    RefineWeights,
    SmoothParametrisation,
    edge_face_pairs,
    refine,
    uniform_laplacian,
)
from recon_runner.stages.targets import prepare_targets

from tests.unit.sphere_capture import CENTRE, RADIUS, write_sphere_capture

WEIGHTS = RefineWeights(depth=1.0, mask=1.0, colour=0.05, laplacian=0.1, normal=0.5)


@pytest.fixture(scope="module")
def coarse_sphere(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("sphere")
    write_sphere_capture(root, size=96)
    capture = load_capture(root)
    fused = fuse(capture, resolution=40, face_budget=3000, device=torch.device("cpu"))
    bounds = (fused.mesh.vertices.min(axis=0), fused.mesh.vertices.max(axis=0))
    targets = prepare_targets(capture, 96, bounds, torch.device("cpu"))
    return fused, targets


def radial_error(vertices: np.ndarray) -> float:
    return float(np.abs(np.linalg.norm(vertices - CENTRE, axis=1) - RADIUS).mean())


def test_refinement_lands_well_inside_a_voxel(coarse_sphere) -> None:
    fused, targets = coarse_sphere
    before = radial_error(fused.mesh.vertices)
    fractions: list[float] = []
    result = refine(
        fused.mesh,
        targets,
        get_renderer("torch", "cpu"),
        iterations=40,
        learning_rate=0.2,
        voxel=fused.voxel_size,
        weights=WEIGHTS,
        on_fraction=lambda f, _m: fractions.append(f),
    )
    after = radial_error(result.mesh.vertices)
    assert after < before / 2
    assert after < 0.15 * fused.voxel_size
    np.testing.assert_array_equal(result.mesh.faces, fused.mesh.faces)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    # The per-vertex colours fitted alongside approach the sphere's colours.
    expected = np.clip(0.5 + 0.4 * (result.mesh.vertices - CENTRE) / RADIUS, 0, 1)
    assert np.abs(result.colours - expected).mean() < 0.1


def test_same_seed_same_result(coarse_sphere) -> None:
    fused, targets = coarse_sphere
    runs = [
        refine(
            fused.mesh,
            targets,
            get_renderer("torch", "cpu"),
            5,
            0.2,
            fused.voxel_size,
            WEIGHTS,
            seed=1,
            views_per_step=2,
        ).mesh.vertices
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0], runs[1])


def test_stops_at_a_safe_point(coarse_sphere) -> None:
    fused, targets = coarse_sphere
    stop = StopToken()
    steps: list[float] = []

    def progress(fraction: float, _message: str) -> None:
        steps.append(fraction)
        if len(steps) == 3:
            stop.request()

    with pytest.raises(StopRequested):
        refine(
            fused.mesh,
            targets,
            get_renderer("torch", "cpu"),
            50,
            0.2,
            fused.voxel_size,
            WEIGHTS,
            on_fraction=progress,
            stop=stop,
        )
    assert len(steps) == 3


def test_smooth_parametrisation_round_trips() -> None:
    faces = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]], dtype=np.int32)
    laplacian = uniform_laplacian(faces, 4)
    assert np.allclose(laplacian.sum(axis=1), 0)
    param = SmoothParametrisation(laplacian, 5.0)
    x = torch.rand(4, 3)
    np.testing.assert_allclose(param.solve(param.to_u(x)).numpy(), x.numpy(), atol=1e-5)


def test_edge_face_pairs_of_a_closed_tetrahedron() -> None:
    faces = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]], dtype=np.int32)
    pairs = edge_face_pairs(faces)
    assert len(pairs) == 6  # every edge of a tetrahedron joins two faces
    assert all(a != b for a, b in pairs)
