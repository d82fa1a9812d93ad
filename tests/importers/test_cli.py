"""`recon import FORMAT SRC OUT` as a user runs it: exit codes, messages, progress."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from recon_api.constants import ExitCode
from recon_cli.main import main
from recon_runner.importers.progress import FrameProgress

from tests.support.importer_sources import WRITERS


def test_import_writes_the_capture_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    WRITERS["tum"](tmp_path / "tum")
    code = main(
        [
            "import",
            "tum",
            str(tmp_path / "tum"),
            str(tmp_path / "out"),
            "--intrinsics",
            "61,60.5,31.7,23.2",
        ]
    )
    captured = capsys.readouterr()
    assert code == ExitCode.SUCCESS
    assert f"wrote 3 frames to {tmp_path / 'out'}" in captured.out
    assert "100% importing tum: 3/3 frames" in captured.err
    assert "paired 3 of 4 colour images" in captured.err
    doc = json.loads((tmp_path / "out/transforms.json").read_text())
    assert doc["fl_x"] == 61.0 and doc["cx"] == 32.2  # OpenCV principal point + 0.5


def test_every_keeps_every_nth_frame(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    WRITERS["redwood"](tmp_path / "rw")
    code = main(
        [
            "import",
            "redwood",
            str(tmp_path / "rw"),
            str(tmp_path / "out"),
            "--every",
            "2",
            "--quiet",
        ]
    )
    assert code == ExitCode.SUCCESS
    assert "wrote 2 frames" in capsys.readouterr().out
    assert len(json.loads((tmp_path / "out/transforms.json").read_text())["frames"]) == 2


def test_unreadable_source_exits_3_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    WRITERS["scannet"](tmp_path / "scan")
    pose = tmp_path / "scan/pose/2.txt"
    pose.write_text("1 0 0\n")
    code = main(["import", "scannet", str(tmp_path / "scan"), str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == ExitCode.INVALID_INPUT == 3
    assert err == [f"error: {pose}: holds 3 numbers, not a 4x4 matrix"]
    assert not (tmp_path / "out").exists()


def test_existing_output_is_refused_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    written = WRITERS["record3d"](tmp_path / "r3d")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["import", "record3d", str(written.src), str(out), "--quiet"]
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"
    assert main([*args, "--force"]) == ExitCode.SUCCESS
    assert not (out / "keep.txt").exists() and (out / "transforms.json").is_file()


def test_progress_into_a_log_prints_a_line_every_few_seconds_and_at_the_end() -> None:
    stream = io.StringIO()
    now = [0.0]
    bar = FrameProgress("importing polycam", stream, interactive=False, clock=lambda: now[0])
    for done in range(1, 201):
        now[0] = done * 0.1  # 20 s in all
        bar(done, 200)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "  0% importing polycam: 1/200 frames"
    assert lines[-1] == "100% importing polycam: 200/200 frames"
    assert 4 <= len(lines) <= 6  # one per 5 s, plus the last


def test_progress_on_a_terminal_redraws_one_line() -> None:
    stream = io.StringIO()
    bar = FrameProgress("importing tum", stream, interactive=True)
    bar(1, 4)
    bar(4, 4)
    bar.close()
    text = stream.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n")
    assert "100% importing tum 4/4 frames" in text
