"""nerfstudio datasets: a `transforms.json` whose frames carry depth.

Format, as nerfstudio documents it (docs.nerf.studio/quickstart/data_conventions.html
and its `nerfstudio_dataparser`): intrinsics `fl_x`, `fl_y`, `cx`, `cy`, `w`, `h` at the top level
or per frame, `camera_model` with OpenCV distortion `k1`..`k4`, `p1`, `p2`, and frames
`{file_path, transform_matrix, depth_file_path?, mask_path?}` with paths relative to the
transforms.json. The camera-to-world matrices use OpenGL camera axes, and pixel
coordinates count from the image corner (a ray through pixel (0, 0) goes through its
centre at (0.5, 0.5)): both already the layout's, so matrices and intrinsics are kept.
Depth is a 16-bit PNG or a `.npy` array, either scaled by `depth_unit_scale_factor`
(default 1e-3), and may have its own resolution. Masks are single-channel, 0 = ignore.
The original NeRF "blender" form (`camera_angle_x`, paths without an extension) is read
too. Lens distortion is refused: the layout is an undistorted pinhole.
"""

from __future__ import annotations

import argparse
import io
import math
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from recon_runner.errors import InvalidInputError
from recon_runner.importers.capture_writer import Frame, Intrinsics, Source
from recon_runner.importers.conventions import checked_pose
from recon_runner.importers.source_files import (
    read_bytes,
    read_depth_png,
    read_gray8,
    read_json_object,
)

NAME = "nerfstudio"
HELP = "nerfstudio transforms.json with depth_file_path per frame"
DEFAULT_DEPTH_UNIT = 0.001
# Depth from .npy floats is written in 0.1 mm units (6.5 m of range): nerfstudio depth
# arrays are mostly of object-sized scenes; a deeper one is refused naming the file.
NPY_DEPTH_UNIT = 0.0001
CAMERA_MODELS = ("PINHOLE", "OPENCV", "SIMPLE_PINHOLE")
DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--transforms",
        default="transforms.json",
        metavar="NAME",
        help="the JSON file inside SRC (default: transforms.json)",
    )


def source_from_args(src: Path, args: argparse.Namespace) -> Source:
    return read_nerfstudio(src, args.transforms)


def read_nerfstudio(src: Path, transforms: str = "transforms.json") -> Source:
    path = src / transforms if src.is_dir() else src
    doc = read_json_object(path)
    name = str(path)
    frames = doc.get("frames")
    if not isinstance(frames, list) or not frames:
        raise InvalidInputError(name, "has no frames")
    source_unit = _unit(doc, name)
    uses_npy = any(
        isinstance(f, dict) and str(f.get("depth_file_path", "")).endswith(".npy") for f in frames
    )
    out_unit = NPY_DEPTH_UNIT if uses_npy else source_unit
    loaders = []
    for index, frame in enumerate(frames):
        where = f"{name} frames[{index}]"
        if not isinstance(frame, dict):
            raise InvalidInputError(where, "must be an object")
        if not frame.get("depth_file_path"):
            raise InvalidInputError(
                where, "has no depth_file_path; recon reconstructs from depth maps"
            )
        loaders.append(partial(_frame, path.parent, {**doc, **frame}, where, source_unit))
    return Source(loaders, out_unit, name)


def _unit(doc: dict[str, Any], name: str) -> float:
    value = doc.get("depth_unit_scale_factor", DEFAULT_DEPTH_UNIT)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidInputError(name, f"depth_unit_scale_factor must be positive, got {value!r}")
    return float(value)


def _file(root: Path, value: Any, key: str, where: str, guess_suffix: bool = False) -> Path:
    if not isinstance(value, str) or not value:
        raise InvalidInputError(where, f"{key} is missing")
    relative = PurePosixPath(value)
    if relative.is_absolute() or ".." in relative.parts:
        raise InvalidInputError(where, f"{key} {value!r} must be a path inside the dataset")
    path = root / relative
    if guess_suffix and not path.suffix and not path.exists():
        path = path.with_suffix(".png")  # the original NeRF files name images without one
    return path


def _intrinsics(merged: dict[str, Any], where: str, image: bytes, image_name: str) -> Intrinsics:
    model = merged.get("camera_model", "PINHOLE")
    if model not in CAMERA_MODELS:
        raise InvalidInputError(where, f"camera_model {model!r} is not a pinhole camera")
    for key in DISTORTION_KEYS:
        value = merged.get(key, 0.0)
        if not isinstance(value, int | float) or value != 0:
            raise InvalidInputError(
                where, f"{key}={value!r}: lens distortion is not supported; undistort first"
            )
    if "w" in merged and "h" in merged:
        width, height = int(merged["w"]), int(merged["h"])
    else:
        try:
            width, height = Image.open(io.BytesIO(image)).size
        except OSError as e:
            raise InvalidInputError(image_name, f"is not a readable image ({e})") from None
    if "fl_x" in merged:
        fx = float(merged["fl_x"])
        fy = float(merged.get("fl_y", fx))
    elif "camera_angle_x" in merged:
        fx = 0.5 * width / math.tan(0.5 * float(merged["camera_angle_x"]))
        fy = (
            0.5 * height / math.tan(0.5 * float(merged["camera_angle_y"]))
            if "camera_angle_y" in merged
            else fx
        )
    else:
        raise InvalidInputError(where, "has no focal length (fl_x or camera_angle_x)")
    cx = float(merged.get("cx", width / 2.0))
    cy = float(merged.get("cy", height / 2.0))
    return Intrinsics(fx, fy, cx, cy, width, height)


def _required(merged: dict[str, Any], key: str, where: str) -> Any:
    if key not in merged:
        raise InvalidInputError(where, f"{key} is missing")
    return merged[key]


def _depth(path: Path, unit: float) -> npt.NDArray[np.float64]:
    if path.suffix.lower() == ".npy":
        try:
            values = np.load(io.BytesIO(read_bytes(path)), allow_pickle=False)
        except (ValueError, OSError) as e:
            raise InvalidInputError(str(path), f"is not a readable .npy array ({e})") from None
        values = np.squeeze(np.asarray(values, dtype=np.float64))
        if values.ndim != 2:
            raise InvalidInputError(str(path), f"depth array has shape {values.shape}, not H x W")
        return values * unit
    return read_depth_png(path) * unit


def _frame(root: Path, merged: dict[str, Any], where: str, unit: float) -> Frame:
    image_path = _file(root, merged.get("file_path"), "file_path", where, guess_suffix=True)
    colour = read_bytes(image_path)
    depth_path = _file(root, merged.get("depth_file_path"), "depth_file_path", where)
    mask = None
    mask_path = None
    if merged.get("mask_path"):
        mask_path = _file(root, merged["mask_path"], "mask_path", where)
        mask = read_gray8(mask_path) > 0
    try:
        intrinsics = _intrinsics(merged, where, colour, str(image_path))
    except (TypeError, ValueError):
        raise InvalidInputError(
            where, "intrinsics (w, h, fl_x, fl_y, cx, cy) must be numbers"
        ) from None
    return Frame(
        colour=colour,
        colour_source=str(image_path),
        intrinsics=intrinsics,
        c2w=checked_pose(_required(merged, "transform_matrix", where), where),
        depth=_depth(depth_path, unit),
        depth_source=str(depth_path),
        mask=mask,
        mask_source=str(mask_path) if mask_path is not None else "",
    )
