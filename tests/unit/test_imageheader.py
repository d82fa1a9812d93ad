"""PNG header parsing from the first 33 bytes: real encoder output, and hostile bytes."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from recon_operator.imageheader import (
    HEADER_BYTES,
    MAX_SIDE,
    ColourType,
    ImageHeaderError,
    PngHeader,
    build_png_header,
    parse_png_header,
)


def encoded(mode: str, size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("mode", "depth", "colour"),
    [
        ("RGB", 8, ColourType.RGB),
        ("RGBA", 8, ColourType.RGBA),
        ("I;16", 16, ColourType.GRAYSCALE),
        ("L", 8, ColourType.GRAYSCALE),
    ],
)
def test_reads_what_a_real_encoder_wrote(mode: str, depth: int, colour: ColourType) -> None:
    header = parse_png_header(encoded(mode, (64, 48))[:HEADER_BYTES])
    assert header == PngHeader(64, 48, depth, colour)


def test_describes_itself_for_messages() -> None:
    assert parse_png_header(encoded("RGBA", (640, 480))).describe() == "640x480 8-bit RGBA"


def test_not_a_png() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="JPEG")
    with pytest.raises(ImageHeaderError, match="not a PNG"):
        parse_png_header(buf.getvalue()[:HEADER_BYTES])
    with pytest.raises(ImageHeaderError, match="not a PNG"):
        parse_png_header(b"")
    with pytest.raises(ImageHeaderError, match="not a PNG"):
        parse_png_header(b"GIF89a")


@pytest.mark.parametrize("cut", [3, 8, 20, 32])
def test_truncated(cut: int) -> None:
    with pytest.raises(ImageHeaderError, match="truncated"):
        parse_png_header(encoded("RGB", (8, 8))[:cut])


def test_corrupt_ihdr_checksum() -> None:
    data = bytearray(build_png_header(64, 48, 8, 2))
    data[19] ^= 0x01  # flip a bit of the width
    with pytest.raises(ImageHeaderError, match="checksum"):
        parse_png_header(bytes(data))


def test_first_chunk_must_be_ihdr() -> None:
    data = bytearray(build_png_header(64, 48, 8, 2))
    data[12:16] = b"IDAT"
    with pytest.raises(ImageHeaderError, match="IHDR"):
        parse_png_header(bytes(data))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0, 10, 8, 2), "invalid size"),
        ((100000, 100000, 8, 2), "more than"),
        ((MAX_SIDE + 1, 10, 8, 6), "more than"),
        ((10, 10, 8, 5), "colour type"),
        ((10, 10, 4, 2), "bit depth"),
        ((10, 10, 16, 3), "bit depth"),
        ((10, 10, 8, 2, 2), "interlace"),
    ],
)
def test_bad_ihdr_values(args: tuple[int, ...], match: str) -> None:
    with pytest.raises(ImageHeaderError, match=match):
        parse_png_header(build_png_header(*args))


@given(
    st.integers(1, MAX_SIDE),
    st.integers(1, MAX_SIDE),
    st.sampled_from([(8, 2), (16, 2), (8, 6), (16, 0), (8, 0), (8, 4), (4, 3)]),
)
def test_round_trip(width: int, height: int, depth_colour: tuple[int, int]) -> None:
    depth, colour = depth_colour
    header = parse_png_header(build_png_header(width, height, depth, colour))
    assert (header.width, header.height, header.bit_depth, header.colour_type) == (
        width,
        height,
        depth,
        colour,
    )


@given(st.binary(max_size=64))
def test_arbitrary_bytes_parse_or_raise_a_clear_error(data: bytes) -> None:
    try:
        header = parse_png_header(data)
    except ImageHeaderError as e:
        assert str(e)
    else:
        assert 1 <= header.width <= MAX_SIDE and 1 <= header.height <= MAX_SIDE
