"""TUM RGB-D benchmark sequences (rgb/, depth/, rgb.txt, depth.txt, groundtruth.txt).

Format, as the TUM RGB-D benchmark documents it (cvg.cit.tum.de/data/datasets/
rgbd-dataset, "File Formats" and its `associate.py` tool): `rgb.txt` and `depth.txt`
list `timestamp filename` per image, `groundtruth.txt` lists `timestamp tx ty tz qx qy qz
qw`, the position and scalar-last orientation of the colour camera's optical centre in
the motion-capture world; lines starting with `#` are comments. Colour is 640x480 8-bit
PNG, depth 640x480 16-bit PNG scaled by 5000 (5000 = 1 m, 0 = no data), pre-registered to
the colour camera, so one set of intrinsics serves both. Colour and depth are paired as
associate.py does (closest timestamps, each used once, within 0.02 s), and each pair
takes the ground-truth pose closest to its colour timestamp within the same limit.

TUM cameras use the OpenCV convention: the camera axes are flipped to OpenGL's and the
principal point moves by half a pixel. The intrinsics default to the ROS default camera
listed beside the benchmark's calibrations (fx = fy = 525, cx = 319.5, cy = 239.5), the
one that fits the pre-registered, undistorted depth; `--intrinsics` gives a sequence's
own calibration instead.
"""

from __future__ import annotations

import argparse
import bisect
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from recon_runner.errors import InvalidInputError
from recon_runner.importers.capture_writer import Frame, Intrinsics, Source
from recon_runner.importers.conventions import (
    OPENCV_PIXEL_SHIFT,
    opencv_to_opengl,
    parse_pinhole,
    pose_from_quaternion,
)
from recon_runner.importers.source_files import decode_image, read_bytes, read_depth_png, read_text

NAME = "tum"
HELP = "TUM RGB-D sequence (rgb.txt, depth.txt, groundtruth.txt)"
DEPTH_FACTOR = 5000.0  # TUM depth PNG units per metre
DEPTH_UNIT = 1.0 / DEPTH_FACTOR
ROS_DEFAULT = (525.0, 525.0, 319.5, 239.5)  # fx, fy, cx, cy (OpenCV convention)
MAX_DIFFERENCE_S = 0.02


@dataclass(frozen=True)
class Stamped:
    time: float
    values: tuple[str, ...]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--intrinsics",
        type=parse_pinhole,
        default=ROS_DEFAULT,
        metavar="FX,FY,CX,CY",
        help="colour camera, OpenCV convention (default: the ROS defaults 525,525,319.5,239.5)",
    )
    parser.add_argument(
        "--trajectory",
        default="groundtruth.txt",
        metavar="FILE",
        help="poses in TUM format, relative to SRC (default: groundtruth.txt)",
    )
    parser.add_argument(
        "--max-difference",
        type=float,
        default=MAX_DIFFERENCE_S,
        metavar="SECONDS",
        help="largest timestamp gap to pair colour, depth and pose (default: 0.02)",
    )


def source_from_args(src: Path, args: argparse.Namespace) -> Source:
    return read_tum(src, args.intrinsics, args.trajectory, args.max_difference)


def read_list(path: Path, columns: int) -> list[Stamped]:
    """A TUM list file: `timestamp value...` per line, `#` comments, sorted by time."""
    entries = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = text.replace(",", " ").split()
        if len(parts) != columns + 1:
            raise InvalidInputError(
                f"{path}:{number}", f"has {len(parts)} fields, expected {columns + 1}"
            )
        try:
            time = float(parts[0])
        except ValueError:
            raise InvalidInputError(
                f"{path}:{number}", f"timestamp {parts[0]!r} is not a number"
            ) from None
        entries.append(Stamped(time, tuple(parts[1:])))
    entries.sort(key=lambda e: e.time)
    return entries


def associate(
    first: list[Stamped], second: list[Stamped], max_difference: float
) -> list[tuple[Stamped, Stamped]]:
    """Pairs closest in time, each entry used at most once, ordered by the first's time."""
    times = [e.time for e in second]
    candidates: list[tuple[float, int, int]] = []
    for i, entry in enumerate(first):
        lo = bisect.bisect_left(times, entry.time - max_difference)
        hi = bisect.bisect_right(times, entry.time + max_difference)
        candidates.extend((abs(times[j] - entry.time), i, j) for j in range(lo, hi))
    candidates.sort()
    used_first: set[int] = set()
    used_second: set[int] = set()
    pairs = []
    for _, i, j in candidates:
        if i in used_first or j in used_second:
            continue
        used_first.add(i)
        used_second.add(j)
        pairs.append((i, j))
    pairs.sort()
    return [(first[i], second[j]) for i, j in pairs]


def closest(
    entries: list[Stamped], times: list[float], time: float, max_difference: float
) -> Stamped | None:
    """The entry nearest `time` (`times` are the entries' times), reused freely: poses
    come at a higher rate than images."""
    k = bisect.bisect_left(times, time)
    best = min(
        (entries[j] for j in (k - 1, k) if 0 <= j < len(entries)),
        key=lambda e: abs(e.time - time),
        default=None,
    )
    return best if best is not None and abs(best.time - time) <= max_difference else None


def read_tum(
    src: Path,
    intrinsics: tuple[float, float, float, float] = ROS_DEFAULT,
    trajectory: str = "groundtruth.txt",
    max_difference: float = MAX_DIFFERENCE_S,
) -> Source:
    rgb = read_list(src / "rgb.txt", 1)
    depth = read_list(src / "depth.txt", 1)
    trajectory_path = src / trajectory
    poses = read_list(trajectory_path, 7)
    pairs = associate(rgb, depth, max_difference)
    if not pairs:
        raise InvalidInputError(
            str(src / "depth.txt"), f"no depth image within {max_difference} s of any colour image"
        )
    fx, fy, cx, cy = intrinsics
    first_colour = src / pairs[0][0].values[0]
    width, height = decode_image(read_bytes(first_colour), str(first_colour)).size
    k = Intrinsics(fx, fy, cx + OPENCV_PIXEL_SHIFT, cy + OPENCV_PIXEL_SHIFT, width, height)
    loaders = []
    unposed = 0
    pose_times = [p.time for p in poses]
    for colour, depth_entry in pairs:
        pose = closest(poses, pose_times, colour.time, max_difference)
        if pose is None:
            unposed += 1
            continue
        where = f"{trajectory_path} at {pose.time}"
        loaders.append(partial(_frame, src, colour, depth_entry, pose, where, k))
    notes = [f"paired {len(pairs)} of {len(rgb)} colour images with depth"]
    if unposed:
        notes.append(f"skipped {unposed} pairs with no pose within {max_difference} s")
    return Source(loaders, DEPTH_UNIT, str(src), notes)


def _frame(
    src: Path, colour: Stamped, depth: Stamped, pose: Stamped, where: str, k: Intrinsics
) -> Frame:
    try:
        values = [float(v) for v in pose.values]
        c2w_cv = pose_from_quaternion(values[:3], values[3:])
    except ValueError as e:
        raise InvalidInputError(
            where, f"pose is not 7 numbers tx ty tz qx qy qz qw ({e})"
        ) from None
    colour_path, depth_path = src / colour.values[0], src / depth.values[0]
    return Frame(
        colour=read_bytes(colour_path),
        colour_source=str(colour_path),
        intrinsics=k,
        c2w=opencv_to_opengl(c2w_cv),
        depth=read_depth_png(depth_path) / DEPTH_FACTOR,
        depth_source=str(depth_path),
    )
