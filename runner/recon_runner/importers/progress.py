"""Progress of an import, frame by frame, in the manner of `recon run`'s progress bar.

On a terminal the bar redraws in place; into a pipe or a log it prints a line at most
every few seconds and one at the end, so logs of a 300-keyframe import stay short. The
pipeline's ProgressBar speaks in reconstruction stages; an import has only frames, so
this bar takes a count and shares the pipeline bar's width and log interval.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from recon_runner.progress_bar import LOG_INTERVAL_SECONDS, WIDTH


class FrameProgress:
    def __init__(
        self,
        label: str,
        stream: TextIO | None = None,
        interactive: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._label = label
        self._stream = stream if stream is not None else sys.stderr
        self._interactive = self._stream.isatty() if interactive is None else interactive
        self._clock = clock
        self._last_line: float | None = None
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        percent = 100.0 * done / total if total else 100.0
        if self._interactive:
            filled = round(WIDTH * percent / 100.0)
            bar = "#" * filled + "." * (WIDTH - filled)
            line = f"[{bar}] {percent:3.0f}% {self._label} {done}/{total} frames"
            self._stream.write("\r" + line[:100].ljust(100))
            self._stream.flush()
            self._drawn = True
            return
        now = self._clock()
        due = self._last_line is None or now - self._last_line >= LOG_INTERVAL_SECONDS
        if due or done == total:
            self._stream.write(f"{percent:3.0f}% {self._label}: {done}/{total} frames\n")
            self._stream.flush()
            self._last_line = now

    def close(self) -> None:
        """End the redrawn line so later output starts on a fresh one."""
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False
