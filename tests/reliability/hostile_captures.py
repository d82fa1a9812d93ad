"""Captures built to break capture validation: a valid synthetic capture, broken one way.

Each `Scenario` starts from the same small synthetic capture (DESIGN.md layout, written by
recon_runner.synthetic) and changes one thing. Operator scenarios are refused from
transforms.json and PNG headers; runner scenarios pass the header checks and are only
found when the runner decodes the files.

Run as a script, it measures the peak memory of one capture validation in a fresh
process (see `measure`): `python hostile_captures.py BUCKET BASELINE_PREFIX PREFIX VIEWS`
with MINIO_ENDPOINT, MINIO_ACCESS_KEY and MINIO_SECRET_KEY set.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tests.support.captures import (
    PNG_SIGNATURE,
    array_png,
    files_under,
    jpeg,
    png,
    png_chunk,
    png_ihdr,
)
from tests.support.recording_minio import RecordingMinio
from tests.support.rss import status_kib

Files = dict[str, bytes]
Doc = dict[str, Any]

VIEWS = 6
SIZE = 48


# ------------------------------------------------------------------ PNG bytes


def header_only_png(width: int, height: int, bit_depth: int, colour_type: int) -> bytes:
    """Signature, IHDR and IEND: a header that claims a size, with no pixels behind it."""
    return PNG_SIGNATURE + png_ihdr(width, height, bit_depth, colour_type) + png_chunk(b"IEND", b"")


def bomb_png(width: int, height: int, payload_bytes: int = 8 * 1024**2) -> bytes:
    """A decompression bomb's start: a huge IHDR, then an IDAT of compressed zeros."""
    idat = zlib.compress(b"\0" * payload_bytes, 9)
    return (
        PNG_SIGNATURE
        + png_ihdr(width, height, 8, 6)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


# ------------------------------------------------------------------ the base capture


@cache
def _base(depth_unit: float) -> tuple[tuple[str, bytes], ...]:
    from recon_runner.synthetic.objects import sphere_object
    from recon_runner.synthetic.writer import write_capture

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_capture(
            sphere_object(0.3, [0.1, 0.2, 0.3], 3),
            root,
            views=VIEWS,
            width=SIZE,
            height=SIZE,
            depth_unit=depth_unit,
        )
        return tuple(files_under(root).items())


def base_capture(depth_unit: float = 0.001) -> Files:
    """A valid 6-view 48x48 capture of a sphere: transforms.json, images/, depth/."""
    return dict(_base(depth_unit))


def doc(files: Files) -> Doc:
    loaded: Doc = json.loads(files["transforms.json"])
    return loaded


def with_doc(files: Files, document: Doc | str) -> Files:
    text = document if isinstance(document, str) else json.dumps(document)  # NaN stays NaN
    return {**files, "transforms.json": text.encode()}


def write_local(files: Files, root: Path) -> Path:
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


# ------------------------------------------------------------------ scenarios


@dataclass(frozen=True)
class Scenario:
    name: str
    done: str  # what was done to the capture
    build: Callable[[Files], Files]
    where: str  # the file or field the problem must name
    text: str  # what the message must say
    limits: tuple[int, int] | None = None  # (per file, total) when not the defaults
    extra: Files = field(default_factory=dict)  # uploaded next to the prefix, not in it


def set_frame(files: Files, index: int, key: str, value: Any) -> Files:
    d = doc(files)
    d["frames"][index][key] = value
    return with_doc(files, d)


def set_matrix(files: Files, index: int, row: int, col: int, literal: str) -> Files:
    """Put a raw JSON literal (NaN, Infinity, 1e999) into a matrix entry."""
    d = doc(files)
    d["frames"][index]["transform_matrix"][row][col] = 123456.789
    text = json.dumps(d).replace("123456.789", literal)
    return with_doc(files, text)


def replace(path: str, data: bytes) -> Callable[[Files], Files]:
    return lambda files: {**files, path: data}


def _frames_10000(files: Files) -> Files:
    d = doc(files)
    d["frames"] = [d["frames"][i % VIEWS] for i in range(10000)]
    return with_doc(files, d)


def _huge_number(files: Files) -> Files:
    d = doc(files)
    d["fl_x"] = 777777
    return with_doc(files, json.dumps(d).replace("777777", "9" * 100_000))


def _pad_transforms(files: Files) -> Files:
    return with_doc(files, json.dumps(doc(files)) + " " * 70_000)


def _pad_images(files: Files) -> Files:
    return {k: v + b"\0" * 400_000 if k.startswith("images/") else v for k, v in files.items()}


TF = "transforms.json"
MIB = 1024**2

OPERATOR_SCENARIOS = [
    Scenario(
        "traversal",
        'frames[1].file_path = "../secret.png" (an object that exists beside the prefix)',
        lambda f: set_frame(f, 1, "file_path", "../secret.png"),
        f"{TF}: frames[1].file_path",
        "'../secret.png' leaves the dataset (..)",
        extra={"secret.png": b"\x89PNG not for you"},
    ),
    Scenario(
        "traversal-nested",
        'frames[2].depth_file_path = "depth/../../secret.png"',
        lambda f: set_frame(f, 2, "depth_file_path", "depth/../../secret.png"),
        f"{TF}: frames[2].depth_file_path",
        "leaves the dataset (..)",
        extra={"secret.png": b"\x89PNG not for you"},
    ),
    Scenario(
        "absolute-path",
        'frames[0].file_path = "/etc/passwd"',
        lambda f: set_frame(f, 0, "file_path", "/etc/passwd"),
        f"{TF}: frames[0].file_path",
        "'/etc/passwd' is an absolute path",
    ),
    Scenario(
        "url-http",
        'frames[3].file_path = "http://169.254.169.254/latest/meta-data/"',
        lambda f: set_frame(f, 3, "file_path", "http://169.254.169.254/latest/meta-data/"),
        f"{TF}: frames[3].file_path",
        "is a URL",
    ),
    Scenario(
        "url-s3",
        'frames[4].depth_file_path = "s3://other-bucket/depth.png"',
        lambda f: set_frame(f, 4, "depth_file_path", "s3://other-bucket/depth.png"),
        f"{TF}: frames[4].depth_file_path",
        "is a URL",
    ),
    Scenario(
        "url-file",
        'frames[5].file_path = "file:///etc/shadow"',
        lambda f: set_frame(f, 5, "file_path", "file:///etc/shadow"),
        f"{TF}: frames[5].file_path",
        "is a URL",
    ),
    Scenario(
        "control-characters",
        'frames[0].file_path = "images/view_000.png\\u0000.txt"',
        lambda f: set_frame(f, 0, "file_path", "images/view_000.png\x00.txt"),
        f"{TF}: frames[0].file_path",
        "contains control characters",
    ),
    Scenario(
        "png-100000x100000",
        "images/view_002.png: IHDR claims 100000x100000 RGBA, then 8 MiB of zeros deflated",
        replace("images/view_002.png", bomb_png(100_000, 100_000)),
        "images/view_002.png",
        "claims 100000x100000 pixels, more than the 16384 per side allowed",
    ),
    Scenario(
        "truncated-png",
        "images/view_003.png cut to its first 20 bytes",
        lambda f: {**f, "images/view_003.png": f["images/view_003.png"][:20]},
        "images/view_003.png",
        "truncated: 20 bytes",
    ),
    Scenario(
        "empty-png",
        "depth/view_001.png uploaded empty (0 bytes)",
        replace("depth/view_001.png", b""),
        "depth/view_001.png",
        "not a PNG file (empty)",
    ),
    Scenario(
        "jpeg-as-depth",
        "depth/view_001.png holds a JPEG",
        replace("depth/view_001.png", jpeg(SIZE, SIZE, (200, 10, 10))),
        "depth/view_001.png",
        "depth must be a 16-bit grayscale PNG, found a JPEG",
    ),
    Scenario(
        "html-named-png",
        "depth/view_004.png holds an HTML error page",
        replace("depth/view_004.png", b"<html><body>403 Forbidden</body></html>"),
        "depth/view_004.png",
        "not a PNG or JPEG file (bad signature)",
    ),
    Scenario(
        "colour-1-bit",
        "images/view_000.png is a 1-bit PNG",
        replace("images/view_000.png", png(SIZE, SIZE, bit_depth=1, colour_type=0)),
        "images/view_000.png",
        "colour must be an 8-bit RGB or RGBA PNG or a baseline or progressive JPEG, found "
        "48x48 1-bit grayscale",
    ),
    Scenario(
        "colour-palette",
        "images/view_005.png is a palette PNG",
        replace("images/view_005.png", png(SIZE, SIZE, bit_depth=8, colour_type=3)),
        "images/view_005.png",
        "colour must be an 8-bit RGB or RGBA PNG or a baseline or progressive JPEG, found "
        "48x48 8-bit palette",
    ),
    Scenario(
        "colour-16-bit",
        "images/view_002.png is a 16-bit RGB PNG",
        replace("images/view_002.png", png(SIZE, SIZE, bit_depth=16, colour_type=2)),
        "images/view_002.png",
        "colour must be an 8-bit RGB or RGBA PNG or a baseline or progressive JPEG, found "
        "48x48 16-bit RGB",
    ),
    Scenario(
        "depth-8-bit",
        "depth/view_003.png is an 8-bit grayscale PNG",
        replace("depth/view_003.png", png(SIZE, SIZE, bit_depth=8, colour_type=0)),
        "depth/view_003.png",
        "depth must be a 16-bit grayscale PNG, found 48x48 8-bit grayscale",
    ),
    Scenario(
        "depth-rgb",
        "depth/view_000.png is an 8-bit RGB PNG",
        replace("depth/view_000.png", png(SIZE, SIZE, bit_depth=8, colour_type=2)),
        "depth/view_000.png",
        "depth must be a 16-bit grayscale PNG, found 48x48 8-bit RGB",
    ),
    Scenario(
        "size-mismatch",
        "images/view_004.png is 40x48 while transforms.json says 48x48",
        replace("images/view_004.png", png(40, SIZE, bit_depth=8, colour_type=6)),
        "images/view_004.png",
        "is 40x48 but frame 4 says 48x48 (w, h)",
    ),
    Scenario(
        "matrix-nan",
        "frames[0].transform_matrix[0][3] = NaN (a JSON NaN literal)",
        lambda f: set_matrix(f, 0, 0, 3, "NaN"),
        f"{TF}: frames[0].transform_matrix",
        "must hold only finite numbers",
    ),
    Scenario(
        "matrix-infinity",
        "frames[1].transform_matrix[1][1] = -Infinity (a JSON literal)",
        lambda f: set_matrix(f, 1, 1, 1, "-Infinity"),
        f"{TF}: frames[1].transform_matrix",
        "must hold only finite numbers",
    ),
    Scenario(
        "matrix-overflow",
        "frames[2].transform_matrix[2][3] = 1e999 (parses to infinity)",
        lambda f: set_matrix(f, 2, 2, 3, "1e999"),
        f"{TF}: frames[2].transform_matrix",
        "must hold only finite numbers",
    ),
    Scenario(
        "frames-10000",
        "transforms.json lists 10000 frames (expectedViews 6)",
        _frames_10000,
        f"{TF}: frames",
        "lists 10000 frames but spec.input.expectedViews is 6; only the first 6 were inspected",
    ),
    Scenario(
        "json-nesting",
        "transforms.json is 100000 nested arrays",
        lambda f: with_doc(f, "[" * 100_000 + "]" * 100_000),
        TF,
        "is not valid JSON (too deeply nested or huge number)",
    ),
    Scenario(
        "json-huge-number",
        "fl_x is an integer literal of 100000 digits",
        _huge_number,
        TF,
        "is not valid JSON (too deeply nested or huge number)",
    ),
    Scenario(
        "missing-file",
        "depth/view_005.png not uploaded",
        lambda f: {k: v for k, v in f.items() if k != "depth/view_005.png"},
        f"{TF}: frames[5].depth_file_path",
        "depth/view_005.png not found under the dataset prefix",
    ),
    Scenario(
        "file-over-limit",
        "images/view_001.png padded to 20 MiB + 1 byte (default limit 20 MiB)",
        lambda f: {**f, "images/view_001.png": f["images/view_001.png"].ljust(20 * MIB + 1, b"\0")},
        "images/view_001.png",
        f"is {20 * MIB + 1} bytes, over the per-file limit of {20 * MIB}",
    ),
    Scenario(
        "total-over-limit",
        "6 images padded by 400 kB each, limits 1 MiB per file and 2 MiB in all",
        _pad_images,
        "capture",
        f"over the limit of {2 * MIB}",
        limits=(MIB, 2 * MIB),
    ),
    Scenario(
        "transforms-over-limit",
        "transforms.json padded past a 64 KiB per-file limit",
        _pad_transforms,
        TF,
        f"over the per-file limit of {64 * 1024}",
        limits=(64 * 1024, 2 * MIB),
    ),
]


# ------------------------------------------------------------------ runner scenarios


def _depth(files: Files, name: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(files[name])))


def _rgba(files: Files, name: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(files[name])).convert("RGBA")).copy()


def _zero_depth(files: Files) -> Files:
    return {**files, "depth/view_001.png": array_png(np.zeros((SIZE, SIZE), np.uint16))}


def _empty_mask(files: Files) -> Files:
    pixels = _rgba(files, "images/view_002.png")
    pixels[..., 3] = 0
    return {**files, "images/view_002.png": array_png(pixels, "RGBA")}


def _far_depth(files: Files) -> Files:
    depth = _depth(files, "depth/view_003.png").astype(np.int64)
    factor = min(20, 65535 // int(depth.max()))
    assert factor >= 8, f"the base capture's depth leaves no room to scale ({depth.max()})"
    return {**files, "depth/view_003.png": array_png((depth * factor).astype(np.uint16))}


def _cut_idat(files: Files) -> Files:
    data = files["images/view_004.png"]
    return {**files, "images/view_004.png": data[: max(60, len(data) // 2)]}


def _nan_depth_scale(files: Files) -> Files:
    d = doc(files)
    d["depth_unit_scale_factor"] = float("nan")
    return with_doc(files, d)


def _bomb_capture(files: Files) -> Files:
    """Every image a 16384x16384 header (the most the per-side header check allows; the
    operator refuses it by its pixel count), no pixels."""
    d = doc(files)
    d["w"] = d["h"] = 16384
    d["cx"] = d["cy"] = 8192.0
    out = with_doc(files, d)
    for name in files:
        if name.startswith("images/"):
            out[name] = header_only_png(16384, 16384, 8, 6)
        elif name.startswith("depth/"):
            out[name] = header_only_png(16384, 16384, 16, 0)
    return out


@dataclass(frozen=True)
class RunnerScenario:
    name: str
    done: str
    build: Callable[[Files], Files]
    file: str  # the file InvalidInputError must name
    text: str
    operator_finds: str | None = None  # the operator's message, when it catches it too


RUNNER_SCENARIOS = [
    RunnerScenario(
        "depth-all-zero",
        "depth/view_001.png: every pixel 0 (no surface)",
        _zero_depth,
        "depth/view_001.png",
        "depth map is all zeros",
    ),
    RunnerScenario(
        "mask-empty",
        "images/view_002.png: alpha 0 everywhere (empty object mask)",
        _empty_mask,
        "images/view_002.png",
        "object mask (alpha channel) is empty",
    ),
    RunnerScenario(
        "depth-far-outside",
        "depth/view_003.png: depth values multiplied by 20 (wrong unit)",
        _far_depth,
        "depth/view_003.png",
        "from the scene the other views agree on",
    ),
    RunnerScenario(
        "idat-truncated",
        "images/view_004.png: valid header, pixel data cut in half",
        _cut_idat,
        "images/view_004.png",
        "is not a readable PNG or JPEG image",
    ),
    RunnerScenario(
        "depth-scale-nan",
        "depth_unit_scale_factor = NaN, so every decoded depth would be NaN",
        _nan_depth_scale,
        "transforms.json: depth_unit_scale_factor",
        "must be a positive number, got nan",
        operator_finds="transforms.json: depth_unit_scale_factor: must be a positive number",
    ),
]

BOMB = RunnerScenario(
    "decompression-bomb",
    "all 12 PNGs are 16384x16384 headers (2.7e8 pixels each; PIL calls that a bomb)",
    _bomb_capture,
    "images/view_000.png",
    "",
)


# ------------------------------------------------------------------ peak memory


def _reset_peak() -> bool:
    """Start the peak-RSS mark (VmHWM) again from the current RSS (Linux 4.0+); True only
    when the kernel took the request and the mark really came down to the RSS."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return status_kib("VmHWM") <= status_kib("VmRSS") + 64


def measure(bucket: str, baseline_prefix: str, prefix: str, views: int) -> dict[str, Any]:
    """Peak RSS growth (KiB) of validating `prefix`, after validating `baseline_prefix`
    once in this same process (so imports, connections and threads are already paid).

    getrusage's ru_maxrss is no use here: it carries the parent's peak across exec."""
    import os

    from recon_operator.capture_reader import read_capture
    from recon_operator.settings import Settings
    from recon_operator.validation import Limits

    settings = Settings()
    limits = Limits(settings.max_file_bytes, settings.max_total_bytes)
    client = RecordingMinio.plain(
        os.environ["MINIO_ENDPOINT"], os.environ["MINIO_ACCESS_KEY"], os.environ["MINIO_SECRET_KEY"]
    )
    baseline = read_capture(client, bucket, baseline_prefix, expected_views=views, limits=limits)
    rss_before = status_kib("VmRSS")
    reset = _reset_peak()
    if not reset:
        # A peak mark left at the baseline's high water would make any growth read as ~0.
        raise RuntimeError("could not reset the peak RSS mark through /proc/self/clear_refs")
    client.gets.clear()
    problems = read_capture(client, bucket, prefix, expected_views=views, limits=limits)
    peak_after = status_kib("VmHWM")
    return {
        "baseline_problems": [str(p) for p in baseline],
        "problems": [str(p) for p in problems],
        "rss_before_kib": rss_before,
        "peak_reset": reset,
        "peak_rss_growth_kib": peak_after - rss_before,
        "gets": client.gets,
    }


if __name__ == "__main__":
    bucket_arg, baseline_arg, prefix_arg, views_arg = sys.argv[1:5]
    print(json.dumps(measure(bucket_arg, baseline_arg, prefix_arg, int(views_arg))))
