"""Load a capture folder (DESIGN.md's input layout) and check what only decoding can show.

The operator already checked headers before admitting the job; what remains are problems
in the decoded content (an all-zero depth map, an empty mask, NaN in a matrix, depth far
outside the scene). Each ends the run as bad input naming the file, because retrying a
broken capture cannot help.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError
from recon_api.constants import MAX_IMAGE_PIXELS

from recon_runner.camera import Camera, backproject_depth
from recon_runner.errors import InvalidInputError

TRANSFORMS = "transforms.json"
DEFAULT_DEPTH_UNIT = 0.001
# Distortion keys an OPENCV camera may carry; only zero distortion is supported.
DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
INTRINSIC_KEYS = ("w", "h", "fl_x", "fl_y", "cx", "cy")
# A view whose points sit this many scene radii from the scene centre measured in metres
# the wrong way (wrong unit, a sentinel value, a swapped file).
FAR_OUTSIDE_RADII = 4.0


@dataclass(frozen=True)
class View:
    """One decoded frame, in the conventions of `camera.py`."""

    image_file: str
    depth_file: str
    rgb: npt.NDArray[np.float32]  # [H, W, 3] in 0..1, sRGB as stored
    mask: npt.NDArray[np.bool_]  # [H, W] object pixels
    depth: npt.NDArray[np.float32]  # [H, W] z-depth in metres, 0 = no surface
    camera: Camera


@dataclass(frozen=True)
class Capture:
    views: tuple[View, ...]
    depth_unit: float

    def points(self) -> npt.NDArray[np.float32]:
        """All back-projected object points in the world frame [N, 3]."""
        return np.concatenate([back_project(v) for v in self.views], axis=0)


def back_project(view: View) -> npt.NDArray[np.float32]:
    """World points of the view's masked pixels with depth, through pixel centres."""
    points = backproject_depth(view.camera, view.depth.astype(np.float64))
    return points[view.mask & (view.depth > 0)].astype(np.float32)


def load_capture(root: Path, expected_views: int | None = None) -> Capture:
    """Decode and check every frame; raises InvalidInputError naming the first bad file."""
    meta = _read_transforms(root)
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise InvalidInputError(TRANSFORMS, "has no frames")
    if expected_views is not None and len(frames) != expected_views:
        raise InvalidInputError(
            TRANSFORMS, f"has {len(frames)} frames but {expected_views} views were expected"
        )
    depth_unit = _positive_number(meta, "depth_unit_scale_factor", TRANSFORMS, DEFAULT_DEPTH_UNIT)
    views = tuple(
        _load_frame(root, meta, frame, index, depth_unit) for index, frame in enumerate(frames)
    )
    _check_depth_in_scene(views)
    return Capture(views=views, depth_unit=depth_unit)


def _read_transforms(root: Path) -> dict[str, Any]:
    path = root / TRANSFORMS
    if not path.is_file():
        raise InvalidInputError(TRANSFORMS, "file not found")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidInputError(TRANSFORMS, f"is not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise InvalidInputError(TRANSFORMS, "must be a JSON object")
    return meta


def _positive_number(
    source: dict[str, Any], key: str, where: str, default: float | None = None
) -> float:
    value = source.get(key, default)
    if value is None:
        raise InvalidInputError(where, f"{key} is missing")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(where, f"{key} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise InvalidInputError(where, f"{key} must be a positive finite number, got {value!r}")
    return float(value)


def _load_frame(
    root: Path, meta: dict[str, Any], frame: Any, index: int, depth_unit: float
) -> View:
    where = f"{TRANSFORMS} frames[{index}]"
    if not isinstance(frame, dict):
        raise InvalidInputError(TRANSFORMS, f"frames[{index}] must be an object")
    # Per-frame intrinsics override the top-level ones.
    merged = {**meta, **frame}
    _check_camera_model(merged, where)
    width = int(_positive_number(merged, "w", where))
    height = int(_positive_number(merged, "h", where))
    fx, fy = _positive_number(merged, "fl_x", where), _positive_number(merged, "fl_y", where)
    cx, cy = _positive_number(merged, "cx", where), _positive_number(merged, "cy", where)
    c2w = _camera_to_world(frame.get("transform_matrix"), where)

    image_file = _relative_path(frame.get("file_path"), "file_path", where)
    depth_file = _relative_path(frame.get("depth_file_path"), "depth_file_path", where)
    rgb, alpha = _read_colour(root, image_file, width, height)
    depth = _read_depth(root, depth_file, width, height) * np.float32(depth_unit)
    if not np.any(depth > 0):
        raise InvalidInputError(depth_file, "depth map is all zeros (no surface seen)")
    mask = alpha if alpha is not None else depth > 0
    if not np.any(mask):
        raise InvalidInputError(image_file, "object mask (alpha channel) is empty")
    if not np.any(mask & (depth > 0)):
        raise InvalidInputError(depth_file, "no valid depth inside the object mask")
    depth = np.where(mask, depth, np.float32(0.0)).astype(np.float32)
    return View(
        image_file=image_file,
        depth_file=depth_file,
        rgb=rgb,
        mask=mask,
        depth=depth,
        camera=Camera(fx, fy, cx, cy, width, height, c2w),
    )


def _check_camera_model(merged: dict[str, Any], where: str) -> None:
    model = merged.get("camera_model", "PINHOLE")
    if model not in ("PINHOLE", "OPENCV"):
        raise InvalidInputError(where, f"camera_model {model!r} is not PINHOLE or OPENCV")
    for key in DISTORTION_KEYS:
        value = merged.get(key, 0.0)
        if not isinstance(value, int | float) or value != 0:
            raise InvalidInputError(
                where, f"{key}={value!r}: only zero lens distortion is supported"
            )


def _camera_to_world(value: Any, where: str) -> npt.NDArray[np.float64]:
    try:
        matrix = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(where, "transform_matrix is not a 4x4 matrix of numbers") from None
    if matrix.shape != (4, 4):
        raise InvalidInputError(where, f"transform_matrix has shape {matrix.shape}, not 4x4")
    if not np.all(np.isfinite(matrix)):
        raise InvalidInputError(where, "transform_matrix contains NaN or infinity")
    rotation = matrix[:3, :3]
    if not np.allclose(rotation.T @ rotation, np.eye(3), atol=1e-3) or np.linalg.det(rotation) < 0:
        raise InvalidInputError(where, "transform_matrix rotation is not orthonormal")
    if not np.allclose(matrix[3], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
        raise InvalidInputError(where, "transform_matrix last row is not [0, 0, 0, 1]")
    return matrix


def _relative_path(value: Any, key: str, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInputError(where, f"{key} is missing")
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or "://" in value:
        raise InvalidInputError(
            where, f"{key} {value!r} must be a relative path inside the capture"
        )
    return str(path)


def _open_png(root: Path, name: str) -> Image.Image:
    path = root / name
    if not path.is_file():
        raise InvalidInputError(name, "file not found")
    try:
        image = Image.open(path)  # reads the header only
        if image.format != "PNG":
            raise InvalidInputError(name, f"is a {image.format} image, not PNG")
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise InvalidInputError(
                name,
                f"is {image.width}x{image.height}, more than the {MAX_IMAGE_PIXELS} pixels "
                "allowed per image",
            )
        image.load()
    except Image.DecompressionBombError as e:
        raise InvalidInputError(name, f"is too large to decode safely ({e})") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise InvalidInputError(name, f"is not a readable PNG image ({e})") from None
    return image


def _check_size(image: Image.Image, name: str, width: int, height: int) -> None:
    if image.size != (width, height):
        raise InvalidInputError(
            name, f"is {image.size[0]}x{image.size[1]} but transforms.json says {width}x{height}"
        )


def _read_colour(
    root: Path, name: str, width: int, height: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_] | None]:
    image = _open_png(root, name)
    if image.mode not in ("RGB", "RGBA"):
        raise InvalidInputError(name, f"must be 8-bit RGB or RGBA, got PIL mode {image.mode}")
    _check_size(image, name, width, height)
    pixels = np.asarray(image)
    rgb = pixels[..., :3].astype(np.float32) / 255.0
    alpha = pixels[..., 3] >= 128 if image.mode == "RGBA" else None
    return rgb, alpha


def _read_depth(root: Path, name: str, width: int, height: int) -> npt.NDArray[np.float32]:
    image = _open_png(root, name)
    if image.mode not in ("I;16", "I;16B", "I;16L"):
        raise InvalidInputError(name, f"must be a 16-bit grayscale PNG, got PIL mode {image.mode}")
    _check_size(image, name, width, height)
    return np.asarray(image).astype(np.float32)


def _check_depth_in_scene(views: tuple[View, ...]) -> None:
    """Reject a view whose surface lies far from where the other views put the object.

    The scene is what most views agree on: the median of the views' median points, with a
    radius from the views' point spreads. One view off by a unit, a sentinel value or a
    wrong matrix lands many radii away.
    """
    medians = []
    spreads = []
    for view in views:
        points = back_project(view)
        centre = np.median(points, axis=0)
        medians.append(centre)
        spreads.append(float(np.percentile(np.linalg.norm(points - centre, axis=1), 90)))
    centres = np.stack(medians)
    scene_centre = np.median(centres, axis=0)
    scene_radius = max(float(np.median(spreads)), 1e-6)
    for view, centre in zip(views, centres, strict=True):
        distance = float(np.linalg.norm(centre - scene_centre))
        if len(views) > 2 and distance > FAR_OUTSIDE_RADII * scene_radius:
            raise InvalidInputError(
                view.depth_file,
                f"depth puts the surface {distance:.3g} m from the scene the other views "
                f"agree on (radius {scene_radius:.3g} m); check depth_unit_scale_factor",
            )
