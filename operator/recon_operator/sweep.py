"""The housekeeping sweep: stalled runs failed, lapsed cancel requests withdrawn.

Both are judged in minutes, so the sweep runs on its own every `INTERVAL` seconds, apart
from admission: sweeping every job on each of the many wake-ups of a long drain would be
wasted work. The decisions are the pure `stale.check` and `cancel.expire`; each is taken
from the latest status under the job's write lock (`Runtime.write`), since a queued job's
position or a running job's progress may be being written at the same moment.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from recon_operator import cancel, stale
from recon_operator.lifecycle import Transition
from recon_operator.registry import Known
from recon_operator.runtime import Runtime, utcnow

log = logging.getLogger(__name__)

INTERVAL = 5.0


async def run(rt: Runtime, interval: float = INTERVAL) -> None:
    while True:
        try:
            await sweep_once(rt)
        except Exception:
            log.exception("housekeeping sweep failed; retrying")
        await asyncio.sleep(interval)


async def sweep_once(rt: Runtime) -> None:
    now = utcnow()
    after = rt.settings.stale_after_seconds
    for known in rt.registry.all():
        job = known.job
        if rt.registry.cancelling(job.uid):
            continue
        if cancel.expire(job, now):
            await rt.write(job.uid, lambda k: cancel.expire(k.job, now))
            continue
        if stale.check(job, now, after):
            await fail_stalled(rt, known, now, after)


async def fail_stalled(rt: Runtime, known: Known, now: datetime, after: float) -> None:
    """Failed on the record first, then the Job goes: its pod's end then reads as the
    stall's consequence, not as a failure of its own."""
    failed: list[Transition] = []

    def decide(latest: Known) -> Transition:
        transition = stale.check(latest.job, now, after)
        if transition:
            failed.append(transition)
        return transition

    await rt.write(known.job.uid, decide)
    job = known.job
    if failed and job.status.job_name:
        await rt.call(rt.cluster.delete_job, job.metadata["namespace"], job.status.job_name)
