"""The output files load back in common tools with the geometry, UVs and colours we wrote."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image
from recon_api.constants import MeshFormat
from recon_api.run_metrics import RunMetrics
from recon_runner.mesh import TexturedMesh
from recon_runner.stages import export
from trimesh.visual import ColorVisuals, TextureVisuals
from trimesh.visual.material import PBRMaterial, SimpleMaterial

from tests.support.run_metrics import run_metrics

RED, GREEN, BLUE, WHITE = (220, 20, 30), (10, 200, 40), (20, 30, 210), (250, 250, 250)


def quadrant_texture(size: int = 64) -> np.ndarray:
    """Top-left red, top-right green, bottom-left blue, bottom-right white (row 0 = top)."""
    t = np.zeros((size, size, 3), np.uint8)
    h = size // 2
    t[:h, :h], t[:h, h:], t[h:, :h], t[h:, h:] = RED, GREEN, BLUE, WHITE
    return t


def textured_tetrahedron() -> TexturedMesh:
    """A closed tetrahedron away from the origin with one seam-duplicated vertex (vertex 4
    repeats vertex 0's position with another UV), each vertex's UV in a known quadrant."""
    base = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    offset = np.array([1.0, -2.0, 3.0])
    vertices = (np.vstack([base, base[:1]]) * 0.2 + offset).astype(np.float32)
    faces = np.array([[0, 2, 1], [4, 1, 3], [0, 3, 2], [1, 2, 3]], np.int32)
    uvs = np.array(
        [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75], [0.30, 0.20]], np.float32
    )
    return TexturedMesh(vertices, faces, uvs, quadrant_texture())


EXPECTED_COLOURS = [RED, GREEN, BLUE, WHITE, RED]


def load(path: Path, maintain_order: bool = False) -> trimesh.Trimesh:
    loaded = trimesh.load(path, force="mesh", process=False, maintain_order=maintain_order)
    assert isinstance(loaded, trimesh.Trimesh)
    return loaded


def texture_visuals(mesh: trimesh.Trimesh) -> TextureVisuals:
    assert isinstance(mesh.visual, TextureVisuals), "the mesh lost its texture"
    return mesh.visual


def read_glb_json(path: Path) -> dict:
    data = path.read_bytes()
    magic, version, length = struct.unpack_from("<III", data, 0)
    assert (magic, version, length) == (0x46546C67, 2, len(data))
    json_len, json_type = struct.unpack_from("<II", data, 12)
    assert json_type == 0x4E4F534A and json_len % 4 == 0
    bin_len, bin_type = struct.unpack_from("<II", data, 20 + json_len)
    assert bin_type == 0x004E4942 and 28 + json_len + bin_len == len(data)
    return json.loads(data[20 : 20 + json_len])


def test_glb_loads_back_in_world_frame_with_texture_at_full_brightness(tmp_path: Path) -> None:
    mesh = textured_tetrahedron()
    path = tmp_path / "mesh.glb"
    export.write_atomic(path, export.glb_bytes(mesh))

    loaded = load(path)
    np.testing.assert_allclose(loaded.vertices, mesh.vertices, atol=1e-6)
    np.testing.assert_array_equal(loaded.faces, mesh.faces)
    # What a viewer shows at each vertex: the texture through the loaded UVs.
    visual = texture_visuals(loaded)
    material = visual.material
    assert isinstance(material, PBRMaterial)
    shown = trimesh.visual.color.uv_to_color(visual.uv, material.baseColorTexture)
    np.testing.assert_array_equal(shown[:, :3], EXPECTED_COLOURS)
    np.testing.assert_array_equal(np.asarray(material.baseColorTexture), quadrant_texture())

    gltf = read_glb_json(path)
    pbr = gltf["materials"][0]["pbrMetallicRoughness"]
    assert pbr["baseColorFactor"] == [1.0, 1.0, 1.0, 1.0]
    assert pbr["metallicFactor"] == 0.0 and pbr["roughnessFactor"] == 1.0
    assert pbr["baseColorTexture"]["index"] == 0
    assert gltf["images"][0]["mimeType"] == "image/png"
    assert set(gltf["meshes"][0]["primitives"][0]["attributes"]) == {
        "POSITION",
        "NORMAL",
        "TEXCOORD_0",
    }
    # No transform on the node: geometry stays in the capture's frame.
    assert set(gltf["nodes"][0]) == {"mesh", "name"}
    assert gltf["accessors"][0]["min"] == pytest.approx(mesh.vertices.min(axis=0).tolist())
    assert gltf["accessors"][0]["max"] == pytest.approx(mesh.vertices.max(axis=0).tolist())


def test_glb_normals_point_outwards_and_are_unit(tmp_path: Path) -> None:
    mesh = textured_tetrahedron()
    path = tmp_path / "mesh.glb"
    path.write_bytes(export.glb_bytes(mesh))
    gltf = read_glb_json(path)
    view = gltf["bufferViews"][gltf["accessors"][1]["bufferView"]]
    data = path.read_bytes()
    bin_start = 20 + struct.unpack_from("<I", data, 12)[0] + 8
    start = bin_start + view["byteOffset"]
    normals = np.frombuffer(data[start : start + view["byteLength"]], "<f4").reshape(-1, 3)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)
    centre = mesh.vertices[:4].mean(axis=0)
    assert (np.sum(normals * (mesh.vertices - centre), axis=1) > 0).all()


def test_obj_flips_v_and_shows_the_same_colours(tmp_path: Path) -> None:
    mesh = textured_tetrahedron()
    for name, data in export.obj_files(mesh).items():
        export.write_atomic(tmp_path / name, data)
    assert "map_Kd texture.png" in (tmp_path / "mesh.mtl").read_text()

    loaded = load(tmp_path / "mesh.obj", maintain_order=True)
    np.testing.assert_allclose(loaded.vertices, mesh.vertices, atol=1e-6)
    np.testing.assert_array_equal(loaded.faces, mesh.faces)
    visual = texture_visuals(loaded)
    np.testing.assert_allclose(visual.uv[:, 1], 1.0 - mesh.uvs[:, 1].astype(float), atol=1e-6)
    assert isinstance(visual.material, SimpleMaterial)
    shown = trimesh.visual.color.uv_to_color(visual.uv, visual.material.image)
    np.testing.assert_array_equal(shown[:, :3], EXPECTED_COLOURS)


def test_ply_is_binary_welded_and_coloured_from_the_texture(tmp_path: Path) -> None:
    mesh = textured_tetrahedron()
    path = tmp_path / "mesh.ply"
    path.write_bytes(export.ply_bytes(mesh))
    assert b"format binary_little_endian 1.0" in path.read_bytes()[:200]

    loaded = load(path)
    assert len(loaded.vertices) == 4  # the seam duplicate is welded
    assert len(loaded.faces) == 4
    assert loaded.is_watertight
    assert isinstance(loaded.visual, ColorVisuals)
    vertex_colors = loaded.visual.vertex_colors
    # vertex 0 and its seam duplicate (UVs both in the red quadrant) stay red
    for i in range(4):
        k = np.argmin(np.linalg.norm(loaded.vertices - mesh.vertices[i], axis=1))
        np.testing.assert_allclose(loaded.vertices[k], mesh.vertices[i], atol=1e-6)
        assert tuple(vertex_colors[k][:3]) == EXPECTED_COLOURS[i]


def test_texture_sampling_follows_gltf_top_left_origin() -> None:
    texture = quadrant_texture(4)
    uvs = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.125, 0.125]], np.float32)
    np.testing.assert_array_equal(
        export.sample_texture(texture, uvs), [RED, GREEN, BLUE, WHITE, RED]
    )
    # halfway between the left and right texel centres of the top row
    mid = export.sample_texture(texture, np.array([[0.5, 0.125]], np.float32))[0]
    np.testing.assert_array_equal(mid, np.rint((np.array(RED) + GREEN) / 2))


def test_preview_puts_each_input_beside_its_render() -> None:
    rng = np.random.default_rng(0)
    inputs = [rng.integers(0, 256, (20, 30, 4), dtype=np.uint8) for _ in range(5)]
    for image in inputs:
        image[..., 3] = 255
    inputs[0][0, 0, 3] = 0  # masked-out pixel shows the white background
    renders = [rng.integers(0, 256, (20, 30, 3), dtype=np.uint8) for _ in range(5)]
    grid = export.preview_image(inputs, renders)
    # 5 pairs -> 3 pairs per row, 2 rows; 4 px gaps, 8 px between pairs
    assert grid.shape == (20 * 2 + 4, 3 * (2 * 30 + 4) + 2 * 8, 3)
    np.testing.assert_array_equal(grid[0, 0], (255, 255, 255))
    np.testing.assert_array_equal(grid[:20, 1:30], inputs[0][:, 1:, :3])
    np.testing.assert_array_equal(grid[:20, 34:64], renders[0])
    x4 = 1 * (64 + 8)  # view 4: second row, second pair
    np.testing.assert_array_equal(grid[24:44, x4 : x4 + 30], inputs[4][..., :3])
    np.testing.assert_array_equal(grid[24:44, x4 + 34 : x4 + 64], renders[4])
    with pytest.raises(ValueError):
        export.preview_image(inputs, renders[:-1])


def test_preview_scales_big_views_down() -> None:
    big = [np.zeros((1000, 800, 3), np.uint8)] * 2
    grid = export.preview_image(big, big, max_tile=100)
    assert grid.shape[0] == 100


def test_write_outputs_writes_the_glb_and_the_formats_asked_for_and_nothing_else(
    tmp_path: Path,
) -> None:
    mesh = textured_tetrahedron()
    views = [np.full((8, 8, 3), 100, np.uint8)] * 2
    # numpy scalars, as the pipeline's measurements give them, are written as plain numbers.
    metrics = run_metrics(vertices=np.int64(5), psnr=np.float32(31.5), seconds={"fuse": 1.25})
    formats = [MeshFormat.PLY, MeshFormat.GLB]
    written = export.write_outputs(tmp_path, mesh, formats, views, views, metrics)
    names = {"mesh.glb", "mesh.ply", "preview.png", "metrics.json"}
    assert set(written) == names
    assert {p.name for p in tmp_path.iterdir()} == names  # no temporaries left behind
    assert export.mesh_file_name(formats) == "mesh.glb"
    document = json.loads((tmp_path / "metrics.json").read_text())
    assert (document["vertices"], document["psnr"], document["seconds"]) == (
        5,
        31.5,
        {"fuse": 1.25},
    )
    assert RunMetrics.model_validate(document) == metrics
    # two pairs side by side: (view | render), 8 px, (view | render)
    assert Image.open(tmp_path / "preview.png").size == (2 * (8 * 2 + 4) + 8, 8)

    written = export.write_outputs(
        tmp_path / "o", mesh, [MeshFormat.OBJ], views, views, run_metrics()
    )
    assert set(written) == {
        "mesh.glb",
        "mesh.obj",
        "mesh.mtl",
        "texture.png",
        "preview.png",
        "metrics.json",
    }
    assert export.mesh_file_name([MeshFormat.OBJ]) == "mesh.glb"


def test_write_atomic_keeps_old_content_when_the_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "mesh.glb"
    export.write_atomic(path, b"old")

    def fail(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        export.write_atomic(path, b"new content")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["mesh.glb"]


def test_malformed_mesh_is_refused() -> None:
    mesh = textured_tetrahedron()
    mesh.faces[0, 0] = 99
    with pytest.raises(ValueError, match="out of range"):
        export.glb_bytes(mesh)
