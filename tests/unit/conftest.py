"""Shared builders for the unit tests: a sound transforms.json document that the capture
contract's and the operator's validation tests break one field at a time."""

from __future__ import annotations

import math
from typing import Any

W, H = 64, 48


def rotation_z(angle: float) -> list[list[float]]:
    """A camera-to-world matrix: a turn about z plus a fixed translation."""
    c, s = math.cos(angle), math.sin(angle)
    return [[c, -s, 0.0, 1.0], [s, c, 0.0, 2.0], [0.0, 0.0, 1.0, 3.0], [0.0, 0.0, 0.0, 1.0]]


def capture_document(views: int = 6) -> dict[str, Any]:
    """A valid transforms.json of ``views`` W x H frames (PNG colour and depth)."""
    return {
        "camera_model": "PINHOLE",
        "w": W,
        "h": H,
        "fl_x": 50.0,
        "fl_y": 50.0,
        "cx": 32.0,
        "cy": 24.0,
        "depth_unit_scale_factor": 0.001,
        "frames": [
            {
                "file_path": f"images/view_{i:03d}.png",
                "depth_file_path": f"depth/view_{i:03d}.png",
                "transform_matrix": rotation_z(i * 0.5),
            }
            for i in range(views)
        ],
    }
