"""The capture layout of DESIGN.md ("Input layout") as one typed model: transforms.json in,
frames with their colour and depth intrinsics, poses and file paths out, with every problem
the document itself shows.

The operator's header checks, the runner's loader and the runner's storage transfer all read
a capture through `parse_layout`, so the three agree on what a capture is: one set of path
rules, one rotation tolerance, one set of messages. What only the files can show (their
headers, their decoded pixels) is checked by each side on top of this; this module never
touches a file.

Work is bounded by `expected_views` when it is given, never by what a (possibly hostile)
document claims: a transforms.json of 10000 frames costs one problem and the first
`expected_views` frames.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

TRANSFORMS = "transforms.json"
CAMERA_MODELS = ("PINHOLE", "OPENCV")
DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy")
SIZE_KEYS = ("w", "h")
DEPTH_SIZE_KEYS = ("depth_w", "depth_h")
DEPTH_INTRINSIC_KEYS = ("depth_fl_x", "depth_fl_y", "depth_cx", "depth_cy")
DEFAULT_DEPTH_UNIT = 0.001
# How far R^T R may stray from the identity, det(R) from 1 and the last row from [0, 0, 0, 1]
# before a matrix is not a rigid pose: loose enough for float32 round trips through JSON,
# tight enough to catch a scaled, sheared or mirrored camera. The one tolerance everywhere.
ROTATION_TOLERANCE = 1e-3
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


class FileKind(StrEnum):
    """What a referenced file holds, which decides the pixel format it must have."""

    COLOUR = "colour"
    DEPTH = "depth"
    MASK = "mask"
    CONFIDENCE = "confidence"


# The frame key that names each kind of file, in the order files are listed.
FILE_KEYS: tuple[tuple[str, FileKind], ...] = (
    ("file_path", FileKind.COLOUR),
    ("depth_file_path", FileKind.DEPTH),
    ("mask_path", FileKind.MASK),
    ("confidence_path", FileKind.CONFIDENCE),
)
REQUIRED_FILE_KEYS = ("file_path", "depth_file_path")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the capture: where (a file or transforms.json field) and what."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class Intrinsics:
    """A pinhole camera in pixels, (0, 0) the top-left corner of the image."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def scaled(self, width: int, height: int) -> Intrinsics:
        """The same camera sampling an image of another size: the same rays, so a pixel of
        one and the matching pixel of the other see the same surface point."""
        sx, sy = width / self.width, height / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, width, height)

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


Matrix4 = tuple[tuple[float, float, float, float], ...]


@dataclass(frozen=True)
class FileRef:
    """A file a frame names, what it must hold, and the size it must have when known."""

    where: str  # the transforms.json field that names it
    path: str  # normalised, relative to the capture root
    kind: FileKind
    frame: int
    size: tuple[int, int] | None = None  # (width, height) the header must show


@dataclass(frozen=True)
class Frame:
    """One frame as far as transforms.json describes it. A field is None where the document
    has a problem there (the problem is in `CaptureLayout.problems`)."""

    index: int
    file_path: str | None
    depth_file_path: str | None
    mask_path: str | None
    confidence_path: str | None
    colour: Intrinsics | None
    depth: Intrinsics | None
    transform_matrix: Matrix4 | None
    files: tuple[FileRef, ...] = ()

    @property
    def where(self) -> str:
        return f"{TRANSFORMS}: frames[{self.index}]"


@dataclass(frozen=True)
class CaptureLayout:
    """transforms.json, parsed. `frames` holds the frames inspected (the first
    `expected_views` when that was given); `problems` every fault found, in document order."""

    frames: tuple[Frame, ...]
    depth_unit: float
    frame_count: int
    problems: tuple[Problem, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems

    def files(self) -> list[FileRef]:
        """Every safe path the inspected frames name, in frame order (a shared file once per
        frame that names it)."""
        return [ref for frame in self.frames for ref in frame.files]

    def paths(self) -> list[str]:
        """The distinct files to fetch, in frame order."""
        return list(dict.fromkeys(ref.path for ref in self.files()))


def safe_relative_path(raw: object) -> tuple[str | None, str | None]:
    """(normalised path, None), or (None, why it is refused).

    A capture may only name files under its own root: no URLs, absolute paths, backslashes
    (a Windows path means something else on every other side) or `..`."""
    if not isinstance(raw, str) or not raw.strip():
        return None, "must be a non-empty string"
    if any(ord(c) < 32 for c in raw):
        return None, "contains control characters"
    if "://" in raw or _URL_RE.match(raw):
        return None, f"{raw!r} is a URL; name a file relative to the dataset"
    if raw.startswith(("/", "\\")):
        return None, f"{raw!r} is an absolute path; name a file relative to the dataset"
    if "\\" in raw:
        return None, f"{raw!r} uses backslashes; separate folders with /"
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None, f"{raw!r} leaves the dataset (..)"
    if not parts:
        return None, f"{raw!r} names no file"
    return "/".join(parts), None


def parse_transforms(data: bytes) -> tuple[dict[str, Any] | None, Problem | None]:
    """The parsed document, or the reason it cannot be read."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return None, Problem(TRANSFORMS, "is not UTF-8 text")
    except json.JSONDecodeError as e:
        return None, Problem(TRANSFORMS, f"is not valid JSON: {e.msg} at line {e.lineno}")
    except (ValueError, RecursionError):
        return None, Problem(TRANSFORMS, "is not valid JSON (too deeply nested or huge number)")
    if not isinstance(doc, dict):
        return None, Problem(TRANSFORMS, "must be a JSON object")
    return doc, None


def number(value: object) -> float | None:
    """A JSON number as float; None for anything else (booleans included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def check_pose(where: str, matrix: object) -> tuple[Matrix4 | None, list[Problem]]:
    """A 4x4 camera-to-world matrix: finite, a rotation (orthonormal, determinant 1) and a
    last row of [0, 0, 0, 1], each within ROTATION_TOLERANCE. The last row is returned
    exact."""
    if (
        not isinstance(matrix, list)
        or len(matrix) != 4
        or not all(isinstance(row, list) and len(row) == 4 for row in matrix)
    ):
        return None, [Problem(where, "must be a 4x4 matrix (a list of 4 rows of 4 numbers)")]
    values = [[number(v) for v in row] for row in matrix]
    if any(v is None or not math.isfinite(v) for row in values for v in row):
        return None, [Problem(where, "must hold only finite numbers")]
    m: list[list[float]] = values  # type: ignore[assignment]
    problems = []
    if max(abs(a - b) for a, b in zip(m[3], (0.0, 0.0, 0.0, 1.0), strict=True)) > (
        ROTATION_TOLERANCE
    ):
        problems.append(Problem(where, f"last row must be [0, 0, 0, 1], got {matrix[3]}"))
    r = [row[:3] for row in m[:3]]
    gram_error = max(
        abs(sum(r[k][i] * r[k][j] for k in range(3)) - (1.0 if i == j else 0.0))
        for i in range(3)
        for j in range(3)
    )
    det = (
        r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1])
        - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0])
        + r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0])
    )
    if gram_error > ROTATION_TOLERANCE or abs(det - 1.0) > ROTATION_TOLERANCE:
        problems.append(
            Problem(
                where,
                "rotation part is not orthonormal with determinant 1 "
                "(scaled, sheared or mirrored camera)",
            )
        )
    if problems:
        return None, problems
    rows = tuple((row[0], row[1], row[2], row[3]) for row in m[:3])
    return (*rows, (0.0, 0.0, 0.0, 1.0)), []


class _Parser:
    """Collects problems across one document."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.doc = doc
        self.problems: list[Problem] = []

    def add(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message))

    def frames(self, expected_views: int | None) -> tuple[list[Any], int]:
        frames = self.doc.get("frames")
        if not isinstance(frames, list):
            self.add(f"{TRANSFORMS}: frames", "must be a list of frames")
            return [], 0
        count = len(frames)
        if expected_views is None:
            if not frames:
                self.add(f"{TRANSFORMS}: frames", "is empty; a capture needs at least one frame")
            return frames, count
        if count != expected_views:
            extra = (
                f"; only the first {expected_views} were inspected"
                if count > expected_views
                else ""
            )
            self.add(
                f"{TRANSFORMS}: frames",
                f"lists {count} frames but spec.input.expectedViews is {expected_views}{extra}",
            )
        return frames[:expected_views], count

    def top_level(self) -> float:
        doc = self.doc
        self.camera_model(f"{TRANSFORMS}: camera_model", doc)
        self.distortion(TRANSFORMS, doc)
        unit = DEFAULT_DEPTH_UNIT
        if doc.get("depth_unit_scale_factor") is not None:
            raw = doc["depth_unit_scale_factor"]
            value = number(raw)
            if value is None or not math.isfinite(value) or value <= 0:
                self.add(
                    f"{TRANSFORMS}: depth_unit_scale_factor",
                    f"must be a positive number, got {raw!r}",
                )
            else:
                unit = value
        for key in INTRINSIC_KEYS + SIZE_KEYS + DEPTH_INTRINSIC_KEYS + DEPTH_SIZE_KEYS:
            if key in doc:
                self.positive(f"{TRANSFORMS}: {key}", key, doc[key])
        return unit

    def camera_model(self, where: str, holder: Mapping[str, Any]) -> None:
        model = holder.get("camera_model")
        if model is not None and model not in CAMERA_MODELS:
            self.add(where, f"{model!r} is not supported; use PINHOLE or OPENCV without distortion")

    def distortion(self, where: str, holder: Mapping[str, Any]) -> None:
        for key in DISTORTION_KEYS:
            if key in holder and number(holder[key]) != 0.0:
                self.add(
                    f"{where}: {key}",
                    f"lens distortion is not supported (must be 0, got {holder[key]!r}); "
                    "undistort the images first",
                )

    def positive(self, where: str, key: str, value: object) -> float | None:
        value_n = number(value)
        if value_n is None or not math.isfinite(value_n) or value_n <= 0:
            self.add(where, f"must be a positive number, got {value!r}")
            return None
        if key in SIZE_KEYS + DEPTH_SIZE_KEYS and value_n != int(value_n):
            self.add(where, f"must be a whole number of pixels, got {value!r}")
            return None
        return value_n

    def _value(self, frame: Mapping[str, Any], where: str, key: str) -> tuple[bool, float | None]:
        """(given, value) of a key the frame may override: the frame's own (checked here),
        else the top level's (checked once in `top_level`)."""
        if key in frame:
            return True, self.positive(f"{where}.{key}", key, frame[key])
        if key in self.doc:
            value = number(self.doc[key])
            ok = value is not None and math.isfinite(value) and value > 0
            if ok and key in SIZE_KEYS + DEPTH_SIZE_KEYS and value != int(value):  # type: ignore[arg-type]
                ok = False
            return True, value if ok else None
        return False, None

    def frame(self, index: int, raw: object) -> Frame | None:
        where = f"{TRANSFORMS}: frames[{index}]"
        if not isinstance(raw, dict):
            self.add(where, "must be an object with file_path, depth_file_path, transform_matrix")
            return None
        paths: dict[str, str | None] = {}
        for key, _kind in FILE_KEYS:
            if key not in raw or (key not in REQUIRED_FILE_KEYS and raw[key] is None):
                if key in REQUIRED_FILE_KEYS:
                    self.add(f"{where}.{key}", "is missing")
                paths[key] = None
                continue
            path, why = safe_relative_path(raw[key])
            if why:
                self.add(f"{where}.{key}", why)
            paths[key] = path
        pose = None
        if "transform_matrix" not in raw:
            self.add(f"{where}.transform_matrix", "is missing")
        else:
            pose, problems = check_pose(f"{where}.transform_matrix", raw["transform_matrix"])
            self.problems.extend(problems)
        self.camera_model(f"{where}.camera_model", raw)
        self.distortion(where, raw)
        colour = self._colour(raw, where)
        depth = self._depth(raw, where, colour)
        files = []
        for key, kind in FILE_KEYS:
            path = paths[key]
            if path is None:
                continue
            size = colour if kind in (FileKind.COLOUR, FileKind.MASK) else depth
            files.append(FileRef(f"{where}.{key}", path, kind, index, size.size if size else None))
        return Frame(
            index=index,
            file_path=paths["file_path"],
            depth_file_path=paths["depth_file_path"],
            mask_path=paths["mask_path"],
            confidence_path=paths["confidence_path"],
            colour=colour,
            depth=depth,
            transform_matrix=pose,
            files=tuple(files),
        )

    def _colour(self, raw: Mapping[str, Any], where: str) -> Intrinsics | None:
        values: dict[str, float | None] = {}
        for key in INTRINSIC_KEYS + SIZE_KEYS:
            given, values[key] = self._value(raw, where, key)
            if not given:
                self.add(
                    f"{where}.{key}",
                    "is missing (give it at the top level of transforms.json or in every frame)",
                )
        if any(v is None for v in values.values()):
            return None
        v: dict[str, float] = values  # type: ignore[assignment]
        return Intrinsics(v["fl_x"], v["fl_y"], v["cx"], v["cy"], int(v["w"]), int(v["h"]))

    def _depth(
        self, raw: Mapping[str, Any], where: str, colour: Intrinsics | None
    ) -> Intrinsics | None:
        """Depth intrinsics: given explicitly, or the colour camera scaled to the depth
        map's size (`depth_w`, `depth_h`, default the colour size)."""
        sizes: dict[str, float | None] = {}
        for key in DEPTH_SIZE_KEYS:
            given, value = self._value(raw, where, key)
            sizes[key] = value if given else None
            if given and value is None:
                return None
        explicit: dict[str, float | None] = {}
        for key in DEPTH_INTRINSIC_KEYS:
            given, value = self._value(raw, where, key)
            if given and value is None:
                return None
            explicit[key] = value if given else None
        if colour is None:
            return None
        width = int(sizes["depth_w"]) if sizes["depth_w"] is not None else colour.width
        height = int(sizes["depth_h"]) if sizes["depth_h"] is not None else colour.height
        scaled = colour.scaled(width, height)
        return Intrinsics(
            explicit["depth_fl_x"] if explicit["depth_fl_x"] is not None else scaled.fx,
            explicit["depth_fl_y"] if explicit["depth_fl_y"] is not None else scaled.fy,
            explicit["depth_cx"] if explicit["depth_cx"] is not None else scaled.cx,
            explicit["depth_cy"] if explicit["depth_cy"] is not None else scaled.cy,
            width,
            height,
        )


def _one_size(frames: Sequence[Frame]) -> list[Problem]:
    """Every view's colour image one size: the stages batch views together."""
    known = [f for f in frames if f.colour is not None]
    if not known:
        return []
    first = known[0]
    assert first.colour is not None
    problems = []
    for frame in known[1:]:
        assert frame.colour is not None
        if frame.colour.size != first.colour.size:
            w, h = frame.colour.size
            problems.append(
                Problem(
                    frame.where,
                    f"image size {w}x{h} differs from frames[{first.index}] "
                    f"({first.colour.width}x{first.colour.height}); all views must be one size",
                )
            )
    return problems


def parse_layout(doc: Mapping[str, Any], expected_views: int | None = None) -> CaptureLayout:
    """The capture transforms.json describes, and every problem in it (empty when the
    document is sound; the files it names are not looked at)."""
    parser = _Parser(doc)
    raw_frames, count = parser.frames(expected_views)
    unit = parser.top_level()
    frames = tuple(
        frame
        for frame in (parser.frame(i, raw) for i, raw in enumerate(raw_frames))
        if frame is not None
    )
    problems = parser.problems + _one_size(frames)
    # A fault two frames share is reported once.
    return CaptureLayout(frames, unit, count, tuple(dict.fromkeys(problems)))


def load_layout(data: bytes, expected_views: int | None = None) -> CaptureLayout:
    """parse_transforms, then parse_layout; an unreadable document is the one problem."""
    doc, problem = parse_transforms(data)
    if doc is None:
        assert problem is not None
        return CaptureLayout((), DEFAULT_DEPTH_UNIT, 0, (problem,))
    return parse_layout(doc, expected_views)
