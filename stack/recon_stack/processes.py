"""Start the stack's processes detached, and stop exactly those processes later.

`recon dev up` returns while the stack keeps running, and `recon dev down` runs in another
process, so each component is recorded in a PID file. The file also holds the process's
start time: a PID reused by an unrelated process after a reboot or crash is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Children started by this process, kept so they can be reaped when stopped here (tests run
# the stack inside the test process); a later `recon dev down` finds them by PID file.
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class ProcessRecord:
    pid: int
    start_ticks: int


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may contain spaces.
    return raw[raw.rindex(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None when it is gone."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def is_alive(record: ProcessRecord) -> bool:
    fields = _stat_fields(record.pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return int(fields[19]) == record.start_ticks


def spawn(
    argv: Sequence[str],
    log_path: Path,
    pid_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ProcessRecord:
    """Start ``argv`` in its own session with output appended to ``log_path``.

    Its own session keeps it alive after the starting shell exits and lets `down` signal
    its whole process group.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    ticks = start_ticks(proc.pid)
    record = ProcessRecord(proc.pid, ticks if ticks is not None else -1)
    pid_path.write_text(f"{record.pid} {record.start_ticks}\n")
    _children[proc.pid] = proc
    return record


def read_pidfile(path: Path) -> ProcessRecord | None:
    try:
        pid, ticks = path.read_text().split()
        return ProcessRecord(int(pid), int(ticks))
    except (FileNotFoundError, ValueError):
        return None


def _reap(pid: int) -> None:
    """Collect an exited child of this process so it does not linger as a zombie."""
    proc = _children.get(pid)
    if proc is not None and proc.poll() is not None:
        del _children[pid]


def _signal(record: ProcessRecord, sig: signal.Signals) -> None:
    if not is_alive(record):
        return
    try:
        # The process leads its own group (see spawn); children it left in the group go too.
        os.killpg(record.pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, sig)


def stop(records: Sequence[ProcessRecord], grace_seconds: float = 10.0) -> list[ProcessRecord]:
    """SIGTERM every live record, SIGKILL what is still alive after the grace period.

    Returns the records that were still alive and had to be killed.
    """
    for r in records:
        _signal(r, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while True:
        for r in records:
            _reap(r.pid)
        alive = [r for r in records if is_alive(r)]
        if not alive or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    for r in alive:
        _signal(r, signal.SIGKILL)
    for r in alive:
        for _ in range(100):
            _reap(r.pid)
            if not is_alive(r):
                break
            time.sleep(0.02)
    return alive
