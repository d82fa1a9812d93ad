"""Read an image's size and pixel format from its first bytes: a PNG's signature and IHDR
chunk (33 bytes), or a JPEG's markers up to its SOF (start of frame) segment.

The operator validates captures before any GPU is requested, and must not download whole
images to do it: a ranged read of `HEADER_BYTES` per file settles a PNG. A JPEG puts its
size in the SOF segment, after application segments (EXIF, ICC profiles, thumbnails) of up
to 64 KiB each; `bytes_needed` says how far to read, and the reader reads on until the SOF
is in, at most `MAX_JPEG_HEADER_BYTES`. EXIF orientation is not read: sizes are the stored
ones, as the runner decodes them.
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


JPEG_SIGNATURE = b"\xff\xd8"
# Where the reader gives up looking for a JPEG's SOF: four maximal application segments.
MAX_JPEG_HEADER_BYTES = 4 * 65536 + 1024
# SOF markers and the coding process each names; the runner decodes the first three.
_SOF_PROCESSES = {
    0xC0: "baseline",
    0xC1: "extended sequential",
    0xC2: "progressive",
    0xC3: "lossless",
    0xC5: "differential sequential",
    0xC6: "differential progressive",
    0xC7: "differential lossless",
    0xC9: "arithmetic sequential",
    0xCA: "arithmetic progressive",
    0xCB: "arithmetic lossless",
    0xCD: "differential arithmetic sequential",
    0xCE: "differential arithmetic progressive",
    0xCF: "differential arithmetic lossless",
}
DECODABLE_JPEG = ("baseline", "extended sequential", "progressive")
# Markers that stand alone, without a length: TEM and the restart markers.
_STANDALONE = {0x01, *range(0xD0, 0xD8)}


class ImageHeaderError(ValueError):
    """The bytes are not the start of a well-formed image; the message says why."""


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
    """Parse the signature and IHDR chunk; raise ImageHeaderError for anything else."""
    if not data:
        raise ImageHeaderError("not a PNG file (empty)")
    if len(data) < len(PNG_SIGNATURE):
        if PNG_SIGNATURE.startswith(data):
            raise ImageHeaderError(f"truncated: {len(data)} bytes, a PNG starts with 33")
        raise ImageHeaderError("not a PNG file (bad signature)")
    if data[:8] != PNG_SIGNATURE:
        raise ImageHeaderError("not a PNG file (bad signature)")
    if len(data) < HEADER_BYTES:
        raise ImageHeaderError(f"truncated: {len(data)} bytes, a PNG header needs {HEADER_BYTES}")
    length, chunk_type = struct.unpack(">I4s", data[8:16])
    if chunk_type != b"IHDR" or length != 13:
        raise ImageHeaderError("bad IHDR: the first chunk must be a 13-byte IHDR")
    ihdr = data[16:29]
    (crc,) = struct.unpack(">I", data[29:33])
    if zlib.crc32(data[12:29]) != crc:
        raise ImageHeaderError("bad IHDR: checksum mismatch (corrupt file)")
    width, height, bit_depth, colour, compression, filter_method, interlace = struct.unpack(
        ">IIBBBBB", ihdr
    )
    if width == 0 or height == 0 or width >= 2**31 or height >= 2**31:
        raise ImageHeaderError(f"bad IHDR: invalid size {width}x{height}")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ImageHeaderError(
            f"claims {width}x{height} pixels, more than the {MAX_SIDE} per side allowed"
        )
    try:
        colour_type = ColourType(colour)
    except ValueError:
        raise ImageHeaderError(f"bad IHDR: unknown colour type {colour}") from None
    if bit_depth not in _ALLOWED_DEPTHS[colour_type]:
        raise ImageHeaderError(
            f"bad IHDR: bit depth {bit_depth} is not valid for colour type "
            f"{_COLOUR_NAMES[colour_type]}"
        )
    if compression != 0 or filter_method != 0 or interlace not in (0, 1):
        raise ImageHeaderError("bad IHDR: unknown compression, filter or interlace method")
    return PngHeader(width, height, bit_depth, colour_type, interlaced=interlace == 1)


@dataclass(frozen=True)
class JpegHeader:
    width: int
    height: int
    precision: int  # bits per sample
    components: int  # 1 grayscale, 3 YCbCr (colour), 4 CMYK
    process: str  # "baseline", "progressive", ...

    def describe(self) -> str:
        kind = {1: "grayscale", 3: "colour", 4: "CMYK"}.get(
            self.components, f"{self.components}-component"
        )
        return f"{self.width}x{self.height} {self.process} {self.precision}-bit {kind} JPEG"


ImageHeader = PngHeader | JpegHeader


def is_jpeg(data: bytes) -> bool:
    return data[:2] == JPEG_SIGNATURE


def _jpeg_scan(data: bytes) -> JpegHeader | int:
    """The header, or how many bytes from the start are needed to go on."""
    pos = 2
    while True:
        if len(data) < pos + 2:
            return pos + 4
        if data[pos] != 0xFF:
            raise ImageHeaderError(f"not a well-formed JPEG (no marker at byte {pos})")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):
            raise ImageHeaderError("not a well-formed JPEG (image data before any SOF segment)")
        if len(data) < pos + 4:
            return pos + 4
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2:
            raise ImageHeaderError(f"not a well-formed JPEG (segment length {length})")
        if marker in _SOF_PROCESSES:
            if length < 8:
                raise ImageHeaderError("bad JPEG SOF: segment too short")
            if len(data) < pos + 10:
                return pos + 10
            precision, height, width, components = struct.unpack(">BHHB", data[pos + 4 : pos + 10])
            if width == 0 or height == 0:
                raise ImageHeaderError(
                    f"bad JPEG SOF: size {width}x{height} (a height given later is not supported)"
                )
            if width > MAX_SIDE or height > MAX_SIDE:
                raise ImageHeaderError(
                    f"claims {width}x{height} pixels, more than the {MAX_SIDE} per side allowed"
                )
            return JpegHeader(width, height, precision, components, _SOF_PROCESSES[marker])
        pos += 2 + length


def bytes_needed(data: bytes) -> int | None:
    """How many bytes from the start of the file `parse_image_header` needs to decide, when
    `data` is too short to; None when it can decide now (a header or an error)."""
    if not is_jpeg(data):
        return None
    try:
        result = _jpeg_scan(data)
    except ImageHeaderError:
        return None
    if isinstance(result, int) and result <= MAX_JPEG_HEADER_BYTES:
        return result
    return None


def parse_jpeg_header(data: bytes) -> JpegHeader:
    """Walk the markers to the SOF segment; raise ImageHeaderError for anything else."""
    if not is_jpeg(data):
        raise ImageHeaderError("not a JPEG file (bad signature)")
    result = _jpeg_scan(data)
    if isinstance(result, int):
        if result > MAX_JPEG_HEADER_BYTES:
            raise ImageHeaderError(
                f"no JPEG SOF segment in the first {MAX_JPEG_HEADER_BYTES} bytes "
                "(metadata segments too large)"
            )
        raise ImageHeaderError(f"truncated JPEG: {len(data)} bytes, the SOF segment not reached")
    return result


def parse_image_header(data: bytes) -> ImageHeader:
    """A PNG or a JPEG header, by signature."""
    if is_jpeg(data):
        return parse_jpeg_header(data)
    if not data or data[:8] == PNG_SIGNATURE or PNG_SIGNATURE.startswith(data):
        return parse_png_header(data)
    raise ImageHeaderError("not a PNG or JPEG file (bad signature)")


def build_png_header(
    width: int, height: int, bit_depth: int, colour_type: int, interlace: int = 0
) -> bytes:
    """The 33 header bytes of a PNG with these properties (for fixtures and tests)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, interlace)
    body = b"IHDR" + ihdr
    return PNG_SIGNATURE + struct.pack(">I", 13) + body + struct.pack(">I", zlib.crc32(body))
