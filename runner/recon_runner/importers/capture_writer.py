"""Writing imported frames as a capture in the DESIGN.md input layout, all or nothing.

Every importer turns its source into `Frame`s in the layout's conventions (OpenGL
camera-to-world, corner-origin pixels, depth in metres) and hands them here, so the layout
is written in one place: colour PNG or JPEG copied byte for byte (re-encoded as PNG only
when it is neither), 16-bit depth in `depth_unit_scale_factor` metres at the depth map's
own resolution (`depth_w`/`depth_h` and depth intrinsics when they differ from colour),
8-bit confidence and masks, and transforms.json with the first frame's values at the top
level and per-frame overrides where a frame differs.

Frames are decoded and written one at a time (a phone capture has hundreds), into a
hidden folder beside the output that is renamed into place only when every frame is
written, so a failed or interrupted import never leaves a half-written capture.

synthetic/writer.py writes rendered RGBA views at one resolution; this writer is the
general form of it for what real captures store.
"""

from __future__ import annotations

import io
import json
import math
import os
import secrets
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError
from recon_api.constants import MAX_IMAGE_PIXELS

from recon_runner.errors import InvalidInputError

TRANSFORMS = "transforms.json"
MAX_DEPTH_UNITS = 65535
# Confidence levels the layout accepts: ARKit's 0/1/2 (low/medium/high) or 0/127/255.
CONFIDENCE_LEVELS = (frozenset({0, 1, 2}), frozenset({0, 127, 255}))
# Colour stored as is when it is already one of these (format, PIL mode) pairs.
COLOUR_AS_IS = {("PNG", "RGB"): ".png", ("PNG", "RGBA"): ".png", ("JPEG", "RGB"): ".jpg"}


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in the layout's pixel convention (corner origin) and the image
    size they belong to."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def check(self, where: str) -> None:
        values = (self.fx, self.fy, self.cx, self.cy)
        if not all(math.isfinite(v) for v in values) or self.fx <= 0 or self.fy <= 0:
            raise InvalidInputError(where, f"intrinsics {values} are not positive and finite")
        if self.width <= 0 or self.height <= 0:
            raise InvalidInputError(where, f"image size {self.width}x{self.height} is empty")


@dataclass(frozen=True)
class Frame:
    """One view, already in the layout's conventions. `*_source` names the file each part
    came from, for errors; `depth_intrinsics` is None when the depth map is the colour
    camera at another resolution (intrinsics scaled by the size ratio)."""

    colour: bytes
    colour_source: str
    intrinsics: Intrinsics
    c2w: npt.NDArray[np.float64]
    depth: npt.NDArray[np.float64]  # [dh, dw] z-depth in metres; 0 or non-finite = none
    depth_source: str
    depth_intrinsics: Intrinsics | None = None
    confidence: npt.NDArray[np.uint8] | None = None
    confidence_source: str = ""
    mask: npt.NDArray[np.bool_] | None = None
    mask_source: str = ""


FrameLoader = Callable[[], Frame]


@dataclass(frozen=True)
class Source:
    """What an importer found: one loader per frame (decoded only when written), the
    depth unit the capture is written in, and notes for the user (frames skipped, and
    why)."""

    loaders: Sequence[FrameLoader]
    depth_unit: float
    origin: str  # the source's name, for the error when it holds no frame
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WriteResult:
    out: Path
    frames: int


Progress = Callable[[int, int], None]


def write_capture(
    source: Source,
    out: Path,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> WriteResult:
    """Write every frame of `source` as a capture at `out`, atomically.

    Raises InvalidInputError naming the source file for anything that cannot be read or
    does not fit the layout, and FileExistsError when `out` holds something and
    `overwrite` is false; in both cases `out` is as it was."""
    if not source.loaders:
        raise InvalidInputError(source.origin, "holds no frame to import")
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} already exists and is not empty (use --force)")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = _hidden_sibling(out, "partial")
    staging.mkdir()
    try:
        _write_all(source, staging, progress)
        _move_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return WriteResult(out=out, frames=len(source.loaders))


def _hidden_sibling(out: Path, kind: str) -> Path:
    """A fresh hidden name beside `out`: on the same file system, so renames are atomic.
    Made with mkdir rather than mkdtemp so the capture gets the user's usual permissions
    (mkdtemp's 0700 would hide it from a runner container of another user)."""
    return out.parent / f".{out.name}.{secrets.token_hex(6)}.{kind}"


def _move_into_place(staging: Path, out: Path) -> None:
    """Rename the finished capture to `out`; an old `out` is moved aside first and removed
    only after the new one is in place."""
    if not out.exists():
        os.rename(staging, out)
        return
    old = _hidden_sibling(out, "old")
    os.rename(out, old)
    try:
        os.rename(staging, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _write_all(source: Source, root: Path, progress: Progress | None) -> None:
    for folder in ("images", "depth"):
        (root / folder).mkdir()
    total = len(source.loaders)
    entries: list[dict[str, object]] = []
    colour_size: tuple[int, int] | None = None
    for index, load in enumerate(source.loaders):
        frame = load()
        entry = _write_frame(frame, index, root, source.depth_unit)
        size = (frame.intrinsics.width, frame.intrinsics.height)
        if colour_size is None:
            colour_size = size
        elif size != colour_size:
            raise InvalidInputError(
                frame.colour_source,
                f"is {size[0]}x{size[1]} but the first frame's colour is "
                f"{colour_size[0]}x{colour_size[1]}; all colour images must be one size",
            )
        entries.append(entry)
        if progress is not None:
            progress(index + 1, total)
    (root / TRANSFORMS).write_text(
        json.dumps(_transforms(entries, source.depth_unit), indent=2) + "\n", encoding="utf-8"
    )


def _write_frame(frame: Frame, index: int, root: Path, depth_unit: float) -> dict[str, object]:
    name = f"frame_{index:05d}"
    frame.intrinsics.check(frame.colour_source)
    colour_bytes, suffix = _colour(frame)
    image_path = f"images/{name}{suffix}"
    (root / image_path).write_bytes(colour_bytes)

    depth_path = f"depth/{name}.png"
    units = _depth_units(frame.depth, depth_unit, frame.depth_source)
    Image.fromarray(units).save(root / depth_path)
    depth_h, depth_w = units.shape
    entry: dict[str, object] = {
        "file_path": image_path,
        "depth_file_path": depth_path,
        "transform_matrix": np.asarray(frame.c2w, dtype=np.float64).tolist(),
        **_intrinsic_keys(frame.intrinsics, ""),
        "depth_w": depth_w,
        "depth_h": depth_h,
    }
    if frame.depth_intrinsics is not None:
        depth_k = frame.depth_intrinsics
        if (depth_k.width, depth_k.height) != (depth_w, depth_h):
            raise InvalidInputError(
                frame.depth_source,
                f"is {depth_w}x{depth_h} but its intrinsics are for "
                f"{depth_k.width}x{depth_k.height}",
            )
        depth_k.check(frame.depth_source)
        entry.update(_intrinsic_keys(depth_k, "depth_"))

    if frame.confidence is not None:
        confidence_path = f"confidence/{name}.png"
        _write_confidence(frame, (depth_w, depth_h), root / confidence_path)
        entry["confidence_path"] = confidence_path
    if frame.mask is not None:
        mask_path = f"masks/{name}.png"
        _write_mask(frame, root / mask_path)
        entry["mask_path"] = mask_path
    return entry


def _intrinsic_keys(k: Intrinsics, prefix: str) -> dict[str, object]:
    keys: dict[str, object] = {
        f"{prefix}fl_x": k.fx,
        f"{prefix}fl_y": k.fy,
        f"{prefix}cx": k.cx,
        f"{prefix}cy": k.cy,
    }
    if not prefix:
        keys.update(w=k.width, h=k.height)
    return keys


# Keys the first frame states at the top level; a later frame repeats one only to differ.
SHARED_KEYS = (
    "w",
    "h",
    "fl_x",
    "fl_y",
    "cx",
    "cy",
    "depth_w",
    "depth_h",
    "depth_fl_x",
    "depth_fl_y",
    "depth_cx",
    "depth_cy",
)


def _transforms(entries: list[dict[str, object]], depth_unit: float) -> dict[str, object]:
    first = entries[0]
    top: dict[str, object] = {"camera_model": "PINHOLE"}
    top.update({key: first[key] for key in SHARED_KEYS if key in first})
    top["depth_unit_scale_factor"] = depth_unit
    frames = []
    for entry in entries:
        frame = {k: v for k, v in entry.items() if k not in SHARED_KEYS or top.get(k) != v}
        frames.append(frame)
    top["frames"] = frames
    return top


def _colour(frame: Frame) -> tuple[bytes, str]:
    """The colour file's bytes and suffix: as stored when the layout takes it, else an
    8-bit RGB(A) PNG. EXIF orientation is ignored, as the layout says."""
    name = frame.colour_source
    try:
        image = Image.open(io.BytesIO(frame.colour))
        size = image.size
        kind = (image.format or "", image.mode)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise InvalidInputError(name, f"is not a readable PNG or JPEG image ({e})") from None
    if size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise InvalidInputError(
            name, f"is {size[0]}x{size[1]}, more than the {MAX_IMAGE_PIXELS} pixels allowed"
        )
    expected = (frame.intrinsics.width, frame.intrinsics.height)
    if size != expected:
        raise InvalidInputError(
            name, f"is {size[0]}x{size[1]} but its camera says {expected[0]}x{expected[1]}"
        )
    suffix = COLOUR_AS_IS.get(kind)
    if suffix is not None:
        return frame.colour, suffix
    try:
        image.load()
        converted = image.convert("RGBA" if "A" in image.mode else "RGB")
    except (OSError, SyntaxError, ValueError) as e:
        raise InvalidInputError(name, f"cannot be decoded ({e})") from None
    buffer = io.BytesIO()
    converted.save(buffer, format="PNG")
    return buffer.getvalue(), ".png"


def _depth_units(
    depth: npt.NDArray[np.float64], unit: float, source: str
) -> npt.NDArray[np.uint16]:
    if depth.ndim != 2 or depth.size == 0:
        raise InvalidInputError(source, f"depth map has shape {depth.shape}, not H x W")
    metres = np.where(np.isfinite(depth) & (depth > 0), depth, 0.0)
    units = np.round(metres / unit)
    deepest = float(metres.max())
    if units.max() > MAX_DEPTH_UNITS:
        raise InvalidInputError(
            source,
            f"depth reaches {deepest:.3f} m, beyond the {MAX_DEPTH_UNITS * unit:.3f} m that "
            f"16 bits hold at {unit} m per unit",
        )
    if not np.any(units > 0):
        raise InvalidInputError(source, "depth map has no valid measurement")
    return units.astype(np.uint16)


def _write_confidence(frame: Frame, depth_size: tuple[int, int], path: Path) -> None:
    confidence = np.asarray(frame.confidence)
    source = frame.confidence_source
    if confidence.shape != (depth_size[1], depth_size[0]):
        raise InvalidInputError(
            source,
            f"confidence map is {confidence.shape[1] if confidence.ndim > 1 else '?'}x"
            f"{confidence.shape[0]} but its depth map is {depth_size[0]}x{depth_size[1]}",
        )
    levels = {int(v) for v in np.unique(confidence)}
    if not any(levels <= allowed for allowed in CONFIDENCE_LEVELS):
        raise InvalidInputError(
            source,
            f"confidence holds levels {sorted(levels)[:8]}; expected 0/1/2 or 0/127/255",
        )
    path.parent.mkdir(exist_ok=True)
    Image.fromarray(confidence.astype(np.uint8), mode="L").save(path)


def _write_mask(frame: Frame, path: Path) -> None:
    mask = np.asarray(frame.mask, dtype=bool)
    size = (frame.intrinsics.width, frame.intrinsics.height)
    if mask.shape != (size[1], size[0]):
        raise InvalidInputError(
            frame.mask_source,
            f"mask has shape {mask.shape} but the colour image is {size[0]}x{size[1]}",
        )
    path.parent.mkdir(exist_ok=True)
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L").save(path)
