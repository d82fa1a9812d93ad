"""Redwood RGB-D scans: colour and depth image folders with a `.log` camera trajectory.

Format, as the Redwood data site documents it (redwood-data.org/indoor/fileformat.html,
"Trajectory File (.log) Format"): every five lines are one item, a line of three numbers
of metadata, the third being the frame number of the depth image it belongs to (counting
from 1), then the 4x4 matrix that maps the camera's local coordinates to the world (a
camera-to-world pose). Depth is 16-bit PNG in millimetres; colour is JPEG or PNG; both
640x480 from a PrimeSense camera, with depth registered to colour. The files of each
folder (`depth/`, and `color/`, `rgb/` or `image/`) are taken in name order. Open3D's
reader of the format (`open3d.io.read_pinhole_camera_trajectory`) and its Redwood samples
use the same convention, with a PrimeSense default camera of fx = fy = 525, cx = 319.5,
cy = 239.5 (OpenCV convention) and `camera_intrinsic.json` files in Open3D's
PinholeCameraIntrinsic form when a scan has its own.

The cameras are OpenCV's: their axes are flipped to OpenGL's and the principal point
moves by half a pixel to the layout's corner origin.
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

import numpy as np
import numpy.typing as npt

from recon_runner.errors import InvalidInputError
from recon_runner.importers.capture_writer import Frame, Intrinsics, Source
from recon_runner.importers.conventions import (
    OPENCV_PIXEL_SHIFT,
    checked_pose,
    opencv_to_opengl,
    parse_pinhole,
)
from recon_runner.importers.source_files import (
    decode_image,
    read_bytes,
    read_depth_png,
    read_json_object,
    read_text,
)

NAME = "redwood"
HELP = "Redwood RGB-D scan (color/ or image/, depth/, a .log trajectory)"
PRIMESENSE_DEFAULT = (525.0, 525.0, 319.5, 239.5)
DEPTH_SCALE = 1000.0  # depth PNG units per metre
COLOUR_FOLDERS = ("color", "rgb", "image")
INTRINSIC_FILE = "camera_intrinsic.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trajectory",
        metavar="FILE",
        help="the .log trajectory, relative to SRC (default: the only .log file in SRC)",
    )
    parser.add_argument(
        "--intrinsics",
        type=parse_pinhole,
        metavar="FX,FY,CX,CY",
        help=f"OpenCV convention (default: {INTRINSIC_FILE} if present, else 525,525,319.5,239.5)",
    )
    parser.add_argument(
        "--depth-scale",
        type=float,
        default=DEPTH_SCALE,
        metavar="UNITS",
        help="depth PNG units per metre (default: 1000)",
    )


def source_from_args(src: Path, args: argparse.Namespace) -> Source:
    return read_redwood(src, args.trajectory, args.intrinsics, args.depth_scale)


def read_log(path: Path) -> list[tuple[int, npt.NDArray[np.float64]]]:
    """(depth frame number counting from 1, camera-to-world matrix) per item."""
    lines = [line.split() for line in read_text(path).splitlines() if line.strip()]
    if len(lines) % 5:
        raise InvalidInputError(
            str(path), f"has {len(lines)} lines, not items of five (metadata + 4 matrix rows)"
        )
    items = []
    for start in range(0, len(lines), 5):
        where = f"{path}:item {start // 5 + 1}"
        meta = lines[start]
        try:
            frame = int(meta[2])
            matrix = np.array([[float(v) for v in row] for row in lines[start + 1 : start + 5]])
        except (IndexError, ValueError):
            raise InvalidInputError(where, "is not three integers and a 4x4 matrix") from None
        items.append((frame, checked_pose(matrix, where)))
    return items


def _find_log(src: Path, trajectory: str | None) -> Path:
    if trajectory is not None:
        return src / trajectory
    logs = sorted(src.glob("*.log"))
    if len(logs) != 1:
        found = ", ".join(p.name for p in logs) or "none"
        raise InvalidInputError(
            str(src),
            f"needs exactly one .log trajectory (found {found}); name it with --trajectory",
        )
    return logs[0]


def _intrinsics_file(path: Path) -> tuple[float, float, float, float]:
    doc = read_json_object(path)
    try:
        k = np.array(doc["intrinsic_matrix"], dtype=np.float64).reshape(3, 3).T  # column-major
    except (KeyError, TypeError, ValueError):
        raise InvalidInputError(str(path), "intrinsic_matrix must be 9 numbers") from None
    return float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2])


def _images(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes)


def read_redwood(
    src: Path,
    trajectory: str | None = None,
    intrinsics: tuple[float, float, float, float] | None = None,
    depth_scale: float = DEPTH_SCALE,
) -> Source:
    log = _find_log(src, trajectory)
    items = read_log(log)
    colour_dir = next((src / n for n in COLOUR_FOLDERS if (src / n).is_dir()), None)
    if colour_dir is None:
        raise InvalidInputError(str(src), f"has no colour folder ({', '.join(COLOUR_FOLDERS)})")
    if not (src / "depth").is_dir():
        raise InvalidInputError(str(src / "depth"), "not found")
    colours = _images(colour_dir, (".jpg", ".jpeg", ".png"))
    depths = _images(src / "depth", (".png",))
    if len(colours) != len(depths):
        raise InvalidInputError(
            str(colour_dir), f"holds {len(colours)} images but depth/ holds {len(depths)}"
        )
    if intrinsics is None:
        path = src / INTRINSIC_FILE
        intrinsics = _intrinsics_file(path) if path.is_file() else PRIMESENSE_DEFAULT
    if not colours:
        raise InvalidInputError(str(colour_dir), "holds no images")
    width, height = decode_image(read_bytes(colours[0]), str(colours[0])).size
    fx, fy, cx, cy = intrinsics
    k = Intrinsics(fx, fy, cx + OPENCV_PIXEL_SHIFT, cy + OPENCV_PIXEL_SHIFT, width, height)
    loaders = []
    for frame, c2w_cv in items:
        if not 1 <= frame <= len(depths):
            raise InvalidInputError(
                str(log), f"names frame {frame} but there are {len(depths)} depth images"
            )
        loaders.append(
            partial(_frame, colours[frame - 1], depths[frame - 1], c2w_cv, k, depth_scale)
        )
    return Source(loaders, 1.0 / depth_scale, str(src))


def _frame(
    colour: Path,
    depth: Path,
    c2w_cv: npt.NDArray[np.float64],
    k: Intrinsics,
    depth_scale: float,
) -> Frame:
    return Frame(
        colour=read_bytes(colour),
        colour_source=str(colour),
        intrinsics=k,
        c2w=opencv_to_opengl(c2w_cv),
        depth=read_depth_png(depth) / depth_scale,
        depth_source=str(depth),
    )
