"""Capture validation: a good capture passes; each documented fault is reported, naming the
file or field, all faults at once; hostile input costs bounded work."""

from __future__ import annotations

import copy
import io
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from recon_api.constants import MAX_IMAGE_PIXELS
from recon_operator.imageheader import build_png_header
from recon_operator.validation import (
    MAX_PROBLEM_CHARS,
    Limits,
    Problem,
    Transforms,
    format_problems,
    header_reads,
    load_transforms,
    problem_text,
    validate_capture,
)

from tests.unit.layout_document import H, W, capture_document

LIMITS = Limits(max_file_bytes=20 * 1024**2, max_total_bytes=200 * 1024**2)


class Capture:
    """A valid capture in memory; tests break one thing at a time."""

    def __init__(self, views: int = 6) -> None:
        self.views = views
        self.doc: dict[str, Any] = capture_document(views)
        self.listing: dict[str, int] = {}
        self.headers: dict[str, bytes] = {}
        for i in range(views):
            self.put(f"images/view_{i:03d}.png", build_png_header(W, H, 8, 6), 5000)
            self.put(f"depth/view_{i:03d}.png", build_png_header(W, H, 16, 0), 3000)

    def put(self, path: str, header: bytes, size: int) -> None:
        self.listing[path] = size
        self.headers[path] = header

    def transforms(self) -> bytes:
        return json.dumps(self.doc).encode()

    def validate(self, limits: Limits = LIMITS, raw: bytes | None = None) -> list[Problem]:
        data = self.transforms() if raw is None else raw
        listing = {"transforms.json": len(data), **self.listing}
        transforms = load_transforms(data, len(data), limits)
        wanted = header_reads(transforms, listing, self.views)
        headers = {path: self.headers[path] for path in wanted}
        return validate_capture(
            transforms, listing, headers, expected_views=self.views, limits=limits
        )

    def texts(self, **kwargs: Any) -> list[str]:
        return [str(p) for p in self.validate(**kwargs)]


def only(cap: Capture, *needles: str) -> None:
    """Exactly one problem per needle, each mentioning it."""
    texts = cap.texts()
    assert len(texts) == len(needles), texts
    for text, needle in zip(texts, needles, strict=True):
        assert needle in text, (needle, texts)


def test_a_good_capture_has_no_problems() -> None:
    assert Capture().validate() == []


def test_rgb_colour_and_per_frame_intrinsics_are_fine() -> None:
    cap = Capture()
    cap.headers["images/view_000.png"] = build_png_header(W, H, 8, 2)
    for frame in cap.doc["frames"]:
        frame.update(fl_x=40.0, fl_y=41.0, cx=30.0, cy=20.0, w=W, h=H)
    for key in ("fl_x", "fl_y", "cx", "cy", "w", "h", "camera_model"):
        del cap.doc[key]
    assert cap.validate() == []


def test_missing_transforms() -> None:
    cap = Capture()
    transforms = load_transforms(None, 0, LIMITS)
    problems = validate_capture(transforms, cap.listing, {}, expected_views=6, limits=LIMITS)
    assert [str(p) for p in problems] == ["transforms.json: not found under the dataset prefix"]


def test_ten_thousand_frames_is_one_problem_and_bounded_reads() -> None:
    cap = Capture()
    cap.doc["frames"] = cap.doc["frames"] * 2000  # 12000 frames, all valid
    data = cap.transforms()
    listing = {"transforms.json": len(data), **cap.listing}
    transforms = load_transforms(data, len(data), LIMITS)
    assert len(header_reads(transforms, listing, 6)) == 12  # 6 colour + 6 depth, not 24000
    only(cap, "lists 12000 frames but spec.input.expectedViews is 6; only the first 6")


def test_referenced_files_must_exist() -> None:
    cap = Capture()
    del cap.listing["depth/view_002.png"]
    only(cap, "transforms.json: frames[2].depth_file_path: depth/view_002.png not found")


def test_unsafe_paths_are_refused_and_never_read() -> None:
    """The path rules are the contract's (test_capture_layout); here: a refused path is
    reported and never read from storage."""
    cap = Capture()
    cap.doc["frames"][1]["file_path"] = "../other/images/view_000.png"
    only(cap, "transforms.json: frames[1].file_path: ")
    data = cap.transforms()
    transforms = load_transforms(data, len(data), LIMITS)
    reads = header_reads(transforms, {"transforms.json": len(data), **cap.listing}, 6)
    assert len(reads) == 11 and all(".." not in r for r in reads)


def test_dot_segments_are_normalised() -> None:
    cap = Capture()
    cap.doc["frames"][0]["file_path"] = "./images/view_000.png"
    assert cap.validate() == []


def test_png_magic_and_corrupt_headers() -> None:
    cap = Capture()
    cap.headers["images/view_001.png"] = b"GIF89a" + b"\0" * 27
    cap.headers["depth/view_004.png"] = build_png_header(W, H, 16, 0)[:20]
    only(
        cap,
        "images/view_001.png: not a PNG or JPEG file",
        "depth/view_004.png: truncated",
    )


def test_colour_must_be_8_bit_rgb_or_rgba() -> None:
    cap = Capture()
    cap.headers["images/view_000.png"] = build_png_header(W, H, 16, 6)
    cap.headers["images/view_001.png"] = build_png_header(W, H, 8, 0)
    cap.headers["images/view_002.png"] = build_png_header(W, H, 8, 3)
    only(
        cap,
        "images/view_000.png: colour must be an 8-bit RGB or RGBA PNG or a baseline or "
        "progressive JPEG, found 64x48 16-bit RGBA",
        "images/view_001.png: colour must be an 8-bit RGB or RGBA PNG or a baseline or "
        "progressive JPEG, found 64x48 8-bit grayscale",
        "images/view_002.png: colour must be an 8-bit RGB or RGBA PNG or a baseline or "
        "progressive JPEG, found 64x48 8-bit palette",
    )


def test_depth_must_be_16_bit_grayscale() -> None:
    cap = Capture()
    cap.headers["depth/view_003.png"] = build_png_header(W, H, 8, 0)
    only(cap, "depth/view_003.png: depth must be a 16-bit grayscale PNG, found 64x48 8-bit")


def test_images_must_match_w_h() -> None:
    cap = Capture()
    cap.headers["images/view_005.png"] = build_png_header(W * 2, H * 2, 8, 2)
    only(cap, "images/view_005.png: is 128x96 but frame 5 says 64x48")


def jpeg(width: int, height: int, mode: str = "RGB", **save: Any) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (width, height), "gray").save(buf, format="JPEG", **save)
    return buf.getvalue()


def test_jpeg_colour_is_fine_baseline_or_progressive() -> None:
    cap = Capture()
    cap.doc["frames"][0]["file_path"] = "images/view_000.jpg"
    cap.put("images/view_000.jpg", jpeg(W, H), 4000)
    cap.doc["frames"][1]["file_path"] = "images/view_001.jpg"
    cap.put("images/view_001.jpg", jpeg(W, H, progressive=True), 4000)
    assert cap.validate() == []


def test_jpeg_must_be_colour_of_a_decodable_process_and_is_never_depth() -> None:
    cap = Capture()
    cap.doc["frames"][0]["file_path"] = "images/view_000.jpg"
    cap.put("images/view_000.jpg", jpeg(W, H, "L"), 4000)
    cap.doc["frames"][1]["file_path"] = "images/view_001.jpg"
    cap.put("images/view_001.jpg", jpeg(W * 2, H), 4000)
    cap.put("depth/view_002.png", jpeg(W, H), 4000)
    only(
        cap,
        "images/view_000.jpg: colour must be an 8-bit RGB or RGBA PNG or a baseline or "
        "progressive JPEG, found 64x48 baseline 8-bit grayscale JPEG",
        "images/view_001.jpg: is 128x48 but frame 1 says 64x48 (w, h)",
        "depth/view_002.png: depth must be a 16-bit grayscale PNG, found a JPEG",
    )


def test_depth_at_another_resolution_must_match_depth_w_depth_h() -> None:
    cap = Capture()
    cap.doc.update(depth_w=W // 4, depth_h=H // 4)
    for i in range(6):
        cap.put(f"depth/view_{i:03d}.png", build_png_header(W // 4, H // 4, 16, 0), 900)
    assert cap.validate() == []
    cap.put("depth/view_003.png", build_png_header(W, H, 16, 0), 3000)
    only(cap, "depth/view_003.png: is 64x48 but frame 3 says 16x12 (depth_w, depth_h)")


def test_masks_and_confidence_maps() -> None:
    cap = Capture()
    cap.doc.update(depth_w=W // 2, depth_h=H // 2)
    for i in range(6):
        cap.put(f"depth/view_{i:03d}.png", build_png_header(W // 2, H // 2, 16, 0), 900)
        cap.doc["frames"][i]["mask_path"] = f"masks/view_{i:03d}.png"
        cap.put(f"masks/view_{i:03d}.png", build_png_header(W, H, 8, 0), 300)
        cap.doc["frames"][i]["confidence_path"] = f"confidence/view_{i:03d}.png"
        cap.put(f"confidence/view_{i:03d}.png", build_png_header(W // 2, H // 2, 8, 0), 300)
    assert cap.validate() == []
    cap.put("masks/view_001.png", build_png_header(W, H, 8, 6), 300)
    cap.put("confidence/view_002.png", build_png_header(W, H, 8, 0), 300)
    del cap.listing["masks/view_004.png"]
    only(
        cap,
        "masks/view_001.png: mask must be an 8-bit grayscale PNG, found 64x48 8-bit RGBA",
        "confidence/view_002.png: is 64x48 but frame 2 says 32x24 (depth_w, depth_h)",
        "transforms.json: frames[4].mask_path: masks/view_004.png not found",
    )


def test_absurd_header_sizes_are_rejected() -> None:
    cap = Capture()
    cap.headers["images/view_000.png"] = build_png_header(100000, 100000, 8, 2)
    only(cap, "images/view_000.png: claims 100000x100000 pixels")


def test_file_and_total_size_limits() -> None:
    cap = Capture()
    cap.listing["images/view_000.png"] = 2_000_000
    limits = Limits(max_file_bytes=1_000_000, max_total_bytes=1_050_000)
    texts = cap.texts(limits=limits)
    assert texts == [
        "images/view_000.png: is 2000000 bytes, over the per-file limit of 1000000",
        f"capture: totals {2_000_000 + 5 * 5000 + 6 * 3000 + len(cap.transforms())} bytes, "
        "over the limit of 1050000",
    ]


def test_oversized_transforms_is_not_parsed() -> None:
    cap = Capture()
    texts = cap.texts(limits=Limits(max_file_bytes=100, max_total_bytes=1000))
    assert len(texts) == 1 and texts[0].startswith("transforms.json: is ")


def test_every_problem_is_reported_at_once() -> None:
    cap = Capture()
    cap.doc["frames"].pop()
    cap.doc["fl_x"] = -1
    cap.doc["frames"][0]["file_path"] = "../x.png"
    cap.doc["frames"][1]["transform_matrix"] = [[0, 0, 0, 0]] * 3 + [[0, 0, 0, 1]]
    del cap.listing["depth/view_002.png"]
    cap.headers["images/view_003.png"] = build_png_header(W, H, 16, 2)
    cap.headers["depth/view_004.png"] = b"garbage" * 5
    wheres = [p.where for p in cap.validate()]
    assert wheres == [
        "transforms.json: frames",
        "transforms.json: fl_x",
        "transforms.json: frames[0].file_path",
        "transforms.json: frames[1].transform_matrix",
        "transforms.json: frames[2].depth_file_path",
        "images/view_003.png",
        "depth/view_004.png",
    ]


def test_problem_text_is_bounded_for_conditions() -> None:
    problems = [Problem(f"images/view_{i:04d}.png", "not a PNG file") for i in range(1000)]
    text = format_problems(problems, max_chars=500)
    assert len(text) <= 500
    assert text.startswith("images/view_0000.png: not a PNG file; ")
    assert text.endswith("more problems")
    assert format_problems(problems[:2]) == (
        "images/view_0000.png: not a PNG file; images/view_0001.png: not a PNG file"
    )


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(["frames", "w", "h", "fl_x", "file_path", "transform_matrix", "x"]),
                children,
                max_size=4,
            )
        ),
        max_leaves=20,
    )
)
@settings(max_examples=100, deadline=None)
def test_arbitrary_json_yields_problems_not_crashes(doc: Any) -> None:
    cap = Capture(views=2)
    raw = json.dumps(doc, allow_nan=True).encode()
    problems = cap.validate(raw=raw)
    assert all(p.where and p.message for p in problems)
    if not isinstance(doc, dict):
        assert len(problems) == 1


def test_inputs_are_not_mutated() -> None:
    cap = Capture()
    before = copy.deepcopy((cap.doc, cap.listing, cap.headers))
    cap.validate()
    assert (cap.doc, cap.listing, cap.headers) == before


def test_one_huge_problem_is_cut_and_the_others_still_show() -> None:
    """A 100 kB file_path once made a message far over max_chars (and over a condition
    message's 32768 characters), hiding every other problem."""
    cap = Capture()
    cap.doc["frames"][0]["file_path"] = "../" + "a" * 100_000 + ".png"
    cap.doc["fl_x"] = -1
    problems = cap.validate()
    assert [p.where for p in problems] == [
        "transforms.json: fl_x",
        "transforms.json: frames[0].file_path",
    ]
    text = format_problems(problems)
    assert len(text) <= 4000
    assert text.startswith("transforms.json: fl_x: must be a positive number, got -1; ")
    cut = text.split("; ", 1)[1]
    assert len(cut) <= MAX_PROBLEM_CHARS
    assert cut.startswith("transforms.json: frames[0].file_path: '../aaa")
    assert cut.endswith("aaa.png' leaves the dataset (..)")  # the verdict survives the cut
    assert "…" in cut
    assert len(format_problems(problems[1:], max_chars=300)) <= 300


def test_huge_file_names_are_cut_in_the_middle() -> None:
    name = "images/" + "x" * 50_000 + "/view_000.png"
    text = format_problems([Problem(name, "not a PNG file (bad signature)")])
    assert len(text) <= MAX_PROBLEM_CHARS
    assert text.startswith("images/xxx") and "…" in text
    assert text.endswith("/view_000.png: not a PNG file (bad signature)")


@given(
    st.lists(
        st.builds(
            Problem,
            st.text(min_size=1, max_size=300)
            | st.text(min_size=1, max_size=2).map(lambda s: s * 30_000),
            st.text(min_size=1, max_size=2000),
        ),
        max_size=60,
    ),
    st.integers(200, 40_000),
)
@settings(max_examples=200, deadline=None)
def test_message_is_bounded_and_keeps_every_problem_that_fits(
    problems: list[Problem], max_chars: int
) -> None:
    text = format_problems(problems, max_chars=max_chars)
    assert len(text) <= max_chars
    lines = [problem_text(p) for p in problems]
    assert all(len(line) <= MAX_PROBLEM_CHARS for line in lines)
    if not problems:
        assert text == ""
        return
    assert text.startswith(lines[0][:60])  # the first problem always shows
    if len("; ".join(lines)) <= max_chars:
        assert text == "; ".join(lines)
        return
    if len(lines) == 1:
        assert len(text) == max_chars  # cut to fit, ellipsis in the middle
        return

    # Otherwise: the longest run of whole problems that leaves room for the count of the
    # rest, then that count (or the first problem, cut, when not even it fits whole).
    def tail(rest: int) -> str:
        return f"; ... and {rest} more problem{'s' if rest != 1 else ''}"

    fits = [
        n
        for n in range(1, len(lines))
        if len("; ".join(lines[:n])) + len(tail(len(lines) - n)) <= max_chars
    ]
    if fits:
        shown = max(fits)
        assert text == "; ".join(lines[:shown]) + tail(len(lines) - shown)
        return
    # Not even the first fits whole: it is cut to leave room, and every later problem is
    # either shown whole after it or counted at the end, none lost.
    counted = re.search(r"; \.\.\. and (\d+) more problems?$", text)
    hidden = int(counted.group(1)) if counted else 0
    body = text[: counted.start()] if counted else text
    later = lines[1 : len(lines) - hidden]
    assert 1 + len(later) + hidden == len(lines)
    if later:
        assert body.endswith("; " + "; ".join(later))


@pytest.mark.parametrize(
    ("side", "refused"), [(4096, False), (4097, True), (10000, True), (16384, True)]
)
def test_images_over_the_pixel_limit_are_refused(side: int, refused: bool) -> None:
    """16384x16384 passes the header's per-side check but PIL refuses it as a decompression
    bomb in the runner; 10000x10000 would be decoded at gigabyte scale. Both are refused
    before admission, each file named."""
    cap = Capture()
    cap.doc.update(w=side, h=side, cx=side / 2, cy=side / 2)
    for i in range(6):
        cap.put(f"images/view_{i:03d}.png", build_png_header(side, side, 8, 6), 5000)
        cap.put(f"depth/view_{i:03d}.png", build_png_header(side, side, 16, 0), 3000)
    texts = cap.texts()
    if not refused:
        assert side * side <= MAX_IMAGE_PIXELS and texts == []
        return
    assert len(texts) == 12
    assert texts[0] == (
        f"images/view_000.png: is {side}x{side} ({side * side} pixels), more than the "
        f"{MAX_IMAGE_PIXELS} pixels (4096x4096) allowed per image; scale the capture down "
        "(w, h and the intrinsics with it)"
    )
    assert {t.split(":")[0] for t in texts} == {
        f"{kind}/view_{i:03d}.png" for kind in ("images", "depth") for i in range(6)
    }


def test_a_wide_image_counts_pixels_not_sides() -> None:
    cap = Capture()
    cap.doc.update(w=16384, h=1025, cx=8192.0, cy=512.0)
    for i in range(6):
        cap.put(f"images/view_{i:03d}.png", build_png_header(16384, 1025, 8, 2), 5000)
        cap.put(f"depth/view_{i:03d}.png", build_png_header(16384, 1024, 16, 0), 3000)
    texts = cap.texts()
    # Colour images are over the limit; depth maps of exactly 16 Mpx only differ in size.
    assert any(t.startswith("images/view_000.png: is 16384x1025 (16793600 pixels)") for t in texts)
    assert not any("depth/view_000.png: is 16384x1024 (" in t for t in texts)


def test_validation_works_from_the_parsed_document_alone() -> None:
    """transforms.json is parsed once (load_transforms); the checks take the document."""
    cap = Capture()
    listing = {"transforms.json": 1234, **cap.listing}
    transforms = Transforms(copy.deepcopy(cap.doc))
    wanted = header_reads(transforms, listing, 6)
    assert len(wanted) == 12
    headers = {path: cap.headers[path] for path in wanted}
    assert validate_capture(transforms, listing, headers, expected_views=6, limits=LIMITS) == []
    too_big = load_transforms(b"{}", LIMITS.max_file_bytes + 1, LIMITS)
    assert too_big.doc is None and too_big.problem is not None
    assert header_reads(too_big, listing, 6) == []
    assert [
        str(p) for p in validate_capture(too_big, listing, {}, expected_views=6, limits=LIMITS)
    ] == [
        f"transforms.json: is {LIMITS.max_file_bytes + 1} bytes, over the per-file limit of "
        f"{LIMITS.max_file_bytes}"
    ]
