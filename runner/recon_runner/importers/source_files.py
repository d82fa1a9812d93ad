"""Reading the files a source capture is made of, each failure bad input naming the file.

Importers read text, JSON, images and matrices from folders and zip archives alike; one
place turns every decoding failure into an InvalidInputError (exit code 3) that names the
file and the problem, instead of a traceback.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from recon_runner.errors import InvalidInputError

SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InvalidInputError(str(path), "file not found") from None
    except OSError as e:
        raise InvalidInputError(str(path), f"cannot be read ({e.strerror or e})") from None


def read_text(path: Path) -> str:
    try:
        return read_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(str(path), "is not UTF-8 text") from None


def parse_json(data: bytes, name: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise InvalidInputError(name, f"is not valid JSON ({e})") from None


def read_json_object(path: Path) -> dict[str, Any]:
    doc = parse_json(read_bytes(path), str(path))
    if not isinstance(doc, dict):
        raise InvalidInputError(str(path), "must be a JSON object")
    return doc


def number(doc: dict[str, Any], key: str, name: str) -> float:
    """A finite number from a JSON object, or bad input naming the file and the key."""
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(name, f"{key} must be a number, got {value!r}")
    if not np.isfinite(value):
        raise InvalidInputError(name, f"{key} must be finite, got {value!r}")
    return float(value)


def decode_image(data: bytes, name: str) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise InvalidInputError(name, f"is not a readable image ({e})") from None
    return image


def read_depth_png(path: Path) -> npt.NDArray[np.float64]:
    """A 16-bit grayscale PNG as raw units (float64, for exact scaling)."""
    image = decode_image(read_bytes(path), str(path))
    if image.format != "PNG" or image.mode not in SIXTEEN_BIT_MODES:
        raise InvalidInputError(
            str(path), f"depth must be a 16-bit grayscale PNG, got {image.format} {image.mode}"
        )
    return np.asarray(image).astype(np.float64)


def read_gray8(path: Path) -> npt.NDArray[np.uint8]:
    """An 8-bit single-channel image (a confidence map or a mask)."""
    image = decode_image(read_bytes(path), str(path))
    if image.mode != "L":
        image = image.convert("L")
    return np.asarray(image, dtype=np.uint8)


def read_matrix_text(path: Path, rows: int = 4, cols: int = 4) -> npt.NDArray[np.float64]:
    """A whitespace-separated matrix in a text file (ScanNet poses and intrinsics)."""
    text = read_text(path)
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        raise InvalidInputError(str(path), f"is not a {rows}x{cols} matrix of numbers") from None
    if len(values) != rows * cols:
        raise InvalidInputError(
            str(path), f"holds {len(values)} numbers, not a {rows}x{cols} matrix"
        )
    return np.array(values, dtype=np.float64).reshape(rows, cols)


def numbered_files(folder: Path, suffixes: tuple[str, ...]) -> dict[int, Path]:
    """Files named by a frame number (`12.jpg`, `000012.png`), by that number."""
    found: dict[int, Path] = {}
    if folder.is_dir():
        for path in folder.iterdir():
            if path.suffix.lower() in suffixes and path.stem.isdigit():
                found[int(path.stem)] = path
    return found
