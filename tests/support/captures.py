"""Small valid captures (transforms.json, 8-bit RGBA views, 16-bit depth) uploaded to MinIO,
the builders of their pieces (PNG, JPEG, transforms.json), and throwaway buckets to put
them in: one builder of each for every test that needs valid capture files."""

from __future__ import annotations

import io
import json
import math
import struct
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

SIZE = 8
IDENTITY = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Channels per pixel of each PNG colour type.
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_ihdr(width: int, height: int, bit_depth: int, colour_type: int) -> bytes:
    return png_chunk(
        b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    )


def png(width: int, height: int, *, bit_depth: int, colour_type: int, padding: int = 0) -> bytes:
    """A real, decodable PNG (signature, IHDR, a PLTE for a palette, IDAT, IEND) of any
    legal format, with zeroed pixels (PIL cannot write 16-bit RGB); ``padding`` zero bytes
    after it make a large file with the same header."""
    row = b"\x00" + bytes(math.ceil(width * _CHANNELS[colour_type] * bit_depth / 8))
    body = PNG_SIGNATURE + png_ihdr(width, height, bit_depth, colour_type)
    if colour_type == 3:
        body += png_chunk(b"PLTE", bytes(range(256)) * 3)
    body += png_chunk(b"IDAT", zlib.compress(row * height)) + png_chunk(b"IEND", b"")
    return body + bytes(padding)


def array_png(pixels: np.ndarray, mode: str | None = None) -> bytes:
    """A PNG of these pixels (PIL's format for the array's dtype and shape unless ``mode``)."""
    buf = io.BytesIO()
    Image.fromarray(pixels, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def jpeg(width: int, height: int, colour: Any = "gray", **save: Any) -> bytes:
    """A one-colour JPEG; ``save`` goes to PIL (icc_profile=..., progressive=True)."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, format="JPEG", **save)
    return buf.getvalue()


def transforms(
    views: int, width: int = SIZE, height: int | None = None, focal: float | None = None
) -> dict[str, Any]:
    """A valid transforms.json of ``views`` PNG frames on a circle around the origin (a
    focal length of ``width`` pixels unless given)."""
    height = width if height is None else height
    focal = width if focal is None else focal
    frames = []
    for i in range(views):
        angle = 2 * math.pi * i / views
        c, s = math.cos(angle), math.sin(angle)
        matrix = [[c, 0, s, 2 * s], [0, 1, 0, 0], [-s, 0, c, 2 * c], [0, 0, 0, 1]]
        frames.append(
            {
                "file_path": f"images/view_{i:03d}.png",
                "depth_file_path": f"depth/view_{i:03d}.png",
                "transform_matrix": matrix,
            }
        )
    return {
        "w": width,
        "h": height,
        "fl_x": focal,
        "fl_y": focal,
        "cx": width / 2,
        "cy": height / 2,
        "camera_model": "PINHOLE",
        "depth_unit_scale_factor": 0.001,
        "frames": frames,
    }


def files(views: int = 6, width: int = SIZE, height: int | None = None) -> dict[str, bytes]:
    """A valid capture: transforms.json, an 8-bit RGBA view and a 16-bit depth map each."""
    height = width if height is None else height
    out = {"transforms.json": json.dumps(transforms(views, width, height)).encode()}
    for i in range(views):
        out[f"images/view_{i:03d}.png"] = png(width, height, bit_depth=8, colour_type=6)
        out[f"depth/view_{i:03d}.png"] = png(width, height, bit_depth=16, colour_type=0)
    return out


def files_under(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` by its path relative to it (with /), in path order."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def upload(client: Any, bucket: str, prefix: str, content: dict[str, bytes]) -> None:
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)
    for name, data in content.items():
        client.put_object(bucket, prefix + name, io.BytesIO(data), len(data))


@contextmanager
def throwaway_bucket(client: Any) -> Iterator[str]:
    """A new bucket with a random name; afterwards it is emptied and removed."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    client.make_bucket(name)
    try:
        yield name
    finally:
        for obj in client.list_objects(name, recursive=True):
            client.remove_object(name, obj.object_name)
        client.remove_bucket(name)
