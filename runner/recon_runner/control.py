"""How the pipeline reports progress and learns it must stop, without knowing who listens.

The pipeline calls a `ProgressSink` with the stage and the fraction done within it, and
calls `StopToken.check()` between optimisation steps (its safe points). The pod side
turns progress into rate-limited status patches; `recon run` turns it into a progress
bar; SIGTERM sets the token.
"""

from __future__ import annotations

import threading
from typing import Protocol

from recon_api.constants import STAGE_SPANS, Stage

from recon_runner.errors import StopRequested


class ProgressSink(Protocol):
    def __call__(self, stage: Stage, fraction: float, message: str) -> None: ...


def overall_percent(stage: Stage, fraction: float) -> float:
    """Map a stage-local fraction to the job-wide percentage of DESIGN.md's stage spans."""
    start, end = STAGE_SPANS[stage]
    return start + (end - start) * min(max(fraction, 0.0), 1.0)


def ignore_progress(stage: Stage, fraction: float, message: str) -> None:
    """A sink for callers that do not display progress."""


class StopToken:
    """Set from a signal handler, checked by the pipeline at its safe points."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def request(self) -> None:
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise StopRequested("stopped on request (SIGTERM)")
