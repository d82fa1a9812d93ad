"""A finished ReconJob's outputs: fetched from the S3 URLs in `status.outputs`, read as a
glTF viewer reads them, and measured against the true object."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from recon_runner.evaluation.accuracy import Accuracy, evaluate, evaluate_textured
from recon_runner.mesh import TexturedMesh
from recon_runner.synthetic import SyntheticObject

# Fewer samples than the benchmark: the figures settle well before, and this runs on CPU.
SAMPLES = 20_000


def split_s3_url(url: str) -> tuple[str, str]:
    """s3://bucket/key -> (bucket, key)."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise ValueError(f"not an s3://bucket/key URL: {url!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def download_outputs(client: Any, outputs: dict[str, str], dest: Path) -> dict[str, Path]:
    """Each of `status.outputs` (mesh, preview, metrics) into ``dest``, by file name."""
    dest.mkdir(parents=True, exist_ok=True)
    files = {}
    for kind, url in sorted(outputs.items()):
        bucket, key = split_s3_url(url)
        path = dest / Path(key).name
        client.fget_object(bucket, key, str(path))
        files[kind] = path
    return files


def load_glb(path: Path) -> TexturedMesh | None:
    """The GLB's triangles, with their texture when it has one (None: not a mesh)."""
    import trimesh

    mesh = trimesh.load(str(path), force="mesh", process=False)
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        return None
    uv = getattr(mesh.visual, "uv", None)
    material = getattr(mesh.visual, "material", None)
    image = getattr(material, "baseColorTexture", None)
    if uv is None or image is None:
        texture = np.zeros((1, 1, 3), dtype=np.uint8)
        uv = np.zeros((len(mesh.vertices), 2))
    else:
        texture = np.asarray(image.convert("RGB"), dtype=np.uint8)
        # trimesh turns glTF's top-left UV origin into OpenGL's bottom-left one.
        uv = np.column_stack([uv[:, 0], 1.0 - uv[:, 1]])
    return TexturedMesh(
        vertices=np.asarray(mesh.vertices, dtype=np.float32),
        faces=np.asarray(mesh.faces, dtype=np.int32),
        uvs=np.asarray(uv, dtype=np.float32),
        texture=texture,
    )


def accuracy(obj: SyntheticObject, mesh: TexturedMesh, textured: bool = True) -> Accuracy:
    if textured:
        return evaluate_textured(obj.mesh, obj.true_colour, mesh, samples=SAMPLES)
    return evaluate(obj.mesh, mesh.vertices, mesh.faces, samples=SAMPLES)
