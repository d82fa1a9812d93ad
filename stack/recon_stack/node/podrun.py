"""One container as one local process group: start it, wait for it, stop it.

Each process leads its own session, so a signal reaches everything it started, as a
container's processes all die with it. When the main process exits, what it left behind
in its group is killed before the exit is reported: a container ends with its PID 1.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from recon_stack.node.launch import LaunchSpec
from recon_stack.node.timestamps import utcnow


class StartError(RuntimeError):
    """The process could not be started; the message reads like a container runtime's."""


def _exec_error(argv0: str, e: OSError) -> str:
    if isinstance(e, FileNotFoundError):
        if e.filename and str(e.filename) != argv0 and not Path(argv0).is_absolute():
            return f"chdir to {e.filename}: no such file or directory"
        return f'exec: "{argv0}": executable file not found in $PATH'
    if isinstance(e, PermissionError):
        return f'exec: "{argv0}": permission denied'
    return f'exec: "{argv0}": {e.strerror or e}'


class ContainerProcess:
    """A started container process; safe to signal from one thread while another waits."""

    def __init__(self, popen: subprocess.Popen[bytes], started_at: dt.datetime) -> None:
        self._popen = popen
        self._lock = threading.Lock()
        self._reaped = False
        self.exited = threading.Event()
        self.started_at = started_at

    @property
    def pid(self) -> int:
        return self._popen.pid

    @classmethod
    def start(cls, spec: LaunchSpec) -> ContainerProcess:
        """Start the container's process with its output appended to its log file."""
        for d in (spec.cwd, *spec.volume_dirs, spec.log_path.parent):
            d.mkdir(parents=True, exist_ok=True)
        with spec.log_path.open("ab") as log:
            try:
                popen = subprocess.Popen(
                    list(spec.argv),
                    env=dict(spec.env),
                    cwd=spec.cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as e:
                message = _exec_error(spec.argv[0] if spec.argv else "", e)
                log.write(f"process node: cannot start container: {message}\n".encode())
                raise StartError(message) from e
        return cls(popen, utcnow())

    def wait(self) -> int:
        """Block until the process exits; kill its leftovers; return its raw wait status.

        The exit is observed without reaping first, so the process group id cannot be
        reused by an unrelated process while the leftovers are being killed.
        """
        while True:
            try:
                os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
                break
            except ChildProcessError:
                break
            except InterruptedError:
                continue
        with self._lock:
            self._signal_group_locked(signal.SIGKILL)
            returncode = self._popen.wait()
            self._reaped = True
        self.exited.set()
        return returncode

    def signal_group(self, sig: signal.Signals) -> None:
        with self._lock:
            self._signal_group_locked(sig)

    def _signal_group_locked(self, sig: signal.Signals) -> None:
        if self._reaped:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def stop(self, grace_seconds: float) -> None:
        """SIGTERM, up to ``grace_seconds`` to exit, then SIGKILL (another thread waits)."""
        self.signal_group(signal.SIGTERM)
        if not self.exited.wait(max(grace_seconds, 0.0)):
            self.signal_group(signal.SIGKILL)


def stop_all(processes: Sequence[ContainerProcess], grace_seconds: float) -> None:
    """SIGTERM every process group at once, then SIGKILL those still alive after the grace.

    Other threads reap the processes; this only waits for them to be reaped.
    """
    for p in processes:
        p.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    for p in processes:
        if not p.exited.wait(max(deadline - time.monotonic(), 0.0)):
            p.signal_group(signal.SIGKILL)
