"""A terminal progress bar for `recon run` and `recon demo`, fed by the pipeline's sink.

On a terminal the bar redraws in place; into a pipe or a log it prints a line per stage
and at most one every few seconds, so CI logs stay readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from recon_api.constants import Stage

from recon_runner.control import overall_percent

WIDTH = 30
LOG_INTERVAL_SECONDS = 5.0


class ProgressLine:
    """One line of progress: on a terminal a bar redrawn in place, into a pipe or a log a
    line when ``force`` says so (a new stage, the last frame) and at most one every
    LOG_INTERVAL_SECONDS otherwise. `recon run`'s stage bar and `recon import`'s frame
    bar both draw through it, so they look and pace alike."""

    def __init__(
        self,
        stream: TextIO | None = None,
        interactive: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._interactive = self._stream.isatty() if interactive is None else interactive
        self._clock = clock
        self._last_line: float | None = None
        self._drawn = False

    def show(self, percent: float, bar_text: str, log_text: str, force: bool = False) -> None:
        if self._interactive:
            filled = round(WIDTH * percent / 100.0)
            bar = "#" * filled + "." * (WIDTH - filled)
            line = f"[{bar}] {percent:3.0f}% {bar_text}"
            self._stream.write("\r" + line[:100].ljust(100))
            self._stream.flush()
            self._drawn = True
            return
        now = self._clock()
        if force or self._last_line is None or now - self._last_line >= LOG_INTERVAL_SECONDS:
            self._stream.write(f"{percent:3.0f}% {log_text}\n")
            self._stream.flush()
            self._last_line = now

    def close(self) -> None:
        """End the redrawn line so later output starts on a fresh one."""
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False


class ProgressBar:
    def __init__(self, stream: TextIO | None = None, interactive: bool | None = None) -> None:
        self._line = ProgressLine(stream, interactive)
        self._percent = 0.0
        self._stage: Stage | None = None

    def __call__(self, stage: Stage, fraction: float, message: str) -> None:
        # Never move backwards, even if a stage reports out of order.
        self._percent = max(self._percent, overall_percent(stage, fraction))
        new_stage = stage != self._stage
        self._stage = stage
        self._line.show(
            self._percent, f"{stage.value:<7} {message}", f"{stage.value}: {message}", new_stage
        )

    def finish(self, message: str) -> None:
        """Show 100 %: a local run has no upload stage to get there."""
        self._percent = 100.0
        self._line.show(100.0, message, message, force=True)

    def close(self) -> None:
        self._line.close()
