"""Writing the reconstruction's output files: mesh.glb, mesh.obj/.mtl/texture.png, mesh.ply,
preview.png and metrics.json.

Geometry is written in the capture's world frame, untouched, so the mesh lines up with the
cameras of transforms.json. Every file goes to a temporary name in its directory and is
renamed into place, so a reader (or an upload racing a crash) never sees half a file.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from recon_api.constants import MeshFormat
from recon_api.run_metrics import RunMetrics

from recon_runner.mesh import ByteArray, FloatArray, IntArray, TexturedMesh

GLB_NAME = "mesh.glb"
OBJ_NAME = "mesh.obj"
MTL_NAME = "mesh.mtl"
TEXTURE_NAME = "texture.png"
PLY_NAME = "mesh.ply"
PREVIEW_NAME = "preview.png"
METRICS_NAME = "metrics.json"

# glTF constants (names as in the specification).
_FLOAT = 5126
_UNSIGNED_INT = 5125
_ARRAY_BUFFER = 34962
_ELEMENT_ARRAY_BUFFER = 34963
_LINEAR = 9729
_CLAMP_TO_EDGE = 33071
_TRIANGLES = 4
_GLB_MAGIC = 0x46546C67  # "glTF"
_CHUNK_JSON = 0x4E4F534A  # "JSON"
_CHUNK_BIN = 0x004E4942  # "BIN\0"

_PREVIEW_BACKGROUND = (255, 255, 255)


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same directory and a rename,
    so the path holds either the old content or all of the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def vertex_normals(vertices: FloatArray, faces: IntArray) -> FloatArray:
    """Area-weighted vertex normals; vertices on no face (or only degenerate ones) get +Z so
    that every normal is unit length, as glTF requires."""
    v = vertices.astype(np.float64)
    tri = v[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(v)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_n)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    unit = np.divide(normals, length, out=np.zeros_like(normals), where=length > 1e-20)
    unit[length[:, 0] <= 1e-20] = (0.0, 0.0, 1.0)
    return unit.astype(np.float32)


def sample_texture(texture: ByteArray, uvs: FloatArray) -> ByteArray:
    """Bilinear lookup of the texture at glTF UVs ((0, 0) = top-left corner of the image,
    texel centres at half-integers), clamped at the edges as the GLB sampler is."""
    h, w = texture.shape[:2]
    x = np.clip(uvs[:, 0].astype(np.float64) * w - 0.5, 0.0, w - 1.0)
    y = np.clip(uvs[:, 1].astype(np.float64) * h - 0.5, 0.0, h - 1.0)
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    fx = (x - x0)[:, None]
    fy = (y - y0)[:, None]
    t = texture[..., :3].astype(np.float64)
    top = t[y0, x0] * (1 - fx) + t[y0, x1] * fx
    bottom = t[y1, x0] * (1 - fx) + t[y1, x1] * fx
    out: ByteArray = np.clip(np.rint(top * (1 - fy) + bottom * fy), 0, 255).astype(np.uint8)
    return out


def encode_png(image: ByteArray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
    return buf.getvalue()


def _check(mesh: TexturedMesh) -> None:
    """Fail loudly on a malformed mesh here rather than write a file viewers reject."""
    v, f, uv, tex = mesh.vertices, mesh.faces, mesh.uvs, mesh.texture
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3:
        raise ValueError(f"mesh shapes: vertices {v.shape}, faces {f.shape}")
    if uv.shape != (v.shape[0], 2):
        raise ValueError(f"uvs {uv.shape} do not match vertices {v.shape}")
    if tex.ndim != 3 or tex.shape[2] not in (3, 4) or tex.dtype != np.uint8:
        raise ValueError(f"texture must be [H,W,3] uint8, got {tex.shape} {tex.dtype}")
    if len(f) and (f.min() < 0 or f.max() >= len(v)):
        raise ValueError("face index out of range")
    if not (np.isfinite(v).all() and np.isfinite(uv).all()):
        raise ValueError("non-finite vertex position or UV")


def _face_groups(mesh: TexturedMesh) -> list[tuple[bool, IntArray]]:
    """(filled, faces) per group: the observed faces, then closeHoles' fill when there is any."""
    filled = np.asarray(mesh.filled, dtype=bool)
    groups = [(False, mesh.faces[~filled])]
    if filled.any():
        groups.append((True, mesh.faces[filled]))
    return groups


def glb_bytes(mesh: TexturedMesh) -> bytes:
    """A glTF 2.0 binary: one node, one mesh whose vertices (POSITION, NORMAL, TEXCOORD_0)
    every primitive shares, the texture embedded as PNG in a PBR material at full brightness
    (base colour factor 1, not metallic, fully rough) so viewers show the texture's own
    colours. The observed surface is primitive 0; closeHoles' fill, when there is one, is
    primitive 1 with `extras.filled = true`, so a viewer can hide or tint what no camera saw."""
    _check(mesh)
    positions = np.ascontiguousarray(mesh.vertices, dtype="<f4")
    normals = vertex_normals(mesh.vertices, mesh.faces).astype("<f4")
    uvs = np.ascontiguousarray(mesh.uvs, dtype="<f4")
    groups = _face_groups(mesh)
    png = encode_png(mesh.texture[..., :3])

    blobs: list[tuple[bytes, int | None]] = [
        (positions.tobytes(), _ARRAY_BUFFER),
        (normals.tobytes(), _ARRAY_BUFFER),
        (uvs.tobytes(), _ARRAY_BUFFER),
        (png, None),
    ]
    for _, faces in groups:
        indices = np.ascontiguousarray(faces, dtype="<u4").reshape(-1)
        blobs.append((indices.tobytes(), _ELEMENT_ARRAY_BUFFER))
    binary = bytearray()
    buffer_views: list[dict[str, Any]] = []
    for blob, target in blobs:
        binary.extend(b"\0" * (-len(binary) % 4))
        view: dict[str, Any] = {"buffer": 0, "byteOffset": len(binary), "byteLength": len(blob)}
        if target is not None:
            view["target"] = target
        buffer_views.append(view)
        binary.extend(blob)
    binary.extend(b"\0" * (-len(binary) % 4))

    n = len(positions)
    lo = positions.min(axis=0) if n else np.zeros(3, np.float32)
    hi = positions.max(axis=0) if n else np.zeros(3, np.float32)
    gltf: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": "recon-operator"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": "reconstruction"}],
        "meshes": [
            {
                "name": "reconstruction",
                "primitives": [
                    {
                        "attributes": {"POSITION": 0, "NORMAL": 1, "TEXCOORD_0": 2},
                        "indices": 3 + k,
                        "material": 0,
                        "mode": _TRIANGLES,
                        "extras": {"filled": filled},
                    }
                    for k, (filled, _) in enumerate(groups)
                ],
            }
        ],
        "materials": [
            {
                "name": "texture",
                "pbrMetallicRoughness": {
                    "baseColorTexture": {"index": 0, "texCoord": 0},
                    "baseColorFactor": [1.0, 1.0, 1.0, 1.0],
                    "metallicFactor": 0.0,
                    "roughnessFactor": 1.0,
                },
                # Reconstructions can have small holes; showing back faces keeps them from
                # looking like see-through gaps.
                "doubleSided": True,
            }
        ],
        # Linear filtering without mipmaps: mip levels would blend texels across UV chart
        # borders and show seams at a distance.
        "samplers": [
            {
                "magFilter": _LINEAR,
                "minFilter": _LINEAR,
                "wrapS": _CLAMP_TO_EDGE,
                "wrapT": _CLAMP_TO_EDGE,
            }
        ],
        "images": [{"bufferView": 3, "mimeType": "image/png"}],
        "textures": [{"sampler": 0, "source": 0}],
        "accessors": [
            {
                "bufferView": 0,
                "componentType": _FLOAT,
                "count": n,
                "type": "VEC3",
                "min": [float(x) for x in lo],
                "max": [float(x) for x in hi],
            },
            {"bufferView": 1, "componentType": _FLOAT, "count": n, "type": "VEC3"},
            {"bufferView": 2, "componentType": _FLOAT, "count": n, "type": "VEC2"},
            *(
                {
                    "bufferView": 4 + k,
                    "componentType": _UNSIGNED_INT,
                    "count": 3 * len(faces),
                    "type": "SCALAR",
                }
                for k, (_, faces) in enumerate(groups)
            ),
        ],
        "bufferViews": buffer_views,
        "buffers": [{"byteLength": len(binary)}],
    }
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    total = 12 + 8 + len(text) + 8 + len(binary)
    return b"".join(
        [
            struct.pack("<III", _GLB_MAGIC, 2, total),
            struct.pack("<II", len(text), _CHUNK_JSON),
            text,
            struct.pack("<II", len(binary), _CHUNK_BIN),
            bytes(binary),
        ]
    )


def _rows(fmt: str, array: np.ndarray) -> str:
    """Format a 2-D array one line per row; savetxt keeps it out of a Python-level loop."""
    buf = io.StringIO()
    np.savetxt(buf, array, fmt=fmt)
    return buf.getvalue()


def obj_files(mesh: TexturedMesh) -> dict[str, bytes]:
    """mesh.obj, mesh.mtl and texture.png. OBJ puts v = 0 at the bottom of the image, so v is
    flipped from the glTF convention the mesh carries. Faces are in group `observed`, and
    closeHoles' fill in group `filled`."""
    _check(mesh)
    normals = vertex_normals(mesh.vertices, mesh.faces)
    uv_obj = np.column_stack([mesh.uvs[:, 0], 1.0 - mesh.uvs[:, 1]])
    face_blocks = []
    for filled, faces in _face_groups(mesh):
        # v/vt/vn share one index: one UV/normal per vertex.
        face_rows = np.repeat(faces.astype(np.int64) + 1, 3, axis=1)
        face_blocks.append(f"g {'filled' if filled else 'observed'}\n")
        face_blocks.append(_rows("f %d/%d/%d %d/%d/%d %d/%d/%d", face_rows))
    obj = "".join(
        [
            "# recon-operator reconstruction (capture world frame, metres)\n",
            f"mtllib {MTL_NAME}\n",
            _rows("v %.7g %.7g %.7g", mesh.vertices),
            _rows("vt %.7g %.7g", uv_obj),
            _rows("vn %.6g %.6g %.6g", normals),
            "usemtl texture\n",
            *face_blocks,
        ]
    )
    mtl = f"newmtl texture\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nd 1\nillum 1\nmap_Kd {TEXTURE_NAME}\n"
    return {
        OBJ_NAME: obj.encode(),
        MTL_NAME: mtl.encode(),
        TEXTURE_NAME: encode_png(mesh.texture[..., :3]),
    }


def ply_bytes(mesh: TexturedMesh) -> bytes:
    """Binary little-endian PLY with per-vertex colours sampled from the texture. Seam
    duplicates (same position, different UV) are welded, their colours averaged, so the PLY
    is one connected surface as point-cloud and mesh tools expect."""
    _check(mesh)
    colours = sample_texture(mesh.texture, mesh.uvs).astype(np.float64)
    unique, inverse = np.unique(mesh.vertices.astype(np.float32), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    sums = np.zeros((len(unique), 3))
    np.add.at(sums, inverse, colours)
    counts = np.bincount(inverse, minlength=len(unique))[:, None]
    welded_colours = np.rint(sums / np.maximum(counts, 1)).astype(np.uint8)
    faces = inverse[mesh.faces].astype(np.int32)
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2])]
    faces = faces[faces[:, 0] != faces[:, 2]]

    header = (
        "ply\nformat binary_little_endian 1.0\n"
        "comment recon-operator reconstruction (capture world frame, metres)\n"
        f"element vertex {len(unique)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        f"element face {len(faces)}\n"
        "property list uchar int vertex_indices\nend_header\n"
    ).encode()
    vdtype = np.dtype(
        [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"), ("b", "u1")]
    )
    vrec = np.empty(len(unique), dtype=vdtype)
    vrec["x"], vrec["y"], vrec["z"] = unique[:, 0], unique[:, 1], unique[:, 2]
    vrec["r"], vrec["g"], vrec["b"] = welded_colours.T
    fdtype = np.dtype([("n", "u1"), ("i", "<i4", (3,))])
    frec = np.empty(len(faces), dtype=fdtype)
    frec["n"] = 3
    frec["i"] = faces
    return header + vrec.tobytes() + frec.tobytes()


def _on_background(image: ByteArray) -> ByteArray:
    """RGB for display: alpha (object mask or render coverage) composited over white."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.shape[2] == 4:
        a = image[..., 3:4].astype(np.float32) / 255.0
        bg = np.array(_PREVIEW_BACKGROUND, np.float32)
        rgb = image[..., :3].astype(np.float32) * a + bg * (1 - a)
        out: ByteArray = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
        return out
    rgb3: ByteArray = image[..., :3].astype(np.uint8)
    return rgb3


def preview_image(
    inputs: Sequence[ByteArray], renders: Sequence[ByteArray], max_tile: int = 384
) -> ByteArray:
    """A grid of (input view | reconstruction rendered from that view's camera) pairs, so a
    glance shows where the reconstruction differs from what the cameras saw. Tiles larger
    than `max_tile` are scaled down to keep the preview light."""
    if len(inputs) != len(renders) or not inputs:
        raise ValueError(f"need one render per input view, got {len(inputs)} and {len(renders)}")
    h, w = inputs[0].shape[:2]
    scale = min(1.0, max_tile / max(h, w))
    th, tw = max(1, round(h * scale)), max(1, round(w * scale))
    gap = 4
    pairs_per_row = math.ceil(math.sqrt(len(inputs)))
    rows = math.ceil(len(inputs) / pairs_per_row)
    pair_w = 2 * tw + gap
    canvas = Image.new(
        "RGB",
        (pairs_per_row * pair_w + (pairs_per_row - 1) * 2 * gap, rows * th + (rows - 1) * gap),
        (128, 128, 128),
    )
    for i, (view, render) in enumerate(zip(inputs, renders, strict=True)):
        r, c = divmod(i, pairs_per_row)
        x = c * (pair_w + 2 * gap)
        y = r * (th + gap)
        for k, image in enumerate((view, render)):
            tile = Image.fromarray(_on_background(image))
            if tile.size != (tw, th):
                tile = tile.resize((tw, th), Image.Resampling.LANCZOS)
            canvas.paste(tile, (x + k * (tw + gap), y))
    return np.asarray(canvas, dtype=np.uint8)


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def metrics_bytes(metrics: RunMetrics) -> bytes:
    document = metrics.to_document()
    return (json.dumps(document, indent=2, sort_keys=True, default=_json_default) + "\n").encode()


MESH_FILES: dict[MeshFormat, str] = {
    MeshFormat.GLB: GLB_NAME,
    MeshFormat.OBJ: OBJ_NAME,
    MeshFormat.PLY: PLY_NAME,
}


def output_formats(formats: Sequence[MeshFormat]) -> tuple[MeshFormat, ...]:
    """The formats written: mesh.glb always (DESIGN.md's outputs: the textured mesh any
    glTF viewer opens, and what status.outputs.mesh points at), then the others asked for."""
    return (MeshFormat.GLB, *(f for f in dict.fromkeys(formats) if f != MeshFormat.GLB))


def mesh_file_name(formats: Sequence[MeshFormat]) -> str:
    """The file status.outputs.mesh points at: always mesh.glb, whatever else is asked."""
    return MESH_FILES[output_formats(formats)[0]]


def write_outputs(
    out_dir: Path,
    mesh: TexturedMesh,
    formats: Sequence[MeshFormat],
    inputs: Sequence[ByteArray],
    renders: Sequence[ByteArray],
    metrics: RunMetrics,
) -> dict[str, Path]:
    """Write mesh.glb and the other formats asked for, preview.png and metrics.json into
    `out_dir`; return the written files by name. metrics.json is written last, so its
    presence means the rest is complete."""
    files: dict[str, bytes] = {}
    for fmt in output_formats(formats):
        if fmt == MeshFormat.GLB:
            files[GLB_NAME] = glb_bytes(mesh)
        elif fmt == MeshFormat.OBJ:
            files.update(obj_files(mesh))
        elif fmt == MeshFormat.PLY:
            files[PLY_NAME] = ply_bytes(mesh)
    files[PREVIEW_NAME] = encode_png(preview_image(inputs, renders))
    files[METRICS_NAME] = metrics_bytes(metrics)
    written: dict[str, Path] = {}
    for name, data in files.items():
        path = out_dir / name
        write_atomic(path, data)
        written[name] = path
    return written
