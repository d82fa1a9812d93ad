"""When a running job counts as stalled, and what the sweep then records (`check`).

The runner heartbeats through `status.progress.updatedAt`. Before its first heartbeat the
moment its pod started running stands in, so a runner that hangs before reporting anything
is caught too; a pod still waiting for the scheduler is not stalled, only unplaced.
"""

from __future__ import annotations

from datetime import datetime

from recon_api.constants import ConditionType, Phase
from recon_api.models import ReconJob

from recon_operator import conditions, lifecycle
from recon_operator.lifecycle import Transition


def last_sign_of_life(job: ReconJob) -> datetime | None:
    running = conditions.find(job.status.conditions, ConditionType.RUNNING)
    if running is None or running.status != "True":
        return None
    times = [t for t in (running.last_transition_time,) if t is not None]
    if job.status.progress is not None and job.status.progress.updated_at is not None:
        times.append(job.status.progress.updated_at)
    return max(times) if times else None


def silent_seconds(job: ReconJob, now: datetime) -> float | None:
    """How long a running job has been silent, or None when silence does not apply."""
    if job.status.phase != Phase.RUNNING:
        return None
    seen = last_sign_of_life(job)
    if seen is None:
        return None
    return (now - seen).total_seconds()


def check(job: ReconJob, now: datetime, stale_after_seconds: float) -> Transition:
    """The sweep's decision for one job: Failed with reason Stalled once its runner has
    been silent longer than the limit, otherwise nothing."""
    silent = silent_seconds(job, now)
    if silent is None or silent <= stale_after_seconds:
        return Transition()
    return lifecycle.stalled(job, silent, now)
