"""Loading a capture: the DESIGN.md conventions, and bad content reported as bad input
naming the file (exit code 3 in the CLI and the pod)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from recon_api.constants import MAX_IMAGE_PIXELS, ExitCode
from recon_runner.errors import InvalidInputError
from recon_runner.stages.capture import _open_png, load_capture, repeated_block
from recon_runner.synthetic import CaptureStyle, sphere_object, write_capture

from tests.unit.sphere_capture import CENTRE, DEPTH_UNIT, RADIUS, write_sphere_capture


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pristine")
    write_sphere_capture(root, size=48)
    return root


@pytest.fixture
def capture_dir(pristine: Path, tmp_path: Path) -> Path:
    root = tmp_path / "capture"
    shutil.copytree(pristine, root)
    return root


def edit_transforms(root: Path, change: Callable[[dict], None]) -> None:
    meta = json.loads((root / "transforms.json").read_text())
    change(meta)
    (root / "transforms.json").write_text(json.dumps(meta))


def test_loads_views_in_world_frame(capture_dir: Path) -> None:
    capture = load_capture(capture_dir, expected_views=6)
    assert len(capture.views) == 6
    assert capture.depth_unit == DEPTH_UNIT
    view = capture.views[0]
    assert view.rgb.shape == (48, 48, 3) and view.rgb.dtype == np.uint8
    assert view.depth.max() < 2.0  # metres, scaled by depth_unit_scale_factor
    points = capture.points()
    distances = np.linalg.norm(points - CENTRE, axis=1)
    assert np.abs(distances - RADIUS).max() < 0.01


def test_rgb_without_alpha_takes_mask_from_depth(tmp_path: Path) -> None:
    write_sphere_capture(tmp_path, size=32, alpha=False)
    view = load_capture(tmp_path).views[0]
    np.testing.assert_array_equal(view.mask, view.depth > 0)


def test_per_frame_intrinsics_override(capture_dir: Path) -> None:
    def change(meta: dict) -> None:
        meta["frames"][1]["fl_x"] = meta["fl_x"] * 2

    edit_transforms(capture_dir, change)
    capture = load_capture(capture_dir)
    assert capture.views[1].camera.fx == 2 * capture.views[0].camera.fx


def test_depth_unit_defaults_to_millimetres(capture_dir: Path) -> None:
    before = load_capture(capture_dir).points()
    edit_transforms(capture_dir, lambda meta: meta.pop("depth_unit_scale_factor"))
    scale = DEPTH_UNIT / 0.001
    for path in (capture_dir / "depth").glob("*.png"):
        depth = np.asarray(Image.open(path)).astype(np.float64)
        Image.fromarray(np.round(depth * scale).astype(np.uint16)).save(path)
    capture = load_capture(capture_dir)
    assert capture.depth_unit == 0.001
    # Millimetre quantisation of the same sphere: points agree to within a millimetre.
    after = capture.points()
    assert after.shape == before.shape
    assert np.abs(after - before).max() < 0.0015


def test_invalid_input_maps_to_exit_code_3() -> None:
    assert InvalidInputError("a.png", "broken").exit_code == ExitCode.INVALID_INPUT == 3


def _zero_depth(root: Path) -> None:
    Image.fromarray(np.zeros((48, 48), np.uint16)).save(root / "depth/view_002.png")


def _empty_mask(root: Path) -> None:
    image = np.asarray(Image.open(root / "images/view_001.png")).copy()
    image[..., 3] = 0
    Image.fromarray(image, "RGBA").save(root / "images/view_001.png")


def _far_depth(root: Path) -> None:
    depth = np.asarray(Image.open(root / "depth/view_004.png")).astype(np.uint32)
    far = np.where(depth > 0, 65000, 0).astype(np.uint16)
    Image.fromarray(far).save(root / "depth/view_004.png")


def _wrong_size(root: Path) -> None:
    Image.new("RGBA", (40, 48)).save(root / "images/view_005.png")


def _eight_bit_depth(root: Path) -> None:
    Image.fromarray(np.full((48, 48), 7, np.uint8)).save(root / "depth/view_000.png")


def _grey_colour(root: Path) -> None:
    Image.fromarray(np.full((48, 48), 7, np.uint8)).save(root / "images/view_000.png")


def _missing_file(root: Path) -> None:
    (root / "depth/view_003.png").unlink()


def _not_png(root: Path) -> None:
    (root / "images/view_002.png").write_bytes(b"this is not an image")


def _escape(root: Path) -> None:
    def change(meta: dict) -> None:
        meta["frames"][0]["file_path"] = "../outside.png"

    edit_transforms(root, change)


@pytest.mark.parametrize(
    ("breakage", "file", "words"),
    [
        (_zero_depth, "depth/view_002.png", "all zeros"),
        (_empty_mask, "images/view_001.png", "mask"),
        (_far_depth, "depth/view_004.png", "from the scene"),
        (_wrong_size, "images/view_005.png", "40x48"),
        (_eight_bit_depth, "depth/view_000.png", "16-bit"),
        (_grey_colour, "images/view_000.png", "8-bit RGB"),
        (_missing_file, "depth/view_003.png", "not found"),
        (_not_png, "images/view_002.png", "PNG"),
        # The document's own rules are the capture contract's (test_capture_layout); the
        # loader reports them as they are, naming the field.
        (_escape, "transforms.json: frames[0].file_path", "leaves the dataset"),
    ],
)
def test_bad_content_names_the_file(
    capture_dir: Path, breakage: Callable[[Path], None], file: str, words: str
) -> None:
    breakage(capture_dir)
    with pytest.raises(InvalidInputError) as info:
        load_capture(capture_dir)
    assert info.value.file == file
    assert words in info.value.problem
    assert str(info.value).startswith(file)


def test_missing_transforms_and_wrong_view_count(capture_dir: Path) -> None:
    with pytest.raises(
        InvalidInputError, match=r"lists 6 frames but spec\.input\.expectedViews is 5"
    ):
        load_capture(capture_dir, expected_views=5)
    (capture_dir / "transforms.json").unlink()
    with pytest.raises(InvalidInputError) as info:
        load_capture(capture_dir)
    assert info.value.file == "transforms.json"


def test_an_image_over_the_pixel_bound_is_bad_input_before_decoding(tmp_path: Path) -> None:
    """A 4097x4097 colour image: within PIL's own bomb limit, over the project's bound."""
    Image.new("RGB", (4097, 4097)).save(tmp_path / "big.png")
    with pytest.raises(InvalidInputError) as caught:
        _open_png(tmp_path, "big.png")
    assert caught.value.file == "big.png"
    assert caught.value.exit_code == 3
    assert f"is 4097x4097, more than the {MAX_IMAGE_PIXELS} pixels" in caught.value.problem


PHONE = CaptureStyle(
    colour_format="jpeg", depth_scale=4, confidence=True, low_confidence_outliers=0.1
)


@pytest.fixture(scope="module")
def phone_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A phone-style capture of a sphere: JPEG colour (no alpha, no mask), depth at a quarter
    of the colour resolution, confidence maps marking a tenth of the readings (each 10 cm
    off) low."""
    root = tmp_path_factory.mktemp("phone")
    write_capture(sphere_object(RADIUS, CENTRE, subdivisions=4), root, 6, 64, 64, style=PHONE)
    return root


def test_loads_jpeg_colour_and_quarter_resolution_depth_with_its_own_camera(
    phone_dir: Path,
) -> None:
    meta = json.loads((phone_dir / "transforms.json").read_text())
    assert (meta["depth_w"], meta["depth_h"]) == (16, 16)
    view = load_capture(phone_dir, expected_views=6).views[0]
    assert view.image_file.endswith(".jpg") and view.rgb.shape == (64, 64, 3)
    assert view.depth.shape == (16, 16)
    assert (view.depth_cam.width, view.depth_cam.fx) == (16, view.camera.fx / 4)
    np.testing.assert_array_equal(view.depth_cam.c2w, view.camera.c2w)
    # No alpha, no mask: the object is what the depth measures, and that says nothing
    # about background.
    assert not view.mask_given and view.mask.shape == (64, 64)
    depth, _ = view.depth_at_colour()
    np.testing.assert_array_equal(view.mask, depth > 0)


@pytest.mark.parametrize("levels", [(0, 1, 2), (0, 127, 255)])
def test_low_confidence_depth_is_dropped_and_medium_counts_half(
    tmp_path: Path, levels: tuple[int, int, int]
) -> None:
    style = CaptureStyle(
        colour_format="jpeg", depth_scale=4, confidence=True, confidence_levels=levels,
        low_confidence_outliers=0.1,
    )  # fmt: skip
    write_capture(sphere_object(RADIUS, CENTRE, subdivisions=4), tmp_path, 6, 64, 64, style=style)
    confidence = tmp_path / "confidence/view_000.png"
    marked = np.asarray(Image.open(confidence)).copy()
    assert (marked == levels[0]).any() and (marked == levels[2]).any()
    marked[:, :8][marked[:, :8] == levels[2]] = levels[1]  # the left half: medium
    Image.fromarray(marked).save(confidence)
    capture = load_capture(tmp_path)
    # Every reading left lies on the sphere: the outliers, 10 cm off, were all low.
    distances = np.linalg.norm(capture.points() - CENTRE, axis=1)
    assert np.abs(distances - RADIUS).max() < 0.01
    view = capture.views[0]
    assert set(np.unique(view.weight[:, :8])) <= {0.0, 0.5}
    assert set(np.unique(view.weight[:, 8:])) <= {0.0, 1.0}
    np.testing.assert_array_equal(view.weight > 0, view.depth > 0)


def test_depth_repeated_over_blocks_is_read_at_the_resolution_it_was_measured_at(
    tmp_path: Path,
) -> None:
    """Quarter-resolution depth nearest-upsampled to the colour size (blocks of 4x4 equal
    readings) loads as the 16x16 map it was, on the camera it was measured with: each
    reading on its own ray, the same readings as a capture that stored them small."""
    sphere = sphere_object(RADIUS, CENTRE, subdivisions=4)
    small, blocky = tmp_path / "small", tmp_path / "blocky"
    write_capture(sphere, small, 6, 64, 64, style=CaptureStyle(depth_scale=4))
    write_capture(sphere, blocky, 6, 64, 64, style=CaptureStyle(depth_blocks=4))
    assert json.loads((blocky / "transforms.json").read_text()).get("depth_w", 64) == 64
    for stored, measured in zip(load_capture(small).views, load_capture(blocky).views, strict=True):
        assert measured.depth.shape == (16, 16)
        assert measured.depth_cam.fx == pytest.approx(stored.depth_cam.fx)
        assert measured.depth_cam.cx == pytest.approx(stored.depth_cam.cx)
        np.testing.assert_allclose(measured.depth, stored.depth, atol=DEPTH_UNIT)
    # Depth at full resolution has no repeated blocks and loads as it is.
    assert repeated_block(load_capture(small).views[0].depth) == 1
    full = load_capture(tmp_path / "small").views[0].depth
    assert repeated_block(np.kron(full, np.ones((2, 2), dtype=np.float32))) == 2


def test_a_mask_file_is_the_object_and_says_where_it_is_not(tmp_path: Path) -> None:
    style = CaptureStyle(colour_format="jpeg", mask_files=True)
    write_capture(sphere_object(RADIUS, CENTRE, subdivisions=4), tmp_path, 6, 48, 48, style=style)
    view = load_capture(tmp_path).views[2]
    assert view.mask_given
    np.testing.assert_array_equal(
        view.mask, np.asarray(Image.open(tmp_path / "masks/view_002.png")) > 0
    )


def test_bounds_decide_the_object_where_no_mask_does(phone_dir: Path) -> None:
    """A box over the sphere's upper half: the object is what the depth sees inside."""
    upper = ((-1.0, -1.0, CENTRE[2]), (1.0, 1.0, 1.0))
    capture = load_capture(phone_dir, bounds=upper)
    assert capture.points()[:, 2].min() >= CENTRE[2]
    assert len(capture.points()) < 0.75 * len(load_capture(phone_dir).points())
    nowhere = ((5.0, 5.0, 5.0), (6.0, 6.0, 6.0))
    with pytest.raises(InvalidInputError) as info:
        load_capture(phone_dir, bounds=nowhere)
    assert info.value.file == "depth/view_000.png"
    assert "inside spec.reconstruction.bounds" in info.value.problem


def test_confidence_and_depth_must_have_the_depth_size(phone_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "capture"
    shutil.copytree(phone_dir, root)
    Image.new("L", (64, 64)).save(root / "confidence/view_001.png")
    with pytest.raises(InvalidInputError) as info:
        load_capture(root)
    assert info.value.file == "confidence/view_001.png"
    assert "is 64x64 but transforms.json says 16x16 (depth_w, depth_h)" in info.value.problem
