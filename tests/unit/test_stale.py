"""A running job whose runner stopped heartbeating is stalled; others are not."""

from __future__ import annotations

from datetime import datetime, timedelta

from recon_api.constants import Phase
from recon_api.models import ReconJob
from recon_operator.stale import check

from tests.support.reconjobs import T0, reconjob


def is_stale(job: ReconJob, now: datetime, after: float) -> bool:
    """What the sweep records: Failed (reason Stalled) or nothing at all."""
    transition = check(job, now, after)
    if not transition:
        return False
    assert transition.patch["phase"] == Phase.FAILED.value
    return True


RUNNING = {"type": "Running", "status": "True", "lastTransitionTime": "2025-01-01T12:00:00Z"}


def test_old_heartbeat_is_stale() -> None:
    job = reconjob(
        status={
            "phase": "Running",
            "conditions": [RUNNING],
            "progress": {"percent": 40, "updatedAt": "2025-01-01T12:05:00Z"},
        }
    )
    assert not is_stale(job, T0 + timedelta(minutes=5, seconds=599), 600)
    assert is_stale(job, T0 + timedelta(minutes=5, seconds=601), 600)


def test_a_runner_silent_from_the_start_is_stale_after_the_limit() -> None:
    job = reconjob(status={"phase": "Running", "conditions": [RUNNING]})
    assert is_stale(job, T0 + timedelta(seconds=601), 600)


def test_a_pod_waiting_for_the_scheduler_or_a_queued_job_is_not_stale() -> None:
    waiting = reconjob(status={"phase": "Running"})
    queued = reconjob(status={"phase": "Queued"})
    assert not is_stale(waiting, T0 + timedelta(days=1), 600)
    assert not is_stale(queued, T0 + timedelta(days=1), 600)
