"""Following a ReconJob's Job and pods, including events that arrive too early.

The admission creates the Job before it records the ReconJob as Running, and the scheduler
marks an unschedulable pod only once (then retries quietly), so a pod or Job event can
arrive while its owner still reads Queued. Such events are held per owner and replayed once
the admission is recorded; otherwise `Scheduled=False` would be lost for good.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from recon_api.constants import Phase

from recon_operator import eviction, jobwatch, kueue
from recon_operator.lifecycle import Transition
from recon_operator.registry import Known
from recon_operator.runtime import Runtime, utcnow

log = logging.getLogger(__name__)

JOB = "job"
POD = "pod"
# Post-eviction clean-ups in flight (held so they are not garbage-collected midway).
_cleanups: set[asyncio.Task[None]] = set()


async def follow(rt: Runtime, known: Known, kind: str, body: Mapping[str, Any]) -> None:
    """Bring the ReconJob's status in step with one event of its Job or pod. Each step is
    decided from the latest status under the job's write lock (`Runtime.write`)."""
    uid = known.job.uid
    meta = body.get("metadata") or {}
    log.debug(
        "%s %s %s v%s: ReconJob %s reads %s",
        kind,
        meta.get("name"),
        _summary(kind, body),
        meta.get("resourceVersion"),
        uid,
        known.job.status.phase,
    )
    if not rt.registry.current_child(uid, kind, body):
        log.debug("%s %s v%s is stale", kind, meta.get("name"), meta.get("resourceVersion"))
        return  # a held event replayed after a newer one was followed
    seen_body = dict(body)
    if kind == JOB and kueue.handed_over(known.job):
        # Kueue decides Queued or Running by suspending or unsuspending the Job.
        seen: list[Known] = []

        def decide(latest: Known) -> Transition:
            seen.append(latest)
            workload = rt.registry.workload(uid)
            default = rt.settings.kueue_default_queue
            return kueue.from_job(latest.job, seen_body, workload, default, utcnow())

        after = await rt.write(uid, decide)
        if after is None or not seen:
            return
        if kueue.evicted(seen[0].job, after.job):
            await stopped_by_kueue(rt, after)
            return
        if seen[0].job.status.phase == Phase.QUEUED and after.job.status.phase == Phase.RUNNING:
            await replay_early(rt, uid)
        known = after
    if known.job.status.phase == Phase.QUEUED:
        # The admission is being recorded, or Kueue has not admitted the job (yet, or again).
        if not _finished_pod(kind, body):
            log.debug("%s %s held until %s is admitted", kind, meta.get("name"), uid)
            rt.registry.hold_early(uid, kind, body)
        return
    if kind == JOB:
        await rt.write(uid, lambda latest: jobwatch.from_job(latest.job, seen_body, utcnow()))
        return
    job_name = (body.get("metadata", {}).get("labels") or {}).get("job-name")
    if job_name != known.job.status.job_name:
        return
    await rt.write(uid, lambda latest: jobwatch.from_pod(latest.job, seen_body, utcnow()))


def _summary(kind: str, body: Mapping[str, Any]) -> str:
    """What the event is about, for the debug log: a Job's suspension, a pod's phase."""
    if kind == JOB:
        return "suspended" if (body.get("spec") or {}).get("suspend") else "unsuspended"
    return str((body.get("status") or {}).get("phase"))


def _finished_pod(kind: str, body: Mapping[str, Any]) -> bool:
    """A pod of an earlier, stopped run (Kueue's eviction): nothing to replay later."""
    if kind != POD:
        return False
    phase = (body.get("status") or {}).get("phase")
    return bool((body.get("metadata") or {}).get("deletionTimestamp")) or phase in (
        "Succeeded",
        "Failed",
    )


async def stopped_by_kueue(rt: Runtime, known: Known) -> None:
    """Kueue suspended the Job: the Job controller stops the runner (SIGTERM, exit 143);
    once its pods are gone, the attempt's partial outputs are removed, as on a cancel, so
    the next admission starts clean. That wait runs beside the Job's handler, which must
    stay free to follow the next admission."""
    rt.registry.take_early(known.job.uid)
    task = asyncio.create_task(eviction.clean_up(rt, known))
    _cleanups.add(task)
    task.add_done_callback(_cleanups.discard)


async def replay_early(rt: Runtime, uid: str) -> None:
    """After the admission is recorded: the held Job event first, then the pod's."""
    held = rt.registry.take_early(uid)
    log.debug("replaying %s held for %s", sorted(held), uid)
    for kind in (JOB, POD):
        body = held.get(kind)
        known = rt.registry.get(uid)
        if body is None or known is None:
            continue
        await follow(rt, known, kind, body)
