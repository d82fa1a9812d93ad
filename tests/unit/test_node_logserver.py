"""`kubectl logs` requests, as the API server forwards them to the node, map to log files."""

from __future__ import annotations

import os
from pathlib import Path

from recon_stack.node.logserver import find_log, parse_log_path, tail_lines


def test_container_log_paths_are_parsed_and_anything_else_refused() -> None:
    assert parse_log_path("/containerLogs/studio/chair-x7/main?follow=true") == (
        "studio",
        "chair-x7",
        "main",
    )
    assert parse_log_path("/containerLogs/studio/chair-x7") is None
    assert parse_log_path("/exec/studio/chair-x7/main") is None
    assert parse_log_path("/containerLogs/studio//main") is None


def test_tail_keeps_the_last_lines_including_an_unterminated_one() -> None:
    data = b"a\nb\nc\npartial"
    assert tail_lines(data, 2) == b"c\npartial"
    assert tail_lines(data, 10) == data
    assert tail_lines(data, 0) == b""


def test_the_newest_pod_of_a_reused_name_is_the_one_logged(tmp_path: Path) -> None:
    old = tmp_path / "studio_job-a_uid-1"
    new = tmp_path / "studio_job-a_uid-2"
    other = tmp_path / "studio_job-a-b_uid-3"
    for d, text in ((old, "old\n"), (new, "new\n"), (other, "other\n")):
        d.mkdir()
        (d / "main.log").write_text(text)
    os.utime(old / "main.log", (1, 1))
    found = find_log(tmp_path, "studio", "job-a", "main")
    assert found == new / "main.log"
    assert find_log(tmp_path, "studio", "job-a", "sidecar") is None
    assert find_log(tmp_path, "other-ns", "job-a", "main") is None
