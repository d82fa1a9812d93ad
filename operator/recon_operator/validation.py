"""Check a capture before any GPU is spent: transforms.json, the files it names, their image
headers and sizes. Pure: the caller (capture_reader) brings the bytes.

The document's own rules (paths, matrices, intrinsics, depth sizes) are the capture
contract's (`recon_api.capture_layout`), shared with the runner; what is added here is what
the headers and the listing show: files present, pixel formats, sizes against `w`/`h` and
`depth_w`/`depth_h`, byte limits.

Every problem is reported at once, each naming the file or field, so a user fixes a
capture in one round trip instead of one error per submission. Work is bounded by
`expectedViews`, never by what the (possibly hostile) input claims: a transforms.json with
10000 frames gets one problem and at most 4 x expectedViews header reads.

Paths in listings, headers and problems are relative to the dataset prefix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from recon_api.capture_layout import (
    TRANSFORMS,
    CaptureLayout,
    FileKind,
    FileRef,
    Problem,
    parse_layout,
    parse_transforms,
    safe_relative_path,
)
from recon_api.constants import MAX_IMAGE_PIXELS

from recon_operator.imageheader import (
    DECODABLE_JPEG,
    ColourType,
    ImageHeaderError,
    JpegHeader,
    PngHeader,
    is_jpeg,
    parse_image_header,
)

__all__ = [
    "TRANSFORMS",
    "Limits",
    "Problem",
    "Transforms",
    "colour_files",
    "format_problems",
    "header_reads",
    "load_transforms",
    "parse_transforms",
    "problem_text",
    "safe_relative_path",
    "validate_capture",
]

# MAX_IMAGE_PIXELS (recon_api.constants): imageheader refuses a side over 16384 as a corrupt
# header; a plausible header can still describe an image the runner would decode at
# gigabyte scale (PIL calls 16384x16384 a decompression bomb and refuses it only then), so
# a capture of larger images is refused here, before any GPU is requested.
# Bounds on the text of one problem in a message: a hostile transforms.json can name a file
# with a path of megabytes, and one such problem must not crowd out the others.
MAX_WHERE_CHARS = 200
MAX_PROBLEM_CHARS = 600
ELLIPSIS = "…"


class Outcome(StrEnum):
    """How checking a capture ended (`capture_check.check`)."""

    VALID = "valid"
    INVALID = "invalid"  # problems in the capture: final for this spec
    REFUSED = "refused"  # the platform does not allow the storage: final for this spec
    UNAVAILABLE = "unavailable"  # storage or its Secret cannot be read now: retried


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    problems: list[str] = field(default_factory=list)
    reason: str = ""
    message: str = ""

    @property
    def final_failure(self) -> bool:
        return self.outcome in (Outcome.INVALID, Outcome.REFUSED)


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int
    max_total_bytes: int


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


def layout_of(transforms: Transforms, expected_views: int) -> CaptureLayout | None:
    """The capture contract's reading of the document, the first `expected_views` frames."""
    if transforms.doc is None:
        return None
    return parse_layout(transforms.doc, expected_views)


def files_to_read(transforms: Transforms, expected_views: int) -> list[str]:
    """The safe paths the first `expected_views` frames name, each once: the only files
    whose first bytes validate_capture needs."""
    layout = layout_of(transforms, expected_views)
    return [] if layout is None else layout.paths()


def colour_files(transforms: Transforms, expected_views: int) -> set[str]:
    """The paths frames name as colour images: the only files worth reading past their
    first bytes, since only colour may be a JPEG (whose size sits after its metadata)."""
    layout = layout_of(transforms, expected_views)
    if layout is None:
        return set()
    return {ref.path for ref in layout.files() if ref.kind == FileKind.COLOUR}


def header_reads(
    transforms: Transforms, listing: Mapping[str, int], expected_views: int
) -> list[str]:
    """files_to_read, narrowed to those the listing shows present."""
    return [path for path in files_to_read(transforms, expected_views) if path in listing]


# What each kind of file must be, as a user would read it.
_EXPECTED = {
    FileKind.COLOUR: "colour must be an 8-bit RGB or RGBA PNG or a baseline or progressive JPEG",
    FileKind.DEPTH: "depth must be a 16-bit grayscale PNG",
    FileKind.MASK: "mask must be an 8-bit grayscale PNG",
    FileKind.CONFIDENCE: "confidence must be an 8-bit grayscale PNG",
}
# Which size each kind must match, for messages.
_SIZE_KEYS = {
    FileKind.COLOUR: "w, h",
    FileKind.MASK: "w, h",
    FileKind.DEPTH: "depth_w, depth_h",
    FileKind.CONFIDENCE: "depth_w, depth_h",
}


def _format_ok(kind: FileKind, header: PngHeader | JpegHeader) -> bool:
    if isinstance(header, JpegHeader):
        return (
            kind == FileKind.COLOUR
            and header.process in DECODABLE_JPEG
            and header.precision == 8
            and header.components == 3
        )
    if kind == FileKind.COLOUR:
        return header.colour_type in (ColourType.RGB, ColourType.RGBA) and header.bit_depth == 8
    if kind == FileKind.DEPTH:
        return header.colour_type == ColourType.GRAYSCALE and header.bit_depth == 16
    return header.colour_type == ColourType.GRAYSCALE and header.bit_depth == 8


def _check_header(ref: FileRef, data: bytes) -> list[Problem]:
    if ref.kind != FileKind.COLOUR and is_jpeg(data):
        # Not read past its first bytes (only colour may be a JPEG): no size to report.
        return [Problem(ref.path, f"{_EXPECTED[ref.kind]}, found a JPEG")]
    try:
        header = parse_image_header(data)
    except ImageHeaderError as e:
        return [Problem(ref.path, str(e))]
    problems = []
    if not _format_ok(ref.kind, header):
        problems.append(Problem(ref.path, f"{_EXPECTED[ref.kind]}, found {header.describe()}"))
    if header.width * header.height > MAX_IMAGE_PIXELS:
        problems.append(
            Problem(
                ref.path,
                f"is {header.width}x{header.height} ({header.width * header.height} pixels), "
                f"more than the {MAX_IMAGE_PIXELS} pixels (4096x4096) allowed per image; "
                "scale the capture down (w, h and the intrinsics with it)",
            )
        )
    if ref.size is not None and (header.width, header.height) != ref.size:
        w, h = ref.size
        problems.append(
            Problem(
                ref.path,
                f"is {header.width}x{header.height} but frame {ref.frame} says {w}x{h} "
                f"({_SIZE_KEYS[ref.kind]})",
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
    headers: relative path -> first bytes of the files `header_reads` named (33 for a
        PNG; a JPEG's up to its SOF segment, `imageheader.bytes_needed`).
    """
    layout = layout_of(transforms, expected_views)
    if layout is None:
        return [transforms.problem or Problem(TRANSFORMS, "could not be read")]
    problems = list(layout.problems)
    present: dict[str, None] = {TRANSFORMS: None} if TRANSFORMS in listing else {}
    for ref in layout.files():
        if ref.path not in listing:
            problems.append(Problem(ref.where, f"{ref.path} not found under the dataset prefix"))
            continue
        present.setdefault(ref.path, None)
        if ref.path in headers:
            problems.extend(_check_header(ref, headers[ref.path]))
    problems.extend(_sizes(present, listing, limits))
    # A file two frames share would otherwise be reported twice for one fault.
    return list(dict.fromkeys(problems))
