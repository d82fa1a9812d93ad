"""Image headers: a PNG's from its first 33 bytes, a JPEG's SOF segment from as many bytes
as its metadata takes; real encoder output, and hostile bytes."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from recon_operator.imageheader import (
    HEADER_BYTES,
    MAX_JPEG_HEADER_BYTES,
    MAX_SIDE,
    ColourType,
    ImageHeaderError,
    JpegHeader,
    PngHeader,
    build_png_header,
    bytes_needed,
    parse_image_header,
    parse_jpeg_header,
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


def jpeg(mode: str, size: tuple[int, int], **save: object) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, "gray" if mode != "CMYK" else (0, 0, 0, 0)).save(
        buf, format="JPEG", **save
    )
    return buf.getvalue()


def read_like_the_operator(data: bytes) -> tuple[bytes, int]:
    """The first HEADER_BYTES, then on as bytes_needed asks, with capture_reader's slack of
    1 KiB per ranged read: the prefix read and the number of reads it took."""
    got, reads = data[:HEADER_BYTES], 1
    while (needed := bytes_needed(got)) is not None and len(got) < len(data):
        got += data[len(got) : needed + 1024]
        reads += 1
    return got, reads


@pytest.mark.parametrize(
    ("mode", "save", "process", "components"),
    [
        ("RGB", {}, "baseline", 3),
        ("RGB", {"progressive": True}, "progressive", 3),
        ("RGB", {"icc_profile": b"\0" * 150_000}, "baseline", 3),  # three APP2 segments
        ("L", {}, "baseline", 1),
        ("CMYK", {}, "baseline", 4),
    ],
)
def test_jpeg_sof_from_what_a_real_encoder_wrote(
    mode: str, save: dict[str, object], process: str, components: int
) -> None:
    data = jpeg(mode, (640, 480), **save)
    prefix, reads = read_like_the_operator(data)
    header = parse_image_header(prefix)
    assert header == JpegHeader(640, 480, 8, components, process)
    # The size comes from the SOF segment, never the whole file: a few ranged reads, and
    # only the bytes before the SOF.
    assert len(prefix) < len(data) and reads <= 6
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (header.width, header.height)


def test_jpeg_exif_orientation_is_not_applied() -> None:
    """A phone's portrait photo stored landscape with orientation 6: the stored size."""
    exif = Image.Exif()
    exif[0x0112] = 6
    data = jpeg("RGB", (64, 48), exif=exif.tobytes())
    assert parse_image_header(read_like_the_operator(data)[0]).describe() == (
        "64x48 baseline 8-bit colour JPEG"
    )


def test_jpeg_truncated_and_without_sof() -> None:
    data = jpeg("RGB", (64, 48))
    with pytest.raises(ImageHeaderError, match="truncated JPEG"):
        parse_jpeg_header(data[:20])
    app = b"\xff\xe1\xff\xff" + b"\0" * 65533  # maximal application segments
    huge = b"\xff\xd8" + app * 5 + data[2:]
    prefix, _ = read_like_the_operator(huge)
    assert bytes_needed(prefix) is None and len(prefix) <= MAX_JPEG_HEADER_BYTES + 1024
    with pytest.raises(ImageHeaderError, match="no JPEG SOF segment in the first"):
        parse_image_header(prefix)
    with pytest.raises(ImageHeaderError, match="before any SOF"):
        parse_jpeg_header(b"\xff\xd8\xff\xda\x00\x08" + b"\0" * 10)
    with pytest.raises(ImageHeaderError, match="not a PNG or JPEG"):
        parse_image_header(b"GIF89a" + b"\0" * 30)


@pytest.mark.parametrize(
    ("sof", "size", "match"),
    [
        (b"\xff\xc0\x00\x11\x08\x00\x00\x00\x40\x03", None, "size 64x0"),
        (b"\xff\xc0\x00\x11\x08\xff\xff\xff\xff\x03", None, "more than"),
        (b"\xff\xc0\x00\x04", None, "segment too short"),
    ],
)
def test_bad_sof_values(sof: bytes, size: object, match: str) -> None:
    with pytest.raises(ImageHeaderError, match=match):
        parse_jpeg_header(b"\xff\xd8" + sof + b"\0" * 16)


def test_other_coding_processes_are_named() -> None:
    sof3 = b"\xff\xd8\xff\xc3\x00\x11\x08\x00\x30\x00\x40\x03" + b"\0" * 16
    assert parse_jpeg_header(sof3).process == "lossless"


@given(st.binary(max_size=96))
def test_arbitrary_jpeg_bytes_parse_or_raise_a_clear_error(tail: bytes) -> None:
    data = b"\xff\xd8" + tail
    needed = bytes_needed(data)
    assert needed is None or len(data) < needed <= MAX_JPEG_HEADER_BYTES
    try:
        header = parse_image_header(data)
    except ImageHeaderError as e:
        assert str(e)
    else:
        assert 1 <= header.width <= MAX_SIDE and 1 <= header.height <= MAX_SIDE
