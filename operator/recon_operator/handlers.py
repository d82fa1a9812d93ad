"""kopf wiring: which cluster changes trigger which decision.

The decisions live in the pure modules; handlers fetch, decide, and `apply`. Handlers
return nothing, so kopf never copies results into `status`, and kopf's own bookkeeping
(handler progress, the last-handled state) lives in annotations under `kopf.recon.dev/`,
away from the status fields the runner patches and safe from schema pruning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import kopf
from recon_api.constants import (
    CANCEL_ANNOTATION,
    FINALIZER,
    GROUP,
    PLURAL,
    VERSION,
    ConditionType,
    Phase,
)

from recon_operator import (
    cancel,
    capture_check,
    children,
    conditions,
    jobspec,
    kueue,
    lifecycle,
    storage_client,
)
from recon_operator.admission import Admission
from recon_operator.lifecycle import Note, Transition
from recon_operator.registry import Known
from recon_operator.runtime import Runtime, utcnow
from recon_operator.validation import Outcome

log = logging.getLogger(__name__)

KOPF_PREFIX = f"kopf.{GROUP}"
MAX_VALIDATION_DELAY = 60.0
STOP_TIMEOUT = 60.0
CLEANUP_RETRIES = 3
RECONJOBS = (GROUP, VERSION, PLURAL)
OWNED = {jobspec.UID_LABEL: kopf.PRESENT}


def validation_delay(retry: int) -> float:
    """Exponential backoff for storage that cannot be reached: 1, 2, 4 ... 60 s."""
    return float(min(2**retry, MAX_VALIDATION_DELAY))


def configure(settings: kopf.OperatorSettings) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = FINALIZER
    settings.posting.level = logging.INFO
    # Per-object event batches: react quickly, the queue depends on it.
    settings.batching.idle_timeout = 1.0
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330


def runtime(memo: Any) -> Runtime:
    rt: Runtime = memo.rt
    return rt


def _uid(body: Any) -> str:
    return str(body["metadata"]["uid"])


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    configure(settings)
    rt = runtime(memo)
    # Named namespaces need no namespace listing. Left on, kopf lists them first, which the
    # chart's per-namespace RBAC forbids, and watches nothing until it falls back after
    # about a minute of retries.
    settings.scanning.disabled = not rt.settings.cluster_wide
    memo.admission = Admission(rt)
    memo.admission_task = asyncio.create_task(memo.admission.run())


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    await runtime(memo).events.drain()
    task = getattr(memo, "admission_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@kopf.on.probe(id="admission")
def admission_ready(memo: kopf.Memo, **_: Any) -> bool:
    admission: Admission | None = getattr(memo, "admission", None)
    return admission is not None and admission.ready


@kopf.on.event(*RECONJOBS)
async def reconjob_seen(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    rt = runtime(memo)
    if type == "DELETED":
        rt.registry.forget(_uid(body))
        rt.wake()
        return
    known = rt.registry.observe(body)
    rt.wake()
    if (
        known is not None
        and known.job.status.phase is not None
        and conditions.find(known.job.status.conditions, ConditionType.RECONCILING) is None
        and not rt.registry.cancelling(known.job.uid)
    ):
        # Written by an operator version without kstatus's conditions: add them now, so
        # GitOps tools read it right without waiting for its next transition. (New jobs
        # get them with their first status write.)
        await rt.apply(known.body, lifecycle.observe(known.job, utcnow()))


def _latest(rt: Runtime, body: kopf.Body) -> Known | None:
    return rt.registry.observe(body) or rt.registry.get(_uid(body))


@kopf.on.create(*RECONJOBS, id="validate")
async def validate(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    """Check the capture before any GPU is requested; storage trouble is retried."""
    rt = runtime(memo)
    known = _latest(rt, body)
    if known is None or rt.registry.cancelling(known.job.uid):
        return
    known = await rt.apply(known.body, lifecycle.begin_validation(known.job, utcnow()))
    if known is None or known.job.status.phase != Phase.VALIDATING:
        return
    verdict = await capture_check.check(rt, known.job)
    if rt.registry.cancelling(known.job.uid):
        return
    if verdict.final_failure:
        rt.metrics.validation_failures.inc()
    latest = await rt.write(known.job.uid, lambda k: lifecycle.validated(k.job, verdict, utcnow()))
    if latest is None or latest.job.status.phase != Phase.VALIDATING:
        return  # decided, deleted or finished meanwhile: nothing to retry
    if verdict.outcome is Outcome.UNAVAILABLE:
        raise kopf.TemporaryError(
            f"{verdict.reason}: {verdict.message}", delay=validation_delay(retry)
        )


@kopf.on.field(*RECONJOBS, id="cancel", field=("metadata", "annotations", CANCEL_ANNOTATION))
async def cancel_annotation(old: Any, new: Any, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    rt = runtime(memo)
    known = _latest(rt, body)
    if known is None:
        return
    decision = cancel.decide(known.job, old, new, utcnow(), rt.settings.cancel_ttl_seconds)
    if decision.action is not cancel.Action.CANCEL:
        await rt.apply(known.body, decision.transition)
        return
    uid = known.job.uid
    rt.registry.mark_cancelling(uid)
    try:
        await rt.apply(known.body, Transition(notes=[Note("Cancelling", "stopping the work")]))
        await stop_work(rt, known)
        removed = await remove_partial_outputs(rt, known)
        latest = rt.registry.get(uid) or known
        await rt.apply(latest.body, cancel.completed(latest.job, utcnow(), removed))
    finally:
        rt.registry.done_cancelling(uid)
        rt.wake()


async def stop_work(rt: Runtime, known: Known) -> None:
    """Delete the Job (its name is deterministic, so also one being created right now) and
    wait until it and its pods are gone, so no runner writes after the outputs are cleaned."""
    ns = known.job.metadata["namespace"]
    name = jobspec.child_name(known.job.metadata["name"])
    await rt.call(rt.cluster.delete_job, ns, name)
    selector = f"{jobspec.UID_LABEL}={known.job.uid}"
    deadline = time.monotonic() + STOP_TIMEOUT
    # Both the Job and its pods: a pod the Job controller was creating as the deletion began
    # is not listed yet, but the foreground deletion keeps the Job until that pod is gone too.
    while True:
        job_gone = await rt.call(rt.cluster.job_gone, ns, name)
        if job_gone and not await rt.call(rt.cluster.pods_left, ns, selector):
            break
        if time.monotonic() > deadline:
            log.warning("pods of %s/%s still present after %.0fs", ns, name, STOP_TIMEOUT)
            return
        await asyncio.sleep(0.5)


async def remove_partial_outputs(rt: Runtime, known: Known) -> int:
    try:
        return await storage_client.remove_partial_outputs(rt, known.job)
    except storage_client.CleanupFailed as e:
        await rt.apply(known.body, Transition(notes=[Note("CleanupFailed", e.message, True)]))
        return 0


@kopf.on.delete(*RECONJOBS, id="cleanup")
async def cleanup(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    """Owner references stop the Job; the finalizer is for what they cannot reach: partial
    outputs in storage. Finished outputs stay."""
    rt = runtime(memo)
    known = _latest(rt, body)
    if known is None:
        return
    rt.registry.mark_cancelling(known.job.uid)
    await stop_work(rt, known)
    if known.job.status.phase == Phase.SUCCEEDED:
        return
    try:
        removed = await storage_client.remove_partial_outputs(rt, known.job)
        log.info("removed %d partial output(s) of deleted ReconJob %s", removed, known.job.uid)
    except storage_client.CleanupFailed as e:
        if e.refused:
            # Never connected to, so no runner of this job wrote there either.
            log.info("no partial outputs to remove for %s: %s", known.job.uid, e.message)
        elif retry < CLEANUP_RETRIES:
            raise kopf.TemporaryError(e.message, delay=5) from None
        else:
            log.warning("giving up removing partial outputs of %s: %s", known.job.uid, e.message)


async def _owner(rt: Runtime, body: kopf.Body) -> Known | None:
    """The ReconJob a Job or pod belongs to, once the startup listing is complete (before
    that, an unknown owner may simply not have been listed yet)."""
    uid = str((body.get("metadata", {}).get("labels") or {}).get(jobspec.UID_LABEL, ""))
    await rt.listed.wait()
    if rt.registry.cancelling(uid):
        return None
    return rt.registry.get(uid)


@kopf.on.event("batch", "v1", "jobs", labels=OWNED)
async def job_changed(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    rt = runtime(memo)
    if type == "DELETED":
        return
    known = await _owner(rt, body)
    if known is None:
        return
    await children.follow(rt, known, children.JOB, body)


@kopf.on.event(kueue.GROUP, kueue.WORKLOADS)
async def workload_changed(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Kueue's Workload for a child Job: its words for why the job waits. (Where Kueue is
    not installed, kopf warns once that the resource cannot be served, and goes on.)"""
    rt = runtime(memo)
    job_name = kueue.owner_job_name(body)
    if type == "DELETED" or job_name is None:
        return
    await rt.listed.wait()
    known = rt.registry.by_job_name(str(body["metadata"].get("namespace", "")), job_name)
    if known is None or rt.registry.cancelling(known.job.uid):
        return
    rt.registry.observe_workload(known.job.uid, body)
    workload = dict(body)
    await rt.write(
        known.job.uid, lambda latest: kueue.from_workload(latest.job, workload, utcnow())
    )


@kopf.on.event("", "v1", "pods", labels=OWNED)
async def pod_changed(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    rt = runtime(memo)
    if type == "DELETED":
        return
    known = await _owner(rt, body)
    if known is None:
        return
    await children.follow(rt, known, children.POD, body)
