"""The runner processes the process node started for one ReconJob, found by the job's uid in
their environment (the operator hands it to every runner pod as RECON_JOB_UID), so a test
can kill one as the kernel's OOM killer would."""

from __future__ import annotations

import os
import signal
from pathlib import Path

UID_ENV = b"RECON_JOB_UID="


def _environ(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def runner_pids(job_uid: str) -> list[int]:
    """Live processes running a runner for the ReconJob with ``job_uid``."""
    wanted = UID_ENV + job_uid.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and wanted in _environ(int(entry.name)) and _alive(int(entry.name)):
            found.append(int(entry.name))
    return sorted(found)


def oom_kill(pid: int) -> None:
    """SIGKILL, no warning: what the OOM killer does to a container over its memory limit."""
    os.kill(pid, signal.SIGKILL)
