"""The capture contract (recon_api.capture_layout): one parser, every rule of the document
tested once here. The operator's header checks, the runner's loader and its storage
transfer read transforms.json through it; their own tests cover only what they add."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from recon_api.capture_layout import (
    ROTATION_TOLERANCE,
    FileKind,
    Intrinsics,
    load_layout,
    parse_layout,
    safe_relative_path,
)

from tests.unit.layout_document import H, W, capture_document


def problems(doc: dict[str, Any], expected_views: int | None = 6) -> list[str]:
    raw = json.dumps(doc, allow_nan=True).encode()
    return [str(p) for p in load_layout(raw, expected_views).problems]


def only(doc: dict[str, Any], *needles: str, expected_views: int | None = 6) -> None:
    """Exactly one problem per needle, each mentioning it."""
    texts = problems(doc, expected_views)
    assert len(texts) == len(needles), texts
    for text, needle in zip(texts, needles, strict=True):
        assert needle in text, (needle, texts)


def test_a_sound_document_parses_into_frames() -> None:
    layout = parse_layout(capture_document(), 6)
    assert layout.ok and layout.frame_count == 6 and layout.depth_unit == 0.001
    frame = layout.frames[2]
    assert frame.colour == Intrinsics(50.0, 50.0, 32.0, 24.0, W, H)
    assert frame.depth == frame.colour  # depth at the colour resolution by default
    assert frame.transform_matrix is not None and frame.transform_matrix[3] == (0, 0, 0, 1)
    assert [(r.path, r.kind, r.size) for r in frame.files] == [
        ("images/view_002.png", FileKind.COLOUR, (W, H)),
        ("depth/view_002.png", FileKind.DEPTH, (W, H)),
    ]


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "must be a JSON object"),
        (b"[" * 100000 + b"]" * 100000, "not valid JSON"),
        (b'{"frames": 1' + b"0" * 5000 + b"}", "not valid JSON"),
    ],
)
def test_unreadable_documents(raw: bytes, needle: str) -> None:
    (problem,) = load_layout(raw, 6).problems
    assert problem.where == "transforms.json" and needle in problem.message


def test_frame_count_must_equal_expected_views_and_bounds_the_work() -> None:
    doc = capture_document()
    doc["frames"].pop()
    only(doc, "transforms.json: frames: lists 5 frames but spec.input.expectedViews is 6")
    doc = capture_document()
    doc["frames"] = doc["frames"] * 2000  # 12000 frames, all valid
    layout = parse_layout(doc, 6)
    assert len(layout.frames) == 6 and len(layout.paths()) == 12
    assert [str(p) for p in layout.problems] == [
        "transforms.json: frames: lists 12000 frames but spec.input.expectedViews is 6; "
        "only the first 6 were inspected"
    ]


def test_without_expected_views_every_frame_counts_and_none_is_a_problem() -> None:
    assert len(parse_layout(capture_document(9)).frames) == 9
    only({**capture_document(), "frames": []}, "frames: is empty", expected_views=None)
    only({**capture_document(), "frames": "all"}, "frames: must be a list", expected_views=None)


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("../other/images/view_000.png", "leaves the dataset"),
        ("images/../../secret.png", "leaves the dataset"),
        ("/etc/passwd", "absolute path"),
        ("\\\\server\\share\\a.png", "absolute path"),
        ("http://evil.example/view.png", "URL"),
        ("s3://bucket/view.png", "URL"),
        ("file:view.png", "URL"),
        ("images\\view_000.png", "backslashes"),
        ("images/\x00.png", "control characters"),
        ("./", "names no file"),
        ("", "non-empty string"),
        (17, "non-empty string"),
    ],
)
def test_path_rules(path: object, needle: str) -> None:
    _, why = safe_relative_path(path)
    assert why is not None and needle in why
    doc = capture_document()
    doc["frames"][1]["mask_path"] = path
    only(doc, "transforms.json: frames[1].mask_path: ")
    assert needle in problems(doc)[0]
    assert all(".." not in p and "://" not in p for p in parse_layout(doc, 6).paths())


def test_dot_segments_are_normalised() -> None:
    assert safe_relative_path("./images//view_000.png") == ("images/view_000.png", None)


def test_colour_and_depth_paths_are_required_mask_and_confidence_optional() -> None:
    doc = capture_document()
    del doc["frames"][0]["file_path"]
    del doc["frames"][3]["depth_file_path"]
    doc["frames"][4].update(mask_path="masks/4.png", confidence_path=None)
    only(
        doc,
        "transforms.json: frames[0].file_path: is missing",
        "transforms.json: frames[3].depth_file_path: is missing",
    )
    frame = parse_layout(doc, 6).frames[4]
    assert (frame.mask_path, frame.confidence_path) == ("masks/4.png", None)


@pytest.mark.parametrize(
    ("matrix", "needle"),
    [
        ([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], "4x4"),
        ("identity", "4x4"),
        ([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0]], "4x4"),
        ([[1, 0, 0, float("nan")], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], "finite"),
        ([[1, 0, 0, float("inf")], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], "finite"),
        ([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, "x", 1]], "finite"),
        ([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, True, 1]], "finite"),
        ([[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]], "orthonormal"),
        ([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, -1, 0], [0, 0, 0, 1]], "orthonormal"),
        ([[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], "orthonormal"),
        ([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]], "last row"),
    ],
)
def test_bad_matrices(matrix: object, needle: str) -> None:
    doc = capture_document()
    doc["frames"][4]["transform_matrix"] = matrix
    only(doc, "transforms.json: frames[4].transform_matrix: ")
    assert needle in problems(doc)[0]


def test_one_tolerance_for_rotation_determinant_and_last_row() -> None:
    """Float32 round trips pass; an error just past the tolerance does not, whichever part
    of the matrix carries it."""
    inside, outside = ROTATION_TOLERANCE * 0.4, ROTATION_TOLERANCE * 2.0
    for error, accepted in ((inside, True), (outside, False)):
        scaled = [[1 + error, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
        last_row = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [error, 0, 0, 1]]
        for matrix in (scaled, last_row):
            doc = capture_document(1)
            doc["frames"][0]["transform_matrix"] = matrix
            assert (problems(doc, 1) == []) is accepted, (error, matrix)
    doc = capture_document(1)
    doc["frames"][0]["transform_matrix"][3] = [inside, 0, 0, 1]
    pose = parse_layout(doc, 1).frames[0].transform_matrix
    assert pose is not None and pose[3] == (0.0, 0.0, 0.0, 1.0)  # handed on exact


@given(
    st.floats(-math.pi, math.pi),
    st.floats(-math.pi, math.pi),
    st.floats(-math.pi, math.pi),
    st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=3),
)
@settings(max_examples=50, deadline=None)
def test_any_rigid_camera_pose_is_accepted(
    yaw: float, pitch: float, roll: float, t: list[float]
) -> None:
    def mul(a: list[list[float]], b: list[list[float]]) -> list[list[float]]:
        return [[sum(a[i][k] * b[k][j] for k in range(3)) for j in range(3)] for i in range(3)]

    cz, sz, cy, sy, cx, sx = (
        math.cos(yaw),
        math.sin(yaw),
        math.cos(pitch),
        math.sin(pitch),
        math.cos(roll),
        math.sin(roll),
    )
    r = mul(
        mul([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]], [[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]]),
        [[1, 0, 0], [0, cx, -sx], [0, sx, cx]],
    )
    doc = capture_document(1)
    rows = [[*r[0], t[0]], [*r[1], t[1]], [*r[2], t[2]], [0, 0, 0, 1]]
    doc["frames"][0]["transform_matrix"] = rows
    assert problems(doc, 1) == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("fl_x", 0),
        ("fl_y", -5.0),
        ("cx", "32"),
        ("cy", None),
        ("w", 64.5),
        ("depth_w", 16.5),
        ("depth_h", 0),
        ("depth_fl_x", -1),
        ("depth_cy", True),
    ],
)
def test_intrinsics_must_be_positive_numbers(key: str, value: object) -> None:
    doc = capture_document()
    doc[key] = value
    texts = problems(doc)
    assert texts and texts[0].startswith(f"transforms.json: {key}: must be")
    doc = capture_document()
    doc["frames"][2][key] = value
    assert problems(doc)[0].startswith(f"transforms.json: frames[2].{key}: must be")


def test_per_frame_intrinsics_override_and_missing_ones_are_named_per_frame() -> None:
    doc = capture_document(2)
    doc["frames"][1].update(fl_x=40.0, cx=30.0)
    colour = parse_layout(doc, 2).frames[1].colour
    assert colour == Intrinsics(40.0, 50.0, 30.0, 24.0, W, H)
    del doc["fl_y"]
    doc["frames"][0]["fl_y"] = 50.0
    only(doc, "transforms.json: frames[1].fl_y: is missing", expected_views=2)


def test_depth_intrinsics_are_the_colour_ones_scaled_to_the_depth_size() -> None:
    doc = capture_document()
    doc.update(depth_w=16, depth_h=12)
    frame = parse_layout(doc, 6).frames[0]
    assert frame.depth == Intrinsics(12.5, 12.5, 8.0, 6.0, 16, 12)
    assert [r.size for r in frame.files] == [(W, H), (16, 12)]


def test_depth_size_and_intrinsics_per_frame_and_explicit() -> None:
    doc = capture_document(2)
    doc["frames"][1].update(depth_w=32, depth_h=24, depth_cx=15.0)
    doc["depth_fl_y"] = 26.0
    first, second = parse_layout(doc, 2).frames
    assert first.depth == Intrinsics(50.0, 26.0, 32.0, 24.0, W, H)
    assert second.depth == Intrinsics(25.0, 26.0, 15.0, 12.0, 32, 24)


def test_mask_takes_the_colour_size_confidence_the_depth_size() -> None:
    doc = capture_document(1)
    doc.update(depth_w=32, depth_h=24)
    doc["frames"][0].update(mask_path="masks/0.png", confidence_path="confidence/0.png")
    refs = {r.kind: (r.path, r.size, r.where) for r in parse_layout(doc, 1).files()}
    assert refs[FileKind.MASK] == ("masks/0.png", (W, H), "transforms.json: frames[0].mask_path")
    assert refs[FileKind.CONFIDENCE] == (
        "confidence/0.png",
        (32, 24),
        "transforms.json: frames[0].confidence_path",
    )


def test_all_views_one_size_even_with_per_frame_overrides() -> None:
    doc = capture_document()
    doc["frames"][3].update(w=W * 2, h=H * 2)
    only(doc, "transforms.json: frames[3]: image size 128x96 differs from frames[0] (64x48)")


def test_camera_model_and_distortion() -> None:
    doc = capture_document()
    doc["camera_model"] = "OPENCV_FISHEYE"
    doc["frames"][2]["k1"] = 0.1
    only(
        doc,
        "transforms.json: camera_model: 'OPENCV_FISHEYE' is not supported",
        "transforms.json: frames[2]: k1: lens distortion is not supported",
    )
    doc = capture_document()
    doc.update(camera_model="OPENCV", k1=0, k2=0.0, p1=0, p2=0)
    assert problems(doc) == []


def test_depth_scale_must_be_positive_and_defaults_to_millimetres() -> None:
    doc = capture_document()
    doc["depth_unit_scale_factor"] = -1
    only(doc, "transforms.json: depth_unit_scale_factor: must be a positive number")
    del doc["depth_unit_scale_factor"]
    assert parse_layout(doc, 6).depth_unit == 0.001


def test_every_problem_in_document_order() -> None:
    doc = capture_document()
    doc["frames"].pop()
    doc["fl_x"] = -1
    doc["frames"][0]["file_path"] = "../x.png"
    doc["frames"][1]["transform_matrix"] = [[0, 0, 0, 0]] * 3 + [[0, 0, 0, 1]]
    doc["frames"][2]["depth_w"] = "wide"
    assert [p.where for p in parse_layout(doc, 6).problems] == [
        "transforms.json: frames",
        "transforms.json: fl_x",
        "transforms.json: frames[0].file_path",
        "transforms.json: frames[1].transform_matrix",
        "transforms.json: frames[2].depth_w",
    ]


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    ["frames", "w", "h", "fl_x", "depth_w", "file_path", "transform_matrix"]
                ),
                children,
                max_size=4,
            )
        ),
        max_leaves=20,
    )
)
@settings(max_examples=100, deadline=None)
def test_arbitrary_json_yields_problems_not_crashes(doc: Any) -> None:
    layout = load_layout(json.dumps(doc, allow_nan=True).encode(), 2)
    assert all(p.where and p.message for p in layout.problems)
    assert layout.problems or len(layout.frames) == 2
    if not isinstance(doc, dict):
        assert len(layout.problems) == 1
