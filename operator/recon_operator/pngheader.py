"""Read a PNG's size and pixel format from its first 33 bytes (signature + IHDR chunk).

The operator validates captures before any GPU is requested, and must not download whole
images to do it: a ranged read of `HEADER_BYTES` per file is all this needs.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Signature (8) + IHDR length (4) + type (4) + data (13) + CRC (4).
HEADER_BYTES = 33
# PNG itself allows 2**31 - 1; anything past this is not a camera image but a decompression
# bomb or a corrupt header, and would exhaust the runner's memory.
MAX_SIDE = 16384


class ColourType(IntEnum):
    GRAYSCALE = 0
    RGB = 2
    PALETTE = 3
    GRAYSCALE_ALPHA = 4
    RGBA = 6


# Bit depths the PNG specification allows for each colour type.
_ALLOWED_DEPTHS: dict[ColourType, tuple[int, ...]] = {
    ColourType.GRAYSCALE: (1, 2, 4, 8, 16),
    ColourType.RGB: (8, 16),
    ColourType.PALETTE: (1, 2, 4, 8),
    ColourType.GRAYSCALE_ALPHA: (8, 16),
    ColourType.RGBA: (8, 16),
}

_COLOUR_NAMES = {
    ColourType.GRAYSCALE: "grayscale",
    ColourType.RGB: "RGB",
    ColourType.PALETTE: "palette",
    ColourType.GRAYSCALE_ALPHA: "grayscale+alpha",
    ColourType.RGBA: "RGBA",
}


class PngHeaderError(ValueError):
    """The bytes are not the start of a well-formed PNG; the message says why."""


@dataclass(frozen=True)
class PngHeader:
    width: int
    height: int
    bit_depth: int
    colour_type: ColourType
    interlaced: bool = False

    def describe(self) -> str:
        """As a user would say it: "640x480 8-bit RGBA"."""
        return f"{self.width}x{self.height} {self.bit_depth}-bit {_COLOUR_NAMES[self.colour_type]}"


def parse_png_header(data: bytes) -> PngHeader:
    """Parse the signature and IHDR chunk; raise PngHeaderError for anything else."""
    if not data:
        raise PngHeaderError("not a PNG file (empty)")
    if len(data) < len(PNG_SIGNATURE):
        if PNG_SIGNATURE.startswith(data):
            raise PngHeaderError(f"truncated: {len(data)} bytes, a PNG starts with 33")
        raise PngHeaderError("not a PNG file (bad signature)")
    if data[:8] != PNG_SIGNATURE:
        raise PngHeaderError("not a PNG file (bad signature)")
    if len(data) < HEADER_BYTES:
        raise PngHeaderError(f"truncated: {len(data)} bytes, a PNG header needs {HEADER_BYTES}")
    length, chunk_type = struct.unpack(">I4s", data[8:16])
    if chunk_type != b"IHDR" or length != 13:
        raise PngHeaderError("bad IHDR: the first chunk must be a 13-byte IHDR")
    ihdr = data[16:29]
    (crc,) = struct.unpack(">I", data[29:33])
    if zlib.crc32(data[12:29]) != crc:
        raise PngHeaderError("bad IHDR: checksum mismatch (corrupt file)")
    width, height, bit_depth, colour, compression, filter_method, interlace = struct.unpack(
        ">IIBBBBB", ihdr
    )
    if width == 0 or height == 0 or width >= 2**31 or height >= 2**31:
        raise PngHeaderError(f"bad IHDR: invalid size {width}x{height}")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise PngHeaderError(
            f"claims {width}x{height} pixels, more than the {MAX_SIDE} per side allowed"
        )
    try:
        colour_type = ColourType(colour)
    except ValueError:
        raise PngHeaderError(f"bad IHDR: unknown colour type {colour}") from None
    if bit_depth not in _ALLOWED_DEPTHS[colour_type]:
        raise PngHeaderError(
            f"bad IHDR: bit depth {bit_depth} is not valid for colour type "
            f"{_COLOUR_NAMES[colour_type]}"
        )
    if compression != 0 or filter_method != 0 or interlace not in (0, 1):
        raise PngHeaderError("bad IHDR: unknown compression, filter or interlace method")
    return PngHeader(width, height, bit_depth, colour_type, interlaced=interlace == 1)


def build_png_header(
    width: int, height: int, bit_depth: int, colour_type: int, interlace: int = 0
) -> bytes:
    """The 33 header bytes of a PNG with these properties (for fixtures and tests)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, interlace)
    body = b"IHDR" + ihdr
    return PNG_SIGNATURE + struct.pack(">I", 13) + body + struct.pack(">I", zlib.crc32(body))
