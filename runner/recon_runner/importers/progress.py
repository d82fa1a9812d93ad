"""Progress of an import, frame by frame, in the manner of `recon run`'s progress bar.

On a terminal the bar redraws in place; into a pipe or a log it prints a line at most
every few seconds and one at the end, so logs of a 300-keyframe import stay short. The
pipeline's ProgressBar speaks in reconstruction stages; an import has only frames, so
this bar takes a count and draws through the same ProgressLine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from recon_runner.local.progress_bar import ProgressLine


class FrameProgress:
    def __init__(
        self,
        label: str,
        stream: TextIO | None = None,
        interactive: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._label = label
        self._line = ProgressLine(stream, interactive, clock)

    def __call__(self, done: int, total: int) -> None:
        percent = 100.0 * done / total if total else 100.0
        counted = f"{done}/{total} frames"
        self._line.show(
            percent, f"{self._label} {counted}", f"{self._label}: {counted}", done == total
        )

    def close(self) -> None:
        self._line.close()
