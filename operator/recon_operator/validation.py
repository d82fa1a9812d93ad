"""Check a capture before any GPU is spent: transforms.json, the files it names, their PNG
headers and sizes. Pure: the caller (capture_reader) brings the bytes.

Every problem is reported at once, each naming the file or field, so a user fixes a
capture in one round trip instead of one error per submission. Work is bounded by
`expectedViews`, never by what the (possibly hostile) input claims: a transforms.json with
10000 frames gets one problem and at most 2 x expectedViews header reads.

Paths in listings, headers and problems are relative to the dataset prefix.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from recon_api.constants import MAX_IMAGE_PIXELS

from recon_operator.pngheader import ColourType, PngHeader, PngHeaderError, parse_png_header

TRANSFORMS = "transforms.json"
CAMERA_MODELS = ("PINHOLE", "OPENCV")
DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy")
SIZE_KEYS = ("w", "h")
# How far R^T R may stray from the identity, and det(R) from 1, before a matrix is not a
# rotation: loose enough for float32 round trips through JSON, tight enough to catch scale.
ROTATION_TOLERANCE = 1e-3
# MAX_IMAGE_PIXELS (recon_api.constants): pngheader refuses a side over 16384 as a corrupt
# header; a plausible header can still describe an image the runner would decode at
# gigabyte scale (PIL calls 16384x16384 a decompression bomb and refuses it only then), so
# a capture of larger images is refused here, before any GPU is requested.
# Bounds on the text of one problem in a message: a hostile transforms.json can name a file
# with a path of megabytes, and one such problem must not crowd out the others.
MAX_WHERE_CHARS = 200
MAX_PROBLEM_CHARS = 600
ELLIPSIS = "…"
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the capture: where (a file or transforms.json field) and what."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int
    max_total_bytes: int


@dataclass(frozen=True)
class FileRef:
    """A PNG a frame names, and what it must be."""

    where: str  # the transforms.json field that names it
    path: str  # normalised, relative to the dataset prefix
    depth: bool
    frame: int


def shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters by an ellipsis in the middle, keeping its start and
    end (a path's folder and file name, a message's subject and verdict)."""
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return text[:limit]
    keep = limit - len(ELLIPSIS)
    head = keep - keep // 3
    return text[:head] + ELLIPSIS + text[len(text) - (keep - head) :]


def problem_text(problem: Problem | str) -> str:
    """One problem as a message line, bounded: the location to MAX_WHERE_CHARS, the line to
    MAX_PROBLEM_CHARS."""
    if isinstance(problem, Problem):
        problem = f"{shorten(problem.where, MAX_WHERE_CHARS)}: {problem.message}"
    return shorten(problem, MAX_PROBLEM_CHARS)


def format_problems(problems: Sequence[Problem | str], max_chars: int = 4000) -> str:
    """One message for a condition or Event, at most `max_chars` long: as many problems as
    fit, each cut to a bounded length, then a count of the rest (condition messages are
    bounded, and a wall of text helps nobody)."""
    lines = [problem_text(p) for p in problems]
    whole = "; ".join(lines)
    if len(whole) <= max_chars:
        return whole
    out = ""
    for i, text in enumerate(lines):
        line = ("; " if out else "") + text
        rest = len(problems) - i - 1
        # Keep room for the count of the problems after this one.
        room = max_chars - len(out) - (len(_more(rest)) if rest else 0)
        if len(line) > room:
            if out:
                return (out + _more(len(problems) - i))[:max_chars]
            line = shorten(line, max(room, 0))  # not even the first fits whole
        out += line
    return out[:max_chars]


def _more(count: int) -> str:
    return f"; ... and {count} more problem{'s' if count != 1 else ''}"


def safe_relative_path(raw: object) -> tuple[str | None, str | None]:
    """(normalised path, None), or (None, why it is refused).

    A capture may only name files under its own prefix: no URLs, absolute paths or `..`."""
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


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


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


def _frames(doc: Mapping[str, Any]) -> list[Any] | None:
    frames = doc.get("frames")
    return frames if isinstance(frames, list) else None


def referenced_files(doc: Mapping[str, Any], expected_views: int) -> list[FileRef]:
    """The PNGs the first `expected_views` frames name, with safe paths only."""
    frames = _frames(doc) or []
    refs: list[FileRef] = []
    for i, frame in enumerate(frames[:expected_views]):
        if not isinstance(frame, dict):
            continue
        for key, depth in (("file_path", False), ("depth_file_path", True)):
            path, _ = safe_relative_path(frame.get(key))
            if path is not None:
                refs.append(FileRef(f"{TRANSFORMS}: frames[{i}].{key}", path, depth, i))
    return refs


@dataclass(frozen=True)
class Transforms:
    """transforms.json, read and parsed once per validation: the document, or the one
    problem that stops validation (absent, over the size limit, unreadable)."""

    doc: dict[str, Any] | None
    problem: Problem | None = None


def load_transforms(data: bytes | None, size: int, limits: Limits) -> Transforms:
    """Parse transforms.json once; the document is then passed along, never parsed again.

    data: its bytes (None when it is absent), at most `limits.max_file_bytes + 1` of them.
    size: the object's full size in storage."""
    if data is None:
        return Transforms(None, Problem(TRANSFORMS, "not found under the dataset prefix"))
    if len(data) > limits.max_file_bytes or size > limits.max_file_bytes:
        size = max(len(data), size)
        return Transforms(
            None,
            Problem(
                TRANSFORMS, f"is {size} bytes, over the per-file limit of {limits.max_file_bytes}"
            ),
        )
    doc, problem = parse_transforms(data)
    return Transforms(doc, problem)


def files_to_read(transforms: Transforms, expected_views: int) -> list[str]:
    """The safe paths the first `expected_views` frames name, each once: the only files
    whose first bytes validate_capture needs."""
    if transforms.doc is None:
        return []
    refs = referenced_files(transforms.doc, expected_views)
    return list(dict.fromkeys(ref.path for ref in refs))


def header_reads(
    transforms: Transforms, listing: Mapping[str, int], expected_views: int
) -> list[str]:
    """files_to_read, narrowed to those the listing shows present."""
    return [path for path in files_to_read(transforms, expected_views) if path in listing]


def _check_matrix(where: str, matrix: object) -> list[Problem]:
    if (
        not isinstance(matrix, list)
        or len(matrix) != 4
        or not all(isinstance(row, list) and len(row) == 4 for row in matrix)
    ):
        return [Problem(where, "must be a 4x4 matrix (a list of 4 rows of 4 numbers)")]
    values = [[_number(v) for v in row] for row in matrix]
    if any(v is None or not math.isfinite(v) for row in values for v in row):
        return [Problem(where, "must hold only finite numbers")]
    m: list[list[float]] = values  # type: ignore[assignment]
    problems = []
    if m[3] != [0.0, 0.0, 0.0, 1.0]:
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
    return problems


class _Checker:
    """Collects problems across the document; one instance per validation."""

    def __init__(self, doc: Mapping[str, Any], expected_views: int) -> None:
        self.doc = doc
        self.expected_views = expected_views
        self.problems: list[Problem] = []

    def add(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message))

    def top_level(self) -> list[Any]:
        doc = self.doc
        frames = _frames(doc)
        if frames is None:
            self.add(f"{TRANSFORMS}: frames", "must be a list of frames")
            frames = []
        elif len(frames) != self.expected_views:
            extra = (
                f"; only the first {self.expected_views} were inspected"
                if len(frames) > self.expected_views
                else ""
            )
            self.add(
                f"{TRANSFORMS}: frames",
                f"lists {len(frames)} frames but spec.input.expectedViews is "
                f"{self.expected_views}{extra}",
            )
        self._camera_model(f"{TRANSFORMS}: camera_model", doc)
        self._distortion(TRANSFORMS, doc)
        scale = doc.get("depth_unit_scale_factor")
        if scale is not None:
            value = _number(scale)
            if value is None or not math.isfinite(value) or value <= 0:
                self.add(
                    f"{TRANSFORMS}: depth_unit_scale_factor",
                    f"must be a positive number, got {scale!r}",
                )
        for key in INTRINSIC_KEYS + SIZE_KEYS:
            if key in doc:
                self._intrinsic(f"{TRANSFORMS}: {key}", key, doc[key])
        return frames[: self.expected_views]

    def _camera_model(self, where: str, holder: Mapping[str, Any]) -> None:
        model = holder.get("camera_model")
        if model is not None and model not in CAMERA_MODELS:
            self.add(where, f"{model!r} is not supported; use PINHOLE or OPENCV without distortion")

    def _distortion(self, where: str, holder: Mapping[str, Any]) -> None:
        for key in DISTORTION_KEYS:
            if key in holder and _number(holder[key]) != 0.0:
                self.add(
                    f"{where}: {key}",
                    f"lens distortion is not supported (must be 0, got {holder[key]!r}); "
                    "undistort the images first",
                )

    def _intrinsic(self, where: str, key: str, value: object) -> float | None:
        number = _number(value)
        if number is None or not math.isfinite(number) or number <= 0:
            self.add(where, f"must be a positive number, got {value!r}")
            return None
        if key in SIZE_KEYS and number != int(number):
            self.add(where, f"must be a whole number of pixels, got {value!r}")
            return None
        return number

    def frame(self, i: int, frame: object) -> tuple[int, int] | None:
        """Check one frame; return its image size (w, h) when it is known and valid."""
        where = f"{TRANSFORMS}: frames[{i}]"
        if not isinstance(frame, dict):
            self.add(where, "must be an object with file_path, depth_file_path, transform_matrix")
            return None
        for key in ("file_path", "depth_file_path"):
            if key not in frame:
                self.add(f"{where}.{key}", "is missing")
                continue
            _, why = safe_relative_path(frame[key])
            if why:
                self.add(f"{where}.{key}", why)
        if "transform_matrix" not in frame:
            self.add(f"{where}.transform_matrix", "is missing")
        else:
            self.problems.extend(
                _check_matrix(f"{where}.transform_matrix", frame["transform_matrix"])
            )
        self._camera_model(f"{where}.camera_model", frame)
        self._distortion(where, frame)
        size: list[int] = []
        for key in INTRINSIC_KEYS + SIZE_KEYS:
            if key in frame:
                value = self._intrinsic(f"{where}.{key}", key, frame[key])
            elif key in self.doc:
                value = _number(self.doc[key])  # checked once at the top level
                value = value if value is not None and math.isfinite(value) and value > 0 else None
            else:
                self.add(
                    f"{where}.{key}",
                    "is missing (give it at the top level of transforms.json or in every frame)",
                )
                value = None
            if key in SIZE_KEYS and value is not None and value == int(value):
                size.append(int(value))
        return (size[0], size[1]) if len(size) == 2 else None


def _check_header(
    ref: FileRef, data: bytes, expected_size: tuple[int, int] | None
) -> list[Problem]:
    try:
        header: PngHeader = parse_png_header(data)
    except PngHeaderError as e:
        return [Problem(ref.path, str(e))]
    problems = []
    if ref.depth:
        if header.colour_type != ColourType.GRAYSCALE or header.bit_depth != 16:
            problems.append(
                Problem(
                    ref.path, f"depth must be a 16-bit grayscale PNG, found {header.describe()}"
                )
            )
    elif header.colour_type not in (ColourType.RGB, ColourType.RGBA) or header.bit_depth != 8:
        problems.append(
            Problem(ref.path, f"colour must be an 8-bit RGB or RGBA PNG, found {header.describe()}")
        )
    if header.width * header.height > MAX_IMAGE_PIXELS:
        problems.append(
            Problem(
                ref.path,
                f"is {header.width}x{header.height} ({header.width * header.height} pixels), "
                f"more than the {MAX_IMAGE_PIXELS} pixels (4096x4096) allowed per image; "
                "scale the capture down (w, h and the intrinsics with it)",
            )
        )
    if expected_size is not None and (header.width, header.height) != expected_size:
        w, h = expected_size
        problems.append(
            Problem(
                ref.path,
                f"is {header.width}x{header.height} but frame {ref.frame} says {w}x{h} (w, h)",
            )
        )
    return problems


def _sizes(files: Iterable[str], listing: Mapping[str, int], limits: Limits) -> list[Problem]:
    problems = []
    total = 0
    for path in files:
        size = listing[path]
        total += size
        if size > limits.max_file_bytes:
            problems.append(
                Problem(
                    path, f"is {size} bytes, over the per-file limit of {limits.max_file_bytes}"
                )
            )
    if total > limits.max_total_bytes:
        problems.append(
            Problem(
                "capture",
                f"totals {total} bytes, over the limit of {limits.max_total_bytes}",
            )
        )
    return problems


def validate_capture(
    transforms: Transforms,
    listing: Mapping[str, int],
    headers: Mapping[str, bytes],
    *,
    expected_views: int,
    limits: Limits,
) -> list[Problem]:
    """Every problem with the capture; empty when it may be admitted.

    transforms: transforms.json as `load_transforms` read it.
    listing: relative path -> size of every object under the prefix (transforms.json
        included).
    headers: relative path -> first bytes (33 suffice) of the files `header_reads` named.
    """
    doc = transforms.doc
    if doc is None:
        problem = transforms.problem or Problem(TRANSFORMS, "could not be read")
        return [problem]
    checker = _Checker(doc, expected_views)
    frames = checker.top_level()
    frame_sizes = [checker.frame(i, frame) for i, frame in enumerate(frames)]
    problems = checker.problems

    known = [(i, s) for i, s in enumerate(frame_sizes) if s is not None]
    if known:
        first_i, first = known[0]
        for i, s in known[1:]:
            if s != first:
                problems.append(
                    Problem(
                        f"{TRANSFORMS}: frames[{i}]",
                        f"image size {s[0]}x{s[1]} differs from frames[{first_i}] "
                        f"({first[0]}x{first[1]}); all views must be one size",
                    )
                )

    present: dict[str, None] = {TRANSFORMS: None} if TRANSFORMS in listing else {}
    for ref in referenced_files(doc, expected_views):
        if ref.path not in listing:
            problems.append(Problem(ref.where, f"{ref.path} not found under the dataset prefix"))
            continue
        present.setdefault(ref.path, None)
        if ref.path in headers:
            problems.extend(_check_header(ref, headers[ref.path], frame_sizes[ref.frame]))
    problems.extend(_sizes(present, listing, limits))
    # A file two frames share would otherwise be reported twice for one fault.
    return list(dict.fromkeys(problems))
