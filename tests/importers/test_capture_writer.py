"""The writer: all or nothing, never over a capture it was not asked to replace, and the
layout's rules applied to what it writes."""

from __future__ import annotations

import io
import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from recon_runner.errors import InvalidInputError
from recon_runner.importers.capture_writer import Frame, Intrinsics, Source, write_capture

K = Intrinsics(40.0, 40.0, 16.0, 12.0, 32, 24)


def jpeg(width: int = 32, height: int = 24, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), 128).save(buffer, format="JPEG")
    return buffer.getvalue()


def frame(index: int, **changes: object) -> Frame:
    values: dict[str, object] = {
        "colour": jpeg(),
        "colour_source": f"src/{index}.jpg",
        "intrinsics": K,
        "c2w": np.eye(4),
        "depth": np.full((6, 8), 1.25),
        "depth_source": f"src/{index}.depth",
    }
    values.update(changes)
    return Frame(**values)  # type: ignore[arg-type]


def source(*frames: Frame, unit: float = 0.001) -> Source:
    return Source([partial(lambda f: f, f) for f in frames], unit, "src")


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_a_failing_frame_leaves_no_output_and_no_staging(tmp_path: Path) -> None:
    bad = frame(2, colour=b"broken")
    with pytest.raises(InvalidInputError) as caught:
        write_capture(source(frame(0), frame(1), bad), tmp_path / "out")
    assert caught.value.file == "src/2.jpg"
    assert not (tmp_path / "out").exists()
    assert leftovers(tmp_path) == []


def test_an_existing_capture_is_kept_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_capture(source(frame(0)), out)
    before = (out / "transforms.json").read_text()
    with pytest.raises(FileExistsError):
        write_capture(source(frame(0), frame(1)), out)
    assert (out / "transforms.json").read_text() == before
    write_capture(source(frame(0), frame(1)), out, overwrite=True)
    assert len(json.loads((out / "transforms.json").read_text())["frames"]) == 2
    assert leftovers(tmp_path) == []


def test_a_failed_forced_import_keeps_the_old_capture(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_capture(source(frame(0)), out)
    with pytest.raises(InvalidInputError):
        write_capture(source(frame(0), frame(1, colour=b"x")), out, overwrite=True)
    assert len(json.loads((out / "transforms.json").read_text())["frames"]) == 1


def test_shared_values_at_the_top_and_differences_per_frame(tmp_path: Path) -> None:
    other = Intrinsics(44.0, 40.0, 16.0, 12.0, 32, 24)
    write_capture(source(frame(0), frame(1, intrinsics=other)), tmp_path / "out")
    doc = json.loads((tmp_path / "out/transforms.json").read_text())
    assert (doc["w"], doc["h"], doc["depth_w"], doc["depth_h"]) == (32, 24, 8, 6)
    assert doc["fl_x"] == 40.0 and doc["depth_unit_scale_factor"] == 0.001
    assert "fl_x" not in doc["frames"][0] and doc["frames"][1]["fl_x"] == 44.0
    assert "depth_fl_x" not in doc  # depth is the colour camera scaled: the default


def test_colour_sizes_must_agree_and_match_the_camera(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as caught:
        write_capture(source(frame(0, colour=jpeg(30, 24))), tmp_path / "a")
    assert caught.value.file == "src/0.jpg" and "30x24" in caught.value.problem
    small = Intrinsics(40.0, 40.0, 8.0, 6.0, 16, 12)
    with pytest.raises(InvalidInputError) as caught:
        write_capture(
            source(frame(0), frame(1, colour=jpeg(16, 12), intrinsics=small)), tmp_path / "b"
        )
    assert caught.value.file == "src/1.jpg" and "one size" in caught.value.problem


def test_colour_the_layout_cannot_take_is_written_as_png(tmp_path: Path) -> None:
    write_capture(source(frame(0, colour=jpeg(mode="L"))), tmp_path / "out")
    doc = json.loads((tmp_path / "out/transforms.json").read_text())
    image = Image.open(tmp_path / "out" / doc["frames"][0]["file_path"])
    assert image.format == "PNG" and image.mode == "RGB"


def test_depth_beyond_sixteen_bits_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as caught:
        write_capture(source(frame(0, depth=np.full((6, 8), 70.0))), tmp_path / "out")
    assert caught.value.file == "src/0.depth" and "16 bits" in caught.value.problem


def test_invalid_depth_is_no_measurement(tmp_path: Path) -> None:
    depth = np.full((6, 8), 1.0)
    depth[0, 0], depth[0, 1], depth[0, 2] = np.nan, -1.0, np.inf
    write_capture(source(frame(0, depth=depth)), tmp_path / "out")
    stored = np.asarray(Image.open(tmp_path / "out/depth/frame_00000.png"))
    assert stored[0, :3].tolist() == [0, 0, 0] and stored[1, 1] == 1000


def test_confidence_levels_outside_the_layout_name_the_file(tmp_path: Path) -> None:
    confidence = np.full((6, 8), 3, dtype=np.uint8)
    bad = frame(0, confidence=confidence, confidence_source="src/0.conf")
    with pytest.raises(InvalidInputError) as caught:
        write_capture(source(bad), tmp_path / "out")
    assert caught.value.file == "src/0.conf" and "0/1/2" in caught.value.problem


def test_an_empty_source_names_it(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as caught:
        write_capture(Source([], 0.001, "some/folder"), tmp_path / "out")
    assert caught.value.file == "some/folder"


def test_the_capture_folder_has_the_users_usual_permissions(tmp_path: Path) -> None:
    import os
    import stat

    previous = os.umask(0o022)
    try:
        write_capture(source(frame(0)), tmp_path / "out")
    finally:
        os.umask(previous)
    # Readable by a runner container of another user, as a folder made by mkdir is.
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755
