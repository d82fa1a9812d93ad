"""ScanNet scans exported from their `.sens` files by ScanNet's SensReader.

Format, as ScanNet's SensReader documents it (github.com/ScanNet/ScanNet,
`SensReader/python/README.md`: depth as 16-bit PNG with depth shift 1000, colour as JPEG,
poses as 4x4 camera-to-world, intrinsics as 4x4 matrices): the exporter writes

    color/<i>.jpg                    8-bit colour (1296x968 in ScanNet v2)
    depth/<i>.png                    16-bit depth, depth shift 1000 (millimetres), 640x480
    pose/<i>.txt                     4x4 camera-to-world matrix (tracking lost: -inf)
    intrinsic/intrinsic_color.txt    4x4 colour intrinsics
    intrinsic/intrinsic_depth.txt    4x4 depth intrinsics
    intrinsic/extrinsic_color.txt, extrinsic_depth.txt   (must coincide: one pose a frame)

Colour and depth have intrinsics of their own, so both are written (`depth_fl_x` ...).
ScanNet's poses and intrinsics use the OpenCV convention: the camera's axes are flipped
to OpenGL's and the principal points move by half a pixel to the layout's corner origin.
Frames whose pose is not finite (ScanNet marks lost tracking so) are skipped and counted.
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
    is_valid_pose,
    opencv_to_opengl,
)
from recon_runner.importers.source_files import (
    decode_image,
    numbered_files,
    read_bytes,
    read_depth_png,
    read_matrix_text,
)

NAME = "scannet"
HELP = "ScanNet frames exported by SensReader (color/, depth/, pose/, intrinsic/)"
DEPTH_SHIFT = 1000.0  # ScanNet depth PNG units per metre
DEPTH_UNIT = 1.0 / DEPTH_SHIFT


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # the export states everything


def source_from_args(src: Path, args: argparse.Namespace) -> Source:
    del args
    return read_scannet(src)


def _intrinsics(path: Path, width: int, height: int) -> Intrinsics:
    k = read_matrix_text(path)
    return Intrinsics(
        fx=float(k[0, 0]),
        fy=float(k[1, 1]),
        cx=float(k[0, 2]) + OPENCV_PIXEL_SHIFT,
        cy=float(k[1, 2]) + OPENCV_PIXEL_SHIFT,
        width=width,
        height=height,
    )


def _check_extrinsics(folder: Path) -> None:
    """The layout has one pose per frame: the colour and depth cameras must coincide."""
    colour, depth = folder / "extrinsic_color.txt", folder / "extrinsic_depth.txt"
    if colour.is_file() and depth.is_file():
        relative = np.linalg.inv(read_matrix_text(colour)) @ read_matrix_text(depth)
        if not np.allclose(relative, np.eye(4), atol=1e-6):
            raise InvalidInputError(
                str(depth),
                "the depth camera is not at the colour camera (extrinsics differ); "
                "register the depth maps to the colour camera first",
            )


def read_scannet(src: Path) -> Source:
    intrinsic_dir = src / "intrinsic"
    colours = numbered_files(src / "color", (".jpg", ".jpeg", ".png"))
    depths = numbered_files(src / "depth", (".png",))
    poses = numbered_files(src / "pose", (".txt",))
    for folder, found in (("color", colours), ("depth", depths), ("pose", poses)):
        if not found:
            raise InvalidInputError(str(src / folder), "holds no exported frames")
    _check_extrinsics(intrinsic_dir)
    first = min(colours)
    colour_w, colour_h = decode_image(read_bytes(colours[first]), str(colours[first])).size
    colour_k = _intrinsics(intrinsic_dir / "intrinsic_color.txt", colour_w, colour_h)
    loaders = []
    lost = missing = 0
    for index in sorted(colours):
        if index not in depths or index not in poses:
            missing += 1
            continue
        pose = read_matrix_text(poses[index])
        if not is_valid_pose(pose):
            lost += 1
            continue
        loaders.append(
            partial(
                _frame,
                colours[index],
                depths[index],
                pose,
                str(poses[index]),
                colour_k,
                intrinsic_dir / "intrinsic_depth.txt",
            )
        )
    notes = []
    if lost:
        notes.append(f"skipped {lost} frames whose pose is not finite (tracking lost)")
    if missing:
        notes.append(f"skipped {missing} frames without both a depth map and a pose")
    return Source(loaders, DEPTH_UNIT, str(src), notes)


def _frame(
    colour: Path,
    depth: Path,
    pose: npt.NDArray[np.float64],
    pose_name: str,
    colour_k: Intrinsics,
    depth_k_path: Path,
) -> Frame:
    depth_units = read_depth_png(depth)
    height, width = depth_units.shape
    return Frame(
        colour=read_bytes(colour),
        colour_source=str(colour),
        intrinsics=colour_k,
        c2w=opencv_to_opengl(checked_pose(pose, pose_name)),
        depth=depth_units / DEPTH_SHIFT,
        depth_source=str(depth),
        depth_intrinsics=_intrinsics(depth_k_path, width, height),
    )
