"""What `make demo` and the end-to-end tests build on: the example ReconJob changed only
where asked, the outputs' S3 URLs, and a runner GLB read back as a viewer shows it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from recon_cli.cluster_demo import outputs, reconjob
from recon_runner.evaluation.accuracy import sample_texture_srgb
from recon_runner.mesh import TexturedMesh
from recon_runner.stages.export import glb_bytes


def test_customised_example_changes_only_the_given_fields() -> None:
    example = reconjob.example()
    job = reconjob.customised(
        example,
        namespace="studio",
        input_prefix="a/",
        output_prefix="a/out/",
        reconstruction={"preset": "draft"},
    )
    assert job["metadata"] == {**example["metadata"], "namespace": "studio"}
    assert job["spec"]["input"] == {**example["spec"]["input"], "prefix": "a/"}
    assert job["spec"]["output"] == {**example["spec"]["output"], "prefix": "a/out/"}
    assert job["spec"]["reconstruction"] == {**example["spec"]["reconstruction"], "preset": "draft"}
    untouched = {
        k: v for k, v in job["spec"].items() if k not in ("input", "output", "reconstruction")
    }
    assert untouched == {
        k: v for k, v in example["spec"].items() if k not in ("input", "output", "reconstruction")
    }
    # The example itself is left as it was.
    assert reconjob.example() == example


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://meshes/chair-001/out/mesh.glb", ("meshes", "chair-001/out/mesh.glb")),
        ("s3://b/k", ("b", "k")),
    ],
)
def test_split_s3_url(url: str, expected: tuple[str, str]) -> None:
    assert outputs.split_s3_url(url) == expected


@pytest.mark.parametrize("url", ["http://b/k", "s3://bucket/", "s3:///key", "meshes/mesh.glb"])
def test_split_s3_url_rejects_what_is_not_an_object_url(url: str) -> None:
    with pytest.raises(ValueError, match="s3://"):
        outputs.split_s3_url(url)


def test_a_runner_glb_reads_back_with_its_geometry_and_texture(tmp_path: Path) -> None:
    texture = np.zeros((8, 8, 3), np.uint8)
    texture[:4, :4], texture[:4, 4:], texture[4:, :4], texture[4:, 4:] = (
        (200, 0, 0),
        (0, 200, 0),
        (0, 0, 200),
        (200, 200, 200),
    )
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32) + 2
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], np.int32)
    uvs = np.array([[0.2, 0.2], [0.8, 0.2], [0.2, 0.8], [0.8, 0.8]], np.float32)
    written = TexturedMesh(vertices, faces, uvs, texture)
    path = tmp_path / "mesh.glb"
    path.write_bytes(glb_bytes(written))

    read = outputs.load_glb(path)

    assert read is not None
    np.testing.assert_allclose(read.vertices[read.faces], vertices[faces], atol=1e-6)
    np.testing.assert_array_equal(read.texture, texture)
    # Each corner shows the colour of its own quadrant, as in the written mesh.
    shown = sample_texture_srgb(read.texture, read.uvs.astype(np.float64))
    expected = sample_texture_srgb(texture, uvs.astype(np.float64))
    corners = read.vertices[:, None, :] == vertices[None, :, :]
    order = np.argmax(corners.all(axis=2), axis=1)
    np.testing.assert_allclose(shown, expected[order], atol=1e-6)
