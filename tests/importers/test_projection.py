"""Every importer keeps the geometry: the known point lands on the same colour pixel, the
same depth-map pixel and the same depth after import as the source format puts it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from recon_runner.camera import project
from recon_runner.importers.capture_writer import write_capture

from tests.support.importer_sources import (
    POINT,
    WRITERS,
    imported_views,
    source_for,
    where_seen,
)


def test_known_point_projects_to_the_same_pixel_and_depth(format_name: str, tmp_path: Path) -> None:
    written = WRITERS[format_name](tmp_path / "source")
    source = source_for(format_name, written)
    write_capture(source, tmp_path / "capture")
    views = imported_views(tmp_path / "capture")
    assert len(views) == len(written.seen)
    # Centre-origin sources count pixel centres from 0; the layout from the corner. Text
    # formats round poses to a few digits: a ten-thousandth of a pixel.
    shift = 0.5 if written.centre_origin else 0.0
    unit = source.depth_unit
    for index, (view, seen) in enumerate(zip(views, written.seen, strict=True)):
        u, v, depth_column, depth_row, depth = where_seen(view)
        assert u == pytest.approx(seen.u + shift, abs=1e-4), f"frame {index}"
        assert v == pytest.approx(seen.v + shift, abs=1e-4), f"frame {index}"
        assert (math.floor(u), math.floor(v)) == (seen.column, seen.row), f"frame {index}"
        assert (depth_column, depth_row) == (seen.depth_column, seen.depth_row), f"frame {index}"
        assert depth == pytest.approx(seen.depth, abs=unit / 2 + 1e-9), f"frame {index}"
        _, z = project(view.colour, POINT)
        assert float(z) == pytest.approx(seen.depth, abs=1e-6)


def test_depth_keeps_its_resolution_and_colour_is_copied_as_stored(tmp_path: Path) -> None:
    written = WRITERS["polycam"](tmp_path / "source")
    write_capture(source_for("polycam", written), tmp_path / "capture")
    view = imported_views(tmp_path / "capture")[0]
    assert view.depth.shape == (12, 16)
    assert (view.colour.width, view.colour.height) == (64, 48)
    stamp = sorted((tmp_path / "source/keyframes/corrected_images").iterdir())[0]
    copied = tmp_path / "capture" / str(view.frame["file_path"])
    assert copied.suffix == ".jpg"
    assert copied.read_bytes() == stamp.read_bytes()


def test_confidence_and_masks_are_carried(tmp_path: Path) -> None:
    from PIL import Image

    for name, levels in (("polycam", {0, 127, 255}), ("record3d", {0, 1, 2})):
        written = WRITERS[name](tmp_path / name)
        write_capture(source_for(name, written), tmp_path / f"{name}-capture")
        view = imported_views(tmp_path / f"{name}-capture")[0]
        confidence = Image.open(tmp_path / f"{name}-capture" / str(view.frame["confidence_path"]))
        assert confidence.mode == "L" and confidence.size == (16, 12)
        assert set(np.unique(np.asarray(confidence)).tolist()) == levels
    written = WRITERS["nerfstudio"](tmp_path / "ns")
    write_capture(source_for("nerfstudio", written), tmp_path / "ns-capture")
    view = imported_views(tmp_path / "ns-capture")[0]
    mask = np.asarray(Image.open(tmp_path / "ns-capture" / str(view.frame["mask_path"])))
    assert mask.shape == (48, 64)
    assert mask[0, 0] == 0 and mask[24, 32] == 255


def test_scannet_skips_frames_whose_tracking_was_lost(tmp_path: Path) -> None:
    written = WRITERS["scannet"](tmp_path / "source")
    source = source_for("scannet", written)
    assert len(source.loaders) == 2 + 1 - 1 + 1  # frames 0, 2, 3 of 0..3
    assert any("not finite" in note for note in source.notes)


def test_tum_pairs_by_timestamp_and_takes_the_closest_pose(tmp_path: Path) -> None:
    written = WRITERS["tum"](tmp_path / "source")
    source = source_for("tum", written)
    # The colour image with no depth within 0.02 s is left out; the rest are paired.
    assert len(source.loaders) == 3
    frames = [load() for load in source.loaders]
    assert [Path(f.colour_source).name for f in frames] == [
        "1305031102.000000.png",
        "1305031103.000000.png",
        "1305031104.000000.png",
    ]


def test_nerfstudio_npy_depth_is_scaled_like_png_depth(tmp_path: Path) -> None:
    import json

    from PIL import Image

    written = WRITERS["nerfstudio"](tmp_path / "source")
    path = written.src / "transforms.json"
    doc = json.loads(path.read_text())
    for frame in doc["frames"]:
        png = written.src / frame["depth_file_path"]
        units = np.asarray(Image.open(png)).astype(np.float32)  # depth_unit_scale_factor units
        np.save(png.with_suffix(".npy"), units)
        frame["depth_file_path"] = frame["depth_file_path"].replace(".png", ".npy")
    path.write_text(json.dumps(doc))
    source = source_for("nerfstudio", written)
    write_capture(source, tmp_path / "capture")
    for view, seen in zip(imported_views(tmp_path / "capture"), written.seen, strict=True):
        *_, depth = where_seen(view)
        # The arrays hold the PNG's quantised units; the capture quantises again, finer.
        tolerance = (doc["depth_unit_scale_factor"] + source.depth_unit) / 2 + 1e-9
        assert depth == pytest.approx(seen.depth, abs=tolerance)


def test_record3d_unzipped_folder_and_depth_size_from_the_aspect_ratio(tmp_path: Path) -> None:
    import json
    import zipfile

    written = WRITERS["record3d"](tmp_path / "source")
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(written.src) as archive:
        archive.extractall(folder)
    meta = json.loads((folder / "metadata").read_text())
    del meta["dw"], meta["dh"]  # older exports do not state the depth size
    (folder / "metadata").write_text(json.dumps(meta))
    written = type(written)(folder, written.seen, written.centre_origin)
    write_capture(source_for("record3d", written), tmp_path / "capture")
    views = imported_views(tmp_path / "capture")
    assert views[0].depth.shape == (12, 16)
    for view, seen in zip(views, written.seen, strict=True):
        _, _, column, row, depth = where_seen(view)
        assert (column, row) == (seen.depth_column, seen.depth_row)
        assert depth == pytest.approx(seen.depth, abs=1e-4)
