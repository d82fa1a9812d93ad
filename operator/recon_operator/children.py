"""Following a ReconJob's Job and pods, including events that arrive too early.

The admission creates the Job before it records the ReconJob as Running, and the scheduler
marks an unschedulable pod only once (then retries quietly), so a pod or Job event can
arrive while its owner still reads Queued. Such events are held per owner and replayed once
the admission is recorded; otherwise `Scheduled=False` would be lost for good.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recon_api.constants import Phase

from recon_operator import jobwatch
from recon_operator.registry import Known
from recon_operator.runtime import Runtime, utcnow

JOB = "job"
POD = "pod"


async def follow(rt: Runtime, known: Known, kind: str, body: Mapping[str, Any]) -> None:
    """Bring the ReconJob's status in step with one event of its Job or pod."""
    uid = known.job.uid
    if known.job.status.phase == Phase.QUEUED:
        rt.early.setdefault(uid, {})[kind] = body  # the admission is being recorded
        return
    if kind == JOB:
        await rt.apply(known.body, jobwatch.from_job(known.job, dict(body), utcnow()))
        return
    job_name = (body.get("metadata", {}).get("labels") or {}).get("job-name")
    if job_name != known.job.status.job_name:
        return
    await rt.apply(known.body, jobwatch.from_pod(known.job, dict(body), utcnow()))


async def replay_early(rt: Runtime, uid: str) -> None:
    """After the admission is recorded: the held Job event first, then the pod's."""
    held = rt.early.pop(uid, {})
    for kind in (JOB, POD):
        body = held.get(kind)
        known = rt.registry.get(uid)
        if body is None or known is None:
            continue
        await follow(rt, known, kind, body)
