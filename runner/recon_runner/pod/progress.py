"""Deciding when the runner's progress is worth a status patch, and what the patch says.

The pipeline reports progress many times a second; the API server should see at most one
patch per `min_interval` (2 s), plus one at every stage boundary so `kubectl get` shows the
stage change at once, plus the final one. A heartbeat re-sends the current progress when
nothing has been sent for `heartbeat` seconds, so `updatedAt` stays fresh inside a long
stage and the operator does not take a busy runner for a stalled one. Pure: the clock is
injected and the caller does the sending, so the rules are testable without a cluster.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from recon_api.constants import Stage
from recon_api.run_metrics import RunMetrics

from recon_runner.control import overall_percent

MIN_INTERVAL_SECONDS = 2.0
# Well under the 30 s DESIGN.md promises, leaving room for a slow or failed patch.
HEARTBEAT_SECONDS = 15.0


@dataclass(frozen=True)
class ProgressReport:
    """One status.progress value: what a patch carries."""

    percent: int
    stage: Stage
    message: str
    eta_seconds: int | None


class ProgressLimiter:
    """Turns a stream of (stage, fraction, message) into the reports to send.

    `offer()` is called by the pipeline, `poll()` by a ticker (for the trailing update after
    a burst and for the heartbeat); both return a report to send now, or None. The caller
    says `delivered()` when a patch went through; an undelivered report stays pending and is
    offered again once `min_interval` has passed, so a failing API server is retried at the
    same modest rate. Not thread-safe on its own: the reporter holds a lock around it.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        min_interval: float = MIN_INTERVAL_SECONDS,
        heartbeat: float = HEARTBEAT_SECONDS,
    ) -> None:
        self._clock = clock
        self._min_interval = min_interval
        self._heartbeat = heartbeat
        self._started = clock()
        self._exact_percent = 0.0
        self._current: ProgressReport | None = None
        self._boundary = False
        self._last_attempt: float | None = None
        self._last_delivered_at: float | None = None
        self._delivered: ProgressReport | None = None

    @property
    def current(self) -> ProgressReport | None:
        return self._current

    def offer(self, stage: Stage, fraction: float, message: str) -> ProgressReport | None:
        """Record the pipeline's latest progress; return a report if one is due."""
        now = self._clock()
        # Never backwards within an attempt, whatever a stage reports.
        self._exact_percent = max(self._exact_percent, overall_percent(stage, fraction))
        if self._current is None or stage != self._current.stage:
            self._boundary = True
        self._current = ProgressReport(
            percent=min(100, math.floor(self._exact_percent)),
            stage=stage,
            message=message,
            eta_seconds=None,
        )
        return self._take(now)

    def poll(self) -> ProgressReport | None:
        """A pending change after the interval, or the heartbeat; else None."""
        return self._take(self._clock())

    def finish(self, stage: Stage, message: str) -> ProgressReport:
        """The last report of a run: always sent, 100 % and no time left."""
        self._exact_percent = 100.0
        self._current = ProgressReport(percent=100, stage=stage, message=message, eta_seconds=0)
        self._last_attempt = self._clock()
        self._boundary = False
        return self._current

    def delivered(self, report: ProgressReport) -> None:
        self._delivered = report
        self._last_delivered_at = self._clock()

    def _eta(self, now: float) -> int | None:
        """Elapsed time scaled by the work left; unknown until there is 1 % to go on."""
        if self._exact_percent < 1.0:
            return None
        elapsed = now - self._started
        return max(0, round(elapsed * (100.0 - self._exact_percent) / self._exact_percent))

    def _take(self, now: float) -> ProgressReport | None:
        current = self._current
        if current is None:
            return None
        since_attempt = math.inf if self._last_attempt is None else now - self._last_attempt
        since_delivered = (
            math.inf if self._last_delivered_at is None else now - self._last_delivered_at
        )
        changed = self._delivered is None or (
            (current.percent, current.stage, current.message)
            != (self._delivered.percent, self._delivered.stage, self._delivered.message)
        )
        due = self._boundary or (
            since_attempt >= self._min_interval and (changed or since_delivered >= self._heartbeat)
        )
        if not due:
            return None
        self._boundary = False
        self._last_attempt = now
        return ProgressReport(current.percent, current.stage, current.message, self._eta(now))


def rfc3339(moment: datetime) -> str:
    """Kubernetes' date-time form: UTC, whole seconds, a trailing Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def progress_patch(report: ProgressReport, now: datetime) -> dict[str, Any]:
    """The merge patch for status.progress. An unknown ETA is sent as null, which a merge
    patch turns into removing the field, so an old attempt's ETA does not linger."""
    return {
        "status": {
            "progress": {
                "percent": report.percent,
                "stage": report.stage.value,
                "message": report.message[:1024],
                "updatedAt": rfc3339(now),
                "etaSeconds": report.eta_seconds,
            }
        }
    }


def final_patch(
    report: ProgressReport,
    now: datetime,
    outputs: Mapping[str, str],
    metrics: RunMetrics,
) -> dict[str, Any]:
    """Progress at 100 %, the output URLs and the headline metrics, in one patch so a
    reader never sees a finished progress without the outputs."""
    patch = progress_patch(report, now)
    patch["status"]["outputs"] = dict(outputs)
    patch["status"]["metrics"] = metrics.headline().to_api()
    return patch
