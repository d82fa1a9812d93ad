"""Record3D `.r3d` recordings (the iPhone LiDAR/TrueDepth app's export), or the folder
they unzip to.

Format, as the public readers of it describe it: nerfstudio's Record3D converter
(github.com/nerfstudio-project/nerfstudio, `nerfstudio/process_data/record3d_utils.py`)
and viser's Record3D loader (github.com/nerfstudio-project/viser, `record3d` example). An
.r3d file is a zip archive holding

    metadata           JSON: "w", "h" (colour size), "K" (3x3 colour intrinsics, stored
                       column-major), "dw", "dh" (depth size), "fps", and "poses": one
                       [qx, qy, qz, qw, tx, ty, tz] camera-to-world pose per frame
                       (scalar-last quaternion)
    rgbd/<i>.jpg       colour frame i
    rgbd/<i>.depth     LZFSE-compressed float32 z-depth in metres, dh x dw, row-major
    rgbd/<i>.conf      LZFSE-compressed uint8 ARKit confidence 0/1/2, dh x dw (optional)

The poses are ARKit's, whose camera axes are the layout's (OpenGL), so they are kept as
they are. Depth is the colour camera at the depth resolution (the layout's default depth
intrinsics). LZFSE is decoded by the `lzfse` package from PyPI (bindings to Apple's
reference implementation), not by hand-written code.
"""

from __future__ import annotations

import argparse
import math
import zipfile
from functools import partial
from pathlib import Path
from typing import Any

import lzfse  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt

from recon_runner.errors import InvalidInputError
from recon_runner.importers.capture_writer import Frame, Intrinsics, Source
from recon_runner.importers.conventions import checked_pose, pose_from_quaternion
from recon_runner.importers.source_files import number, parse_json

NAME = "record3d"
HELP = "Record3D .r3d recording (or the folder it unzips to)"
# Record3D depth is float metres; 0.2 mm units hold 13 m, past any phone depth sensor,
# and quantise far below its noise.
DEPTH_UNIT = 0.0002


class _Archive:
    """Members of the .r3d zip, or files of its unzipped folder, by member name."""

    def __init__(self, src: Path) -> None:
        self.src = src
        self._zip: zipfile.ZipFile | None = None
        if src.is_file():
            try:
                self._zip = zipfile.ZipFile(src)
            except (zipfile.BadZipFile, OSError) as e:
                raise InvalidInputError(
                    str(src), f"is not a readable .r3d (zip) file ({e})"
                ) from None
        elif not src.is_dir():
            raise InvalidInputError(str(src), "file not found")

    def name(self, member: str) -> str:
        return f"{self.src}:{member}" if self._zip is not None else str(self.src / member)

    def has(self, member: str) -> bool:
        if self._zip is not None:
            try:
                self._zip.getinfo(member)
            except KeyError:
                return False
            return True
        return (self.src / member).is_file()

    def read(self, member: str) -> bytes:
        try:
            if self._zip is not None:
                return self._zip.read(member)
            return (self.src / member).read_bytes()
        except (KeyError, FileNotFoundError):
            raise InvalidInputError(self.name(member), "not found in the recording") from None
        except (zipfile.BadZipFile, OSError, RuntimeError) as e:
            raise InvalidInputError(self.name(member), f"cannot be read ({e})") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # nothing to choose: the recording states everything


def source_from_args(src: Path, args: argparse.Namespace) -> Source:
    del args
    return read_record3d(src)


def read_record3d(src: Path) -> Source:
    archive = _Archive(src)
    meta_name = archive.name("metadata")
    meta = parse_json(archive.read("metadata"), meta_name)
    if not isinstance(meta, dict):
        raise InvalidInputError(meta_name, "must be a JSON object")
    intrinsics = _intrinsics(meta, meta_name)
    depth_size = _depth_size(meta, meta_name)
    poses = meta.get("poses")
    if not isinstance(poses, list) or not poses:
        raise InvalidInputError(meta_name, "has no poses")
    loaders = []
    for index, pose in enumerate(poses):
        if not archive.has(f"rgbd/{index}.jpg"):
            raise InvalidInputError(archive.name(f"rgbd/{index}.jpg"), "not found in the recording")
        where = f"{meta_name} poses[{index}]"
        loaders.append(partial(_frame, archive, index, pose, where, intrinsics, depth_size))
    return Source(loaders, DEPTH_UNIT, str(src))


def _intrinsics(meta: dict[str, Any], name: str) -> Intrinsics:
    try:
        k = np.array(meta.get("K"), dtype=np.float64).reshape(3, 3).T  # stored column-major
    except (TypeError, ValueError):
        raise InvalidInputError(name, "K must be 9 numbers (the 3x3 colour intrinsics)") from None
    return Intrinsics(
        fx=float(k[0, 0]),
        fy=float(k[1, 1]),
        cx=float(k[0, 2]),
        cy=float(k[1, 2]),
        width=int(number(meta, "w", name)),
        height=int(number(meta, "h", name)),
    )


def _depth_size(meta: dict[str, Any], name: str) -> tuple[int, int] | None:
    """(dw, dh) from the metadata; None when it does not say (older exports), and the size
    is then inferred from each map's length and the colour aspect ratio."""
    if "dw" in meta and "dh" in meta:
        return int(number(meta, "dw", name)), int(number(meta, "dh", name))
    return None


def _decompress(archive: _Archive, member: str) -> bytes:
    data = archive.read(member)
    try:
        return bytes(lzfse.decompress(data))
    except (lzfse.error, ValueError, MemoryError) as e:
        raise InvalidInputError(
            archive.name(member), f"is not LZFSE-compressed data ({e})"
        ) from None


def _reshape(
    values: npt.NDArray[Any], size: tuple[int, int] | None, colour: Intrinsics, name: str
) -> npt.NDArray[Any]:
    if size is None:
        # w/h of the colour image and the depth map agree, so dw = sqrt(n * w / h).
        width = round(math.sqrt(values.size * colour.width / colour.height))
        size = (width, values.size // width) if width else (0, 0)
    width, height = size
    if width * height != values.size or width == 0:
        raise InvalidInputError(
            name, f"holds {values.size} values, not the {width}x{height} the metadata says"
        )
    return values.reshape(height, width)


def _frame(
    archive: _Archive,
    index: int,
    pose: Any,
    where: str,
    intrinsics: Intrinsics,
    depth_size: tuple[int, int] | None,
) -> Frame:
    try:
        values = [float(v) for v in pose]
    except (TypeError, ValueError):
        raise InvalidInputError(where, "must be 7 numbers [qx, qy, qz, qw, tx, ty, tz]") from None
    if len(values) != 7:
        raise InvalidInputError(
            where, f"has {len(values)} numbers, not 7 [qx, qy, qz, qw, tx, ty, tz]"
        )
    try:
        c2w = pose_from_quaternion(values[4:], values[:4])
    except ValueError as e:
        raise InvalidInputError(where, str(e)) from None
    depth_member = f"rgbd/{index}.depth"
    raw = np.frombuffer(_decompress(archive, depth_member), dtype=np.float32)
    depth = _reshape(raw, depth_size, intrinsics, archive.name(depth_member))
    conf_member = f"rgbd/{index}.conf"
    confidence = None
    if archive.has(conf_member):
        conf_raw = np.frombuffer(_decompress(archive, conf_member), dtype=np.uint8)
        confidence = _reshape(
            conf_raw, (depth.shape[1], depth.shape[0]), intrinsics, archive.name(conf_member)
        )
    colour_member = f"rgbd/{index}.jpg"
    return Frame(
        colour=archive.read(colour_member),
        colour_source=archive.name(colour_member),
        intrinsics=intrinsics,
        c2w=checked_pose(c2w, where),
        depth=depth.astype(np.float64),
        depth_source=archive.name(depth_member),
        confidence=confidence,
        confidence_source=archive.name(conf_member),
    )
