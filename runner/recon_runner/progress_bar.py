"""A terminal progress bar for `recon run` and `recon demo`, fed by the pipeline's sink.

On a terminal the bar redraws in place; into a pipe or a log it prints a line per stage
and at most one every few seconds, so CI logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from recon_api.constants import Stage

from recon_runner.control import overall_percent

WIDTH = 30
LOG_INTERVAL_SECONDS = 5.0


class ProgressBar:
    def __init__(self, stream: TextIO | None = None, interactive: bool | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._interactive = self._stream.isatty() if interactive is None else interactive
        self._percent = 0.0
        self._stage: Stage | None = None
        self._last_line = 0.0
        self._drawn = False

    def __call__(self, stage: Stage, fraction: float, message: str) -> None:
        # Never move backwards, even if a stage reports out of order.
        self._percent = max(self._percent, overall_percent(stage, fraction))
        new_stage = stage != self._stage
        self._stage = stage
        if self._interactive:
            filled = round(WIDTH * self._percent / 100.0)
            bar = "#" * filled + "." * (WIDTH - filled)
            line = f"[{bar}] {self._percent:3.0f}% {stage.value:<7} {message}"
            self._stream.write("\r" + line[:100].ljust(100))
            self._stream.flush()
            self._drawn = True
            return
        now = time.monotonic()
        if new_stage or now - self._last_line >= LOG_INTERVAL_SECONDS:
            self._stream.write(f"{self._percent:3.0f}% {stage.value}: {message}\n")
            self._stream.flush()
            self._last_line = now

    def finish(self, message: str) -> None:
        """Show 100 %: a local run has no upload stage to get there."""
        self._percent = 100.0
        if self._interactive:
            bar = "#" * WIDTH
            self._stream.write("\r" + f"[{bar}] 100% {message}"[:100].ljust(100))
            self._drawn = True
        else:
            self._stream.write(f"100% {message}\n")
        self._stream.flush()

    def close(self) -> None:
        """End the redrawn line so later output starts on a fresh one."""
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False
