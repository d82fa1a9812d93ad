"""Stopping what the stack started, and nothing else."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from recon_stack.processes import (
    ProcessRecord,
    is_alive,
    read_pidfile,
    spawn,
    start_ticks,
    stop,
)

IGNORES_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(60)"
)


def _output(path: Path) -> list[str]:
    """The process's own lines, after the header line `spawn` writes (its argv)."""
    return path.read_text().splitlines()[1:]


def _wait_for_log(path: Path, line: str) -> None:
    deadline = time.monotonic() + 10
    while line not in _output(path):
        assert time.monotonic() < deadline, path.read_text()
        time.sleep(0.02)


def test_spawned_process_is_recorded_and_stopped_with_sigterm(tmp_path: Path) -> None:
    log, pidfile = tmp_path / "x.log", tmp_path / "x.pid"
    record = spawn(
        [sys.executable, "-c", "print('hello', flush=True); import time; time.sleep(60)"],
        log,
        pidfile,
    )
    assert read_pidfile(pidfile) == record
    assert is_alive(record)
    _wait_for_log(log, "hello")
    killed = stop([record], grace_seconds=10)
    assert killed == []
    assert not is_alive(record)


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    log = tmp_path / "stubborn.log"
    record = spawn([sys.executable, "-c", IGNORES_SIGTERM], log, tmp_path / "s.pid")
    _wait_for_log(log, "ready")
    started = time.monotonic()
    killed = stop([record], grace_seconds=0.5)
    assert killed == [record]
    assert not is_alive(record)
    assert time.monotonic() - started < 5


def test_a_reused_pid_is_never_signalled(tmp_path: Path) -> None:
    """A PID file left from before a reboot may name a PID now used by something else."""
    log = tmp_path / "other.log"
    other = spawn([sys.executable, "-c", IGNORES_SIGTERM], log, tmp_path / "o.pid")
    _wait_for_log(log, "ready")
    stale = ProcessRecord(other.pid, other.start_ticks - 1)
    assert not is_alive(stale)
    stop([stale], grace_seconds=0.2)
    assert is_alive(other)
    stop([other], grace_seconds=0.2)
    assert not is_alive(other)


def test_children_left_in_the_process_group_are_stopped_too(tmp_path: Path) -> None:
    log = tmp_path / "parent.log"
    code = (
        "import subprocess, sys, time; "
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print(c.pid, flush=True); time.sleep(60)"
    )
    record = spawn([sys.executable, "-c", code], log, tmp_path / "p.pid")
    deadline = time.monotonic() + 10
    while not _output(log):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    child = int(_output(log)[0])
    child_ticks = start_ticks(child)
    assert child_ticks is not None
    stop([record], grace_seconds=5)
    deadline = time.monotonic() + 5
    while is_alive(ProcessRecord(child, child_ticks)):
        assert time.monotonic() < deadline, "child process survived its parent's stop"
        time.sleep(0.05)
