"""Small valid captures (transforms.json, 8-bit RGBA views, 16-bit depth) uploaded to MinIO,
and ways to break them, for operator tests that need validation to pass or fail."""

from __future__ import annotations

import io
import json
import math
import struct
import zlib
from typing import Any

SIZE = 8


def png(width: int, height: int, *, bit_depth: int, colour_type: int) -> bytes:
    """A real PNG (signature, IHDR, IDAT, IEND) with zeroed pixels."""
    channels = {0: 1, 2: 3, 6: 4}[colour_type]
    row = b"\x00" + bytes(width * channels * bit_depth // 8)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def transforms(views: int, size: int = SIZE) -> dict[str, Any]:
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
        "w": size,
        "h": size,
        "fl_x": size,
        "fl_y": size,
        "cx": size / 2,
        "cy": size / 2,
        "camera_model": "PINHOLE",
        "depth_unit_scale_factor": 0.001,
        "frames": frames,
    }


def files(views: int = 6) -> dict[str, bytes]:
    out = {"transforms.json": json.dumps(transforms(views)).encode()}
    for i in range(views):
        out[f"images/view_{i:03d}.png"] = png(SIZE, SIZE, bit_depth=8, colour_type=6)
        out[f"depth/view_{i:03d}.png"] = png(SIZE, SIZE, bit_depth=16, colour_type=0)
    return out


def upload(client: Any, bucket: str, prefix: str, content: dict[str, bytes]) -> None:
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)
    for name, data in content.items():
        client.put_object(bucket, prefix + name, io.BytesIO(data), len(data))
