"""Fusion: a capture of a known sphere fuses to that sphere, closed and in the world frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from recon_runner.control import StopToken
from recon_runner.errors import StopRequested
from recon_runner.mesh import Mesh
from recon_runner.stages.capture import load_capture
from recon_runner.stages.fusion import (
    compact,
    fuse,
    grid_around,
    largest_component,
    signed_volume,
    simplify,
)

from tests.unit.sphere_capture import CENTRE, RADIUS, write_sphere_capture


def fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares sphere: |p|^2 = 2 c.p + (r^2 - |c|^2)."""
    a = np.concatenate([2 * points, np.ones((len(points), 1))], axis=1)
    b = (points**2).sum(axis=1)
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    centre = sol[:3]
    return centre, float(np.sqrt(sol[3] + centre @ centre))


@pytest.fixture(scope="module")
def sphere_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sphere")
    write_sphere_capture(root, size=96)
    return root


def test_sphere_fuses_to_sphere_of_right_radius_and_centre(sphere_dir: Path) -> None:
    capture = load_capture(sphere_dir)
    result = fuse(capture, resolution=96, face_budget=8000, device=torch.device("cpu"))
    mesh = result.mesh
    assert 0 < len(mesh.faces) <= 8000
    centre, radius = fit_sphere(mesh.vertices.astype(np.float64))
    # Within a fraction of a voxel: the fused surface is in the world frame, unshifted.
    assert np.linalg.norm(centre - CENTRE) < 0.3 * result.voxel_size
    assert abs(radius - RADIUS) < 0.5 * result.voxel_size
    distances = np.linalg.norm(mesh.vertices - CENTRE, axis=1)
    assert np.abs(distances - RADIUS).max() < 1.5 * result.voxel_size
    # Closed and wound outward: the enclosed volume is the sphere's.
    assert signed_volume(mesh) == pytest.approx(4 / 3 * np.pi * RADIUS**3, rel=0.03)


def test_fusion_is_deterministic(sphere_dir: Path) -> None:
    capture = load_capture(sphere_dir)
    a = fuse(capture, resolution=48, face_budget=2000, device=torch.device("cpu")).mesh
    b = fuse(capture, resolution=48, face_budget=2000, device=torch.device("cpu")).mesh
    np.testing.assert_array_equal(a.vertices, b.vertices)
    np.testing.assert_array_equal(a.faces, b.faces)


def test_fusion_reports_progress_and_stops_on_request(sphere_dir: Path) -> None:
    capture = load_capture(sphere_dir)
    fractions: list[float] = []
    fuse(capture, 48, 2000, torch.device("cpu"), lambda f, _m: fractions.append(f))
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    stop = StopToken()
    stop.request()
    with pytest.raises(StopRequested):
        fuse(capture, 48, 2000, torch.device("cpu"), stop=stop)


def test_grid_covers_points_with_cubic_voxels() -> None:
    points = np.array([[0, 0, 0], [2, 1, 0.5]], dtype=np.float32)
    grid = grid_around(points, 64)
    far_corner = grid.origin + (np.array(grid.shape) - 1) * grid.voxel
    assert np.all(grid.origin < points.min(axis=0))
    assert np.all(far_corner > points.max(axis=0))
    assert grid.shape[0] == 64 and grid.shape[1] < grid.shape[0]


def _tetra(offset: float, scale: float) -> Mesh:
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32) * scale + offset
    f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], dtype=np.int32)
    return Mesh(v, f)


def test_largest_component_drops_floaters() -> None:
    big, small = _tetra(0.0, 1.0), _tetra(5.0, 0.1)
    faces = np.concatenate([small.faces, big.faces + 4])
    # Two big copies sharing nothing with the floater: keep the component with most faces.
    merged = Mesh(np.concatenate([small.vertices, big.vertices]), faces)
    doubled = Mesh(
        np.concatenate([merged.vertices, big.vertices + 10]),
        np.concatenate([merged.faces, big.faces + 8, big.faces[:2] + 8]),
    )
    kept = largest_component(doubled)
    assert len(kept.faces) == 6 and len(kept.vertices) == 4
    assert kept.vertices.min() >= 10


def test_simplify_respects_budget_and_compact_renumbers(sphere_dir: Path) -> None:
    capture = load_capture(sphere_dir)
    dense = fuse(capture, 64, 10**9, torch.device("cpu")).mesh
    small = simplify(dense, 500)
    assert len(small.faces) <= 500
    assert small.faces.max() < len(small.vertices)
    unused = Mesh(np.concatenate([dense.vertices, [[9, 9, 9]]]).astype(np.float32), dense.faces)
    assert len(compact(unused).vertices) == len(dense.vertices)


def test_holes_in_depth_without_a_mask_never_carve_the_surface(tmp_path: Path) -> None:
    """No alpha, no mask: the object is what the depth sees. A block of missing readings
    (glare, a dark patch) in the middle of one view's sphere is a hole in the measurement,
    not background. Taken for background it carved a dent 25 voxels deep; now every vertex
    stays on the sphere (where only the hole looked, the surface may stay open rather than
    be guessed), and no skirt or shadow of solid grows beside it."""
    write_sphere_capture(tmp_path, size=96, alpha=False)
    path = tmp_path / "depth/view_000.png"
    depth = np.asarray(Image.open(path)).copy()
    rows, cols = np.nonzero(depth)
    r, c = int(rows.mean()), int(cols.mean())
    depth[r - 12 : r + 12, c - 12 : c + 12] = 0
    Image.fromarray(depth).save(path)
    capture = load_capture(tmp_path)
    assert not capture.views[0].mask_given
    result = fuse(capture, resolution=96, face_budget=8000, device=torch.device("cpu"))
    distances = np.linalg.norm(result.mesh.vertices - CENTRE, axis=1)
    assert np.abs(distances - RADIUS).max() < 1.5 * result.voxel_size
    assert len(result.mesh.faces) > 1000
