"""Container processes: exit codes, output to the log, SIGTERM then SIGKILL, no leftovers."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest
from recon_stack.node.launch import LaunchSpec
from recon_stack.node.podrun import ContainerProcess, StartError, stop_all
from recon_stack.node.status import exit_code_of


def spec(tmp_path: Path, *argv: str) -> LaunchSpec:
    env = {"PATH": os.path.dirname(sys.executable) + ":/usr/bin:/bin", "GREETING": "hi"}
    return LaunchSpec(
        argv=argv,
        env=env,
        cwd=tmp_path / "work",
        log_path=tmp_path / "logs" / "main.log",
        volume_dirs=(tmp_path / "vol",),
    )


def python(code: str) -> tuple[str, ...]:
    return ("python", "-c", code)


def test_output_goes_to_the_log_and_the_exit_code_is_reported(tmp_path: Path) -> None:
    code = "import os, sys; print(os.environ['GREETING'], os.getcwd()); sys.exit(3)"
    proc = ContainerProcess.start(spec(tmp_path, *python(code)))
    assert exit_code_of(proc.wait()) == 3
    assert (tmp_path / "logs" / "main.log").read_text() == f"hi {tmp_path / 'work'}\n"
    assert (tmp_path / "vol").is_dir()


def test_a_missing_executable_is_a_start_error_written_to_the_log(tmp_path: Path) -> None:
    with pytest.raises(StartError, match='exec: "no-such-binary-x": executable file not found'):
        ContainerProcess.start(spec(tmp_path, "no-such-binary-x"))
    assert "executable file not found" in (tmp_path / "logs" / "main.log").read_text()


def test_stop_sends_sigterm_and_a_process_handling_it_exits_in_time(tmp_path: Path) -> None:
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: (print('SIGTERM', flush=True), sys.exit(143)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = ContainerProcess.start(spec(tmp_path, *python(code)))
    log = tmp_path / "logs" / "main.log"
    _wait_for_text(log, "ready")
    result: list[int] = []
    waiter = threading.Thread(target=lambda: result.append(proc.wait()))
    waiter.start()
    started = time.monotonic()
    proc.stop(grace_seconds=10)
    waiter.join(10)
    assert time.monotonic() - started < 5
    assert result == [143]
    assert "SIGTERM" in log.read_text()


def test_a_process_ignoring_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = ContainerProcess.start(spec(tmp_path, *python(code)))
    _wait_for_text(tmp_path / "logs" / "main.log", "ready")
    result: list[int] = []
    waiter = threading.Thread(target=lambda: result.append(proc.wait()))
    waiter.start()
    started = time.monotonic()
    stop_all([proc], grace_seconds=0.5)
    waiter.join(10)
    assert 0.4 < time.monotonic() - started < 5
    assert [exit_code_of(r) for r in result] == [137]


def test_children_left_behind_die_with_the_main_process(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    code = (
        "import subprocess, sys\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "sys.exit(0)\n"
    )
    proc = ContainerProcess.start(spec(tmp_path, *python(code)))
    assert proc.wait() == 0
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_for_text(path: Path, text: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.02)
    raise AssertionError(f"{text!r} never appeared in {path}")
