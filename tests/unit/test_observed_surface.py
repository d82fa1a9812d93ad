"""The observed surface: a capture whose bottom no view sees yields no face below the
lowest observed point by default, and with closeHoles a watertight mesh whose fill is
reported and kept apart in the GLB."""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import trimesh
from recon_runner.camera import camera_from_fov, look_at
from recon_runner.config import ReconConfig, config_for
from recon_runner.control import ignore_progress
from recon_runner.mesh import Mesh
from recon_runner.pipeline import ReconResult, reconstruct
from recon_runner.stages.capture import load_capture
from recon_runner.stages.observed import (
    AGREEMENT_VOXELS,
    MAX_AGREEMENT_VOXELS,
    agreeing_faces,
    agreeing_vertices,
    agreement_tolerance,
    depth_slope,
    reached_faces,
    reading_spacing,
    readings_on_faces,
)
from recon_runner.stages.targets import Targets
from recon_runner.synthetic.objects import sphere_object
from recon_runner.synthetic.views import render_views
from recon_runner.synthetic.writer import write_views

CENTRE = (0.05, -0.02, 0.1)
RADIUS = 0.3


def test_a_face_counts_where_measured_and_rendered_depth_agree() -> None:
    face_ids = torch.tensor([[0.0, 1.0, 2.0], [3.0, 3.0, 0.0]])  # triangle index + 1
    rendered = torch.tensor([[0.0, 1.00, 1.00], [1.00, 1.00, 0.0]])
    measured = torch.tensor([[1.0, 1.01, 1.20], [0.0, 0.99, 1.0]])
    found = agreeing_faces(face_ids, rendered, measured, tolerance=0.05)
    # Face 0 agrees; face 1 is 0.2 behind the reading (hidden or guessed); face 2 agrees at
    # one pixel and has no reading at the other; background pixels count for nothing.
    assert sorted(found.tolist()) == [0, 2]


def test_a_vertex_counts_where_it_lands_on_a_reading_of_its_own_depth() -> None:
    measured = torch.zeros(4, 4)
    measured[1, 2] = 2.0
    # Clip positions whose pixel is (col 2, row 1) in a 4x4 image, at depths w.
    ndc_x, ndc_y = (2.5 / 4) * 2 - 1, (1.5 / 4) * 2 - 1
    clip = torch.tensor(
        [
            [ndc_x * 2.0, ndc_y * 2.0, 0.0, 2.0],  # on the reading
            [ndc_x * 2.5, ndc_y * 2.5, 0.0, 2.5],  # same pixel, half a metre behind it
            [-0.9 * 2.0, -0.9 * 2.0, 0.0, 2.0],  # a pixel without a reading
            [5.0, 0.0, 0.0, 1.0],  # outside the image
        ]
    )
    assert agreeing_vertices(clip, measured, tolerance=0.05).tolist() == [True, False, False, False]


def test_the_slope_is_the_depth_change_per_pixel_and_a_depth_edge_is_no_slope() -> None:
    cols = torch.arange(8, dtype=torch.float32)
    rendered = (1.0 + 0.01 * cols).repeat(6, 1)  # a plane leaning away along the rows
    rendered[:, 5:] += 0.5  # another surface, half a metre behind, from column 5 on
    face_ids = torch.ones(6, 8)
    slope = depth_slope(face_ids, rendered)
    # 1 cm a pixel everywhere, at the edge too (each side has a neighbour on its own
    # surface) and in the first and last columns (one neighbour, not wrapped around).
    assert torch.allclose(slope, torch.full((6, 8), 0.01), atol=1e-6)
    face_ids[:, 6] = 0  # a pixel between two background pixels has no slope to measure
    face_ids[:, 4] = 0
    assert torch.all(depth_slope(face_ids, rendered)[:, 5] == 0)


def test_a_slanted_surface_agrees_with_readings_shared_over_pixel_blocks() -> None:
    """Phone depth measured at a quarter of the resolution, stored nearest-upsampled: each
    4x4 block holds the reading of its first pixel. On a surface seen at a slant the other
    pixels of a block are off by up to three pixels' worth of depth change, more than the
    fixed tolerance; they still measured that surface."""
    voxel = 0.005
    cols = torch.arange(16, dtype=torch.float32)
    rendered = (1.0 + 0.006 * cols).repeat(16, 1)  # 6 mm a pixel: about 60 degrees
    measured = rendered[::4, ::4].repeat_interleave(4, 0).repeat_interleave(4, 1)
    face_ids = torch.ones(16, 16)
    off = (rendered - measured).abs()
    assert off.max() > AGREEMENT_VOXELS * voxel  # a fixed tolerance misses them
    tolerance = agreement_tolerance(face_ids, rendered, voxel)
    assert torch.all(off < tolerance)
    # A guessed surface in front of the real one: its readings lie well behind it.
    assert torch.all(tolerance <= MAX_AGREEMENT_VOXELS * voxel)
    behind = rendered + MAX_AGREEMENT_VOXELS * voxel * 1.01
    assert len(agreeing_faces(face_ids, rendered, behind, tolerance)) == 0
    # Seen square-on (no slope), the tolerance is the fixed one.
    flat = torch.ones(16, 16)
    assert torch.allclose(
        agreement_tolerance(face_ids, flat, voxel), torch.full((16, 16), AGREEMENT_VOXELS * voxel)
    )


def test_a_face_with_a_reading_on_it_counts_whichever_pixel_the_reading_is_at() -> None:
    """Seen at a grazing angle, the pixel a reading lands on may show another face or none;
    the reading still lies on the face it measured. A reading at a depth edge does not
    count: upsampled depth puts such readings in the air beside the object."""
    vertices = np.array(
        [[0, 0, 0], [0.03, 0, 0], [0, 0.03, 0], [1, 0, 0], [1.03, 0, 0], [1, 0.03, 0]],
        dtype=np.float32,
    )
    mesh = Mesh(vertices, np.array([[0, 1, 2], [3, 4, 5]], dtype=np.int64))
    points = torch.full((1, 7, 7, 3), 5.0)  # readings far from both faces
    depth = torch.ones(1, 7, 7)
    points[0, 2, 2] = torch.tensor([0.01, 0.01, 0.004])  # 4 mm off face 0's centre
    points[0, 4, 4] = torch.tensor([1.01, 0.01, 0.05])  # 5 cm above face 1's centre
    points[0, 4, 2] = torch.tensor([1.01, 0.01, 0.0])  # on face 1, but beside a depth hole
    depth[0, 5, 2] = 0.0
    camera = camera_from_fov(45.0, 7, 7, look_at(np.array([0.0, 0.0, 1.0]), np.zeros(3)))
    targets = Targets(
        cameras=(camera,),
        clip=torch.eye(4)[None],
        rgb=torch.zeros(1, 7, 7, 3),
        mask=torch.ones(1, 7, 7, dtype=torch.bool),
        depth=depth,
        points=points,
        outside=torch.zeros(1, 7, 7),
        weight=torch.ones(1, 7, 7),
    )
    none = np.zeros(2, dtype=bool)
    assert readings_on_faces(mesh, targets, 0.005, skip=none).tolist() == [True, False]
    assert readings_on_faces(mesh, targets, 0.06, skip=none).tolist() == [True, True]
    # A face already known to be observed is not looked up again.
    assert readings_on_faces(mesh, targets, 0.06, skip=np.array([True, False])).tolist() == [
        False,
        True,
    ]
    # Without the hole, the reading on face 1 is inside the depth and counts.
    depth[0, 5, 2] = 1.0
    assert readings_on_faces(mesh, targets, 0.005, skip=none).tolist() == [True, True]


def test_a_face_counts_as_measured_only_within_reach_of_a_reading() -> None:
    """Reach is two voxels plus the view's spacing between readings, so that coarse depth
    (a reading every few centimetres) still reaches the faces between its readings, while a
    face farther from every reading is never measured; readings at a depth edge count here
    (at the resolution the depth was measured at, none is a copy)."""
    vertices = np.array(
        [[0, 0, 0], [0.01, 0, 0], [0, 0.01, 0], [0.2, 0, 0], [0.21, 0, 0], [0.2, 0.01, 0]],
        dtype=np.float32,
    )
    mesh = Mesh(vertices, np.array([[0, 1, 2], [3, 4, 5]], dtype=np.int64))
    size = 64
    camera = camera_from_fov(45.0, size, size, look_at(np.array([0.0, 0.0, 1.0]), np.zeros(3)))
    depth = torch.zeros(1, size, size)
    points = torch.zeros(1, size, size, 3)
    depth[0, 0, 0] = 1.0  # one reading, at the corner (a depth edge), on face 0
    points[0, 0, 0] = torch.tensor([0.003, 0.003, 0.0])
    targets = Targets(
        cameras=(camera,),
        clip=torch.eye(4)[None],
        rgb=torch.zeros(1, size, size, 3),
        mask=torch.ones(1, size, size, dtype=torch.bool),
        depth=depth,
        points=points,
        outside=torch.zeros(1, size, size),
        weight=torch.ones(1, size, size),
    )
    spacing = reading_spacing(targets, 0)
    assert spacing == pytest.approx(1.0 / camera.fx)  # metres between readings at 1 m
    assert reached_faces(mesh, targets, voxel=0.001).tolist() == [True, False]
    # Face 1's centre is 0.2 m from the reading: reached once two voxels and a spacing span it.
    assert 2 * 0.05 + spacing < 0.2 < 2 * 0.1 + spacing
    assert reached_faces(mesh, targets, voxel=0.05).tolist() == [True, False]
    assert reached_faces(mesh, targets, voxel=0.1).tolist() == [True, True]


def _orbit_from_above(views: int = 8, size: int = 48) -> list[Any]:
    """Cameras around the sphere at 25-35 degrees of elevation: the bottom is never seen."""
    cameras = []
    for i in range(views):
        azimuth = 2 * np.pi * i / views
        elevation = np.radians(25.0 if i % 2 else 35.0)
        direction = np.array(
            [np.cos(azimuth) * np.cos(elevation), np.sin(azimuth) * np.cos(elevation),
             np.sin(elevation)]
        )  # fmt: skip
        c2w = look_at(np.asarray(CENTRE) + 1.3 * direction, np.asarray(CENTRE))
        cameras.append(camera_from_fov(45.0, size, size, c2w))
    return cameras


@pytest.fixture(scope="module")
def capture_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("orbit")
    obj = sphere_object(RADIUS, CENTRE, subdivisions=4)
    write_views(render_views(obj, _orbit_from_above()), root)
    return root


def _small(close_holes: bool) -> ReconConfig:
    """A few seconds on a CPU: a coarse grid, little refinement, a small texture."""
    base = config_for("draft", grid_resolution=40, iterations=2, texture_size=64, device="cpu")
    return replace(
        base,
        fusion=replace(base.fusion, face_budget=2000),
        refine=replace(base.refine, resolution=48),
        texture=replace(base.texture, resolution=48),
        close_holes=close_holes,
    )


def _run(capture: Path, out: Path, close_holes: bool) -> ReconResult:
    return reconstruct(capture, out, _small(close_holes), ignore_progress)


def _glb_primitives(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    length = struct.unpack_from("<I", data, 12)[0]
    gltf = json.loads(data[20 : 20 + length])
    primitives: list[dict[str, Any]] = gltf["meshes"][0]["primitives"]
    return primitives


def _welded(vertices: np.ndarray, faces: np.ndarray) -> trimesh.Trimesh:
    return trimesh.Trimesh(vertices, faces, process=True)  # merges the UV-seam duplicates


def test_by_default_no_face_lies_below_the_lowest_observed_point(
    capture_dir: Path, tmp_path: Path
) -> None:
    lowest_seen = float(load_capture(capture_dir).points()[:, 2].min())
    assert lowest_seen > CENTRE[2] - RADIUS + 0.05  # the rig leaves the bottom unseen
    result = _run(capture_dir, tmp_path, close_holes=False)
    voxel = result.metrics.voxel_size_mm / 1000
    assert float(result.mesh.vertices[:, 2].min()) >= lowest_seen - voxel
    # The top, which every view sees, is all there.
    assert float(result.mesh.vertices[:, 2].max()) == pytest.approx(CENTRE[2] + RADIUS, abs=voxel)
    assert not _welded(result.mesh.vertices, result.mesh.faces).is_watertight
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["observedFraction"] == 1.0
    assert metrics["filledAreaM2"] == 0.0
    assert metrics["unobservedRemovedAreaM2"] > 0.0
    assert [p["extras"]["filled"] for p in _glb_primitives(tmp_path / "mesh.glb")] == [False]


def test_close_holes_gives_a_watertight_mesh_with_its_fill_reported(
    capture_dir: Path, tmp_path: Path
) -> None:
    result = _run(capture_dir, tmp_path, close_holes=True)
    mesh = result.mesh
    assert _welded(mesh.vertices, mesh.faces).is_watertight
    assert mesh.filled.any() and not mesh.filled.all()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    fill_area = float(_welded(mesh.vertices, mesh.faces[mesh.filled]).area)
    assert metrics["filledAreaM2"] == pytest.approx(fill_area, rel=1e-3)
    assert metrics["filledFraction"] == pytest.approx(1.0 - metrics["observedFraction"], abs=1e-4)
    assert 0.0 < metrics["filledFraction"] < 0.5
    # The membrane spans the unseen bottom without sagging below what was seen.
    lowest_seen = float(load_capture(capture_dir).points()[:, 2].min())
    voxel = metrics["voxelSizeMm"] / 1000
    assert float(mesh.vertices[mesh.faces[mesh.filled]][..., 2].min()) >= lowest_seen - voxel
    # Fill texels take colour from the border: nowhere black.
    from recon_runner.stages.export import sample_texture

    fill_uvs = mesh.uvs[np.unique(mesh.faces[mesh.filled])]
    assert sample_texture(mesh.texture, fill_uvs).max(axis=1).min() > 20
    primitives = _glb_primitives(tmp_path / "mesh.glb")
    assert [p["extras"]["filled"] for p in primitives] == [False, True]


def test_a_surface_no_depth_reading_agrees_with_is_refused_naming_the_file() -> None:
    from recon_runner.camera import clip_matrix
    from recon_runner.errors import InvalidInputError
    from recon_runner.render import get_renderer
    from recon_runner.stages.observed import observed_surface
    from recon_runner.stages.targets import Targets

    camera = _orbit_from_above(views=1, size=16)[0]
    sphere = sphere_object(RADIUS, CENTRE, subdivisions=2).mesh
    zeros = torch.zeros(1, 16, 16)
    targets = Targets(
        cameras=(camera,),
        clip=torch.from_numpy(clip_matrix(camera, 0.5, 2.5)).float()[None],
        rgb=torch.zeros(1, 16, 16, 3),
        mask=torch.ones(1, 16, 16, dtype=torch.bool),
        depth=zeros,
        points=torch.zeros(1, 16, 16, 3),
        outside=zeros,
        weight=torch.ones(1, 16, 16),
    )
    with pytest.raises(InvalidInputError, match=r"transforms\.json: no part of the fused surface"):
        observed_surface(sphere, targets, get_renderer("torch", "cpu"), 0.01, close_holes=False)
