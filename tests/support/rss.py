"""Resident memory of processes: a process's peak (with any children), sampled in a
background thread, and this process's own figures as the kernel keeps them."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import psutil


class RssSampler:
    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.first = 0
        self.last = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        total = self.process.memory_info().rss
        for child in self.process.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        return int(total)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = self.sample()
            except psutil.Error:
                return
            self.first = self.first or rss
            self.last = rss
            self.peak = max(self.peak, rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def mib(n: int) -> float:
    return n / 2**20


def status_kib(field_name: str) -> int:
    """A memory figure of this process from /proc/self/status (VmRSS, or VmHWM: its peak
    since it started; getrusage's ru_maxrss is not that, Linux keeps it across execve, so a
    child started from a large parent reports the parent's size), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field_name} not in /proc/self/status")
