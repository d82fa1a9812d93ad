"""Polycam "raw data" exports (the LiDAR phone app's developer-mode export).

Format, as nerfstudio's Polycam converter (github.com/nerfstudio-project/nerfstudio,
`nerfstudio/process_data/polycam_utils.py`) and Polycam's own `polyform` toolkit
(github.com/PolyCam/polyform, its `CaptureFolder` artifacts) describe it:

    keyframes/images/<ts>.jpg              colour as captured
    keyframes/corrected_images/<ts>.jpg    undistorted, optimised after capture
    keyframes/cameras/<ts>.json            fx, fy, cx, cy, width, height, t_00 .. t_23
    keyframes/corrected_cameras/<ts>.json  the same for the corrected images
    keyframes/depth/<ts>.png               16-bit depth in millimetres, LiDAR resolution
    keyframes/confidence/<ts>.png          8-bit depth confidence, depth resolution

`t_ij` is the row-major 3x4 camera-to-world matrix in ARKit's frame. ARKit's camera axes
are already the layout's (OpenGL: +Y up, looking down -Z), so the matrix is kept as is;
nerfstudio's row permutation only turns ARKit's Y-up world to its own Z-up world, which
the layout does not ask for. The intrinsics are used as stored (as nerfstudio does). Depth
is the colour camera at the depth map's resolution, so the depth intrinsics are the
layout's default (colour ones scaled). The corrected images and cameras are preferred
whenever the export has them.
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

import numpy as np

from recon_runner.errors import InvalidInputError
from recon_runner.importers.capture_writer import Frame, Intrinsics, Source
from recon_runner.importers.conventions import checked_pose
from recon_runner.importers.source_files import (
    number,
    numbered_files,
    read_bytes,
    read_depth_png,
    read_gray8,
    read_json_object,
)

NAME = "polycam"
HELP = "Polycam raw data export (a folder with keyframes/)"
DEPTH_UNIT = 0.001  # Polycam depth PNGs are millimetres
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--uncorrected",
        action="store_true",
        help="use keyframes/images and cameras even when corrected_* are present",
    )


def source_from_args(src: Path, args: argparse.Namespace) -> Source:
    return read_polycam(src, prefer_corrected=not args.uncorrected)


def read_polycam(src: Path, prefer_corrected: bool = True) -> Source:
    keyframes = src / "keyframes"
    if not keyframes.is_dir():
        raise InvalidInputError(str(keyframes), "not found; is this a Polycam raw data export?")
    corrected = (keyframes / "corrected_cameras").is_dir() and (
        keyframes / "corrected_images"
    ).is_dir()
    prefix = "corrected_" if prefer_corrected and corrected else ""
    cameras_dir = keyframes / f"{prefix}cameras"
    images = numbered_files(keyframes / f"{prefix}images", IMAGE_SUFFIXES)
    cameras = numbered_files(cameras_dir, (".json",))
    depths = numbered_files(keyframes / "depth", (".png",))
    confidences = numbered_files(keyframes / "confidence", (".png",))
    if not cameras:
        raise InvalidInputError(str(cameras_dir), "holds no camera JSON files")
    if not depths:
        raise InvalidInputError(
            str(keyframes / "depth"), "holds no depth maps; export raw data from a LiDAR capture"
        )
    notes = [f"using {prefix or 'uncorrected '}images and cameras"]
    loaders = []
    skipped = 0
    for stamp in sorted(cameras):
        if stamp not in images or stamp not in depths:
            skipped += 1
            continue
        loaders.append(
            partial(_frame, cameras[stamp], images[stamp], depths[stamp], confidences.get(stamp))
        )
    if skipped:
        notes.append(f"skipped {skipped} keyframes without both an image and a depth map")
    return Source(loaders, DEPTH_UNIT, str(src), notes)


def _frame(camera: Path, image: Path, depth: Path, confidence: Path | None) -> Frame:
    doc = read_json_object(camera)
    name = str(camera)
    intrinsics = Intrinsics(
        fx=number(doc, "fx", name),
        fy=number(doc, "fy", name),
        cx=number(doc, "cx", name),
        cy=number(doc, "cy", name),
        width=int(number(doc, "width", name)),
        height=int(number(doc, "height", name)),
    )
    rows = [[number(doc, f"t_{r}{c}", name) for c in range(4)] for r in range(3)]
    depth_units = read_depth_png(depth)
    conf = read_gray8(confidence) if confidence is not None else None
    return Frame(
        colour=read_bytes(image),
        colour_source=str(image),
        intrinsics=intrinsics,
        c2w=checked_pose(np.array(rows), name),
        depth=depth_units * DEPTH_UNIT,
        depth_source=str(depth),
        confidence=conf,
        confidence_source=str(confidence) if confidence is not None else "",
    )
