"""What an importer cannot read is bad input naming the file (and the field) at fault."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from recon_runner.errors import InvalidInputError
from recon_runner.importers.capture_writer import write_capture

from tests.support.importer_sources import WRITERS, Written, put, source_for


def import_error(name: str, src_root: Path, out: Path) -> InvalidInputError:
    """Import the (broken) fixture at `src_root`; the error it raises."""
    written = Written(src_root if name != "record3d" else src_root / "capture.r3d", [], False)
    with pytest.raises(InvalidInputError) as caught:
        write_capture(source_for(name, written), out)
    assert not out.exists()
    return caught.value


def test_polycam_corrupt_depth_names_the_file(tmp_path: Path) -> None:
    WRITERS["polycam"](tmp_path / "src")
    depth = sorted((tmp_path / "src/keyframes/depth").iterdir())[1]
    depth.write_bytes(b"not a png")
    error = import_error("polycam", tmp_path / "src", tmp_path / "out")
    assert error.file == str(depth)
    assert "not a readable image" in error.problem


def test_polycam_camera_without_a_focal_length_names_file_and_key(tmp_path: Path) -> None:
    WRITERS["polycam"](tmp_path / "src")
    camera = sorted((tmp_path / "src/keyframes/corrected_cameras").iterdir())[0]
    doc = json.loads(camera.read_text())
    del doc["fx"]
    camera.write_text(json.dumps(doc))
    error = import_error("polycam", tmp_path / "src", tmp_path / "out")
    assert error.file == str(camera)
    assert "fx" in error.problem


def test_polycam_folder_without_keyframes(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    error = import_error("polycam", tmp_path / "src", tmp_path / "out")
    assert error.file == str(tmp_path / "src/keyframes")


def test_record3d_depth_that_is_not_lzfse_names_the_member(tmp_path: Path) -> None:
    WRITERS["record3d"](tmp_path / "src")
    path = tmp_path / "src/capture.r3d"
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["rgbd/2.depth"] = b"\x00garbage, not LZFSE"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    error = import_error("record3d", tmp_path / "src", tmp_path / "out")
    assert error.file == f"{path}:rgbd/2.depth"


def test_record3d_depth_of_the_wrong_size_names_the_member(tmp_path: Path) -> None:
    WRITERS["record3d"](tmp_path / "src")
    path = tmp_path / "src/capture.r3d"
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    meta = json.loads(members["metadata"])
    meta["dw"] = 20
    members["metadata"] = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    error = import_error("record3d", tmp_path / "src", tmp_path / "out")
    assert error.file == f"{path}:rgbd/0.depth"
    assert "20x12" in error.problem


def test_record3d_file_that_is_not_a_zip(tmp_path: Path) -> None:
    put(tmp_path / "src/capture.r3d", b"PK? no")
    error = import_error("record3d", tmp_path / "src", tmp_path / "out")
    assert error.file == str(tmp_path / "src/capture.r3d")


def test_nerfstudio_frame_without_depth_names_the_frame(tmp_path: Path) -> None:
    WRITERS["nerfstudio"](tmp_path / "src")
    path = tmp_path / "src/transforms.json"
    doc = json.loads(path.read_text())
    del doc["frames"][1]["depth_file_path"]
    path.write_text(json.dumps(doc))
    error = import_error("nerfstudio", tmp_path / "src", tmp_path / "out")
    assert error.file == f"{path} frames[1]"
    assert "depth_file_path" in error.problem


def test_nerfstudio_lens_distortion_is_refused(tmp_path: Path) -> None:
    WRITERS["nerfstudio"](tmp_path / "src")
    path = tmp_path / "src/transforms.json"
    doc = json.loads(path.read_text())
    doc["k1"] = 0.02
    path.write_text(json.dumps(doc))
    error = import_error("nerfstudio", tmp_path / "src", tmp_path / "out")
    assert error.file == f"{path} frames[0]"
    assert "k1" in error.problem and "distortion" in error.problem


def test_scannet_intrinsics_that_are_not_a_matrix(tmp_path: Path) -> None:
    WRITERS["scannet"](tmp_path / "src")
    path = tmp_path / "src/intrinsic/intrinsic_color.txt"
    path.write_text("70 0 39\n")
    error = import_error("scannet", tmp_path / "src", tmp_path / "out")
    assert error.file == str(path)
    assert "4x4" in error.problem


def test_tum_trajectory_line_with_missing_fields_names_file_and_line(tmp_path: Path) -> None:
    WRITERS["tum"](tmp_path / "src")
    path = tmp_path / "src/groundtruth.txt"
    lines = path.read_text().splitlines()
    lines[3] = " ".join(lines[3].split()[:5])
    path.write_text("\n".join(lines) + "\n")
    error = import_error("tum", tmp_path / "src", tmp_path / "out")
    assert error.file == f"{path}:4"
    assert "fields" in error.problem


def test_redwood_log_that_is_cut_short_names_the_log(tmp_path: Path) -> None:
    WRITERS["redwood"](tmp_path / "src")
    path = tmp_path / "src/trajectory.log"
    path.write_text("\n".join(path.read_text().splitlines()[:7]) + "\n")
    error = import_error("redwood", tmp_path / "src", tmp_path / "out")
    assert error.file == str(path)


def test_redwood_log_naming_a_frame_that_is_not_there(tmp_path: Path) -> None:
    WRITERS["redwood"](tmp_path / "src")
    path = tmp_path / "src/trajectory.log"
    path.write_text(path.read_text().replace("2 2 3\n", "2 2 9\n"))
    error = import_error("redwood", tmp_path / "src", tmp_path / "out")
    assert error.file == str(path)
    assert "frame 9" in error.problem
