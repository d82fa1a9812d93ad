"""Kueue admission: which ReconJobs Kueue admits, and their status from Kueue's objects.

Pure: decisions from a ReconJob, its child Job and Kueue's Workload for that Job, taking the
clock as an argument. A ReconJob that opts in (the `kueue.x-k8s.io/queue-name` label, or
the operator's default queue) is not queued by the operator: its Job is created at once,
suspended and labelled, and Kueue admits it by unsuspending the Job (Kueue's batch/v1 Job
integration). The Job's `spec.suspend` is the one signal the phase follows, since it is
what actually lets pods start or stops them; the Workload only lends Kueue's own words
(why it waits, why it was evicted) to the conditions and Events.

Once handed over, a ReconJob says so in its `Admitted` condition (reason `WaitingForKueue`
or `AdmittedByKueue`), so that the API server, not the operator's memory, records who owns
the job's admission (and the operator's `maxRunningJobs` never counts it).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from recon_api.constants import (
    KUEUE_PRIORITY_LABEL,
    KUEUE_QUEUE_LABEL,
    ConditionType,
    Phase,
)
from recon_api.models import ReconJob

from recon_operator import conditions
from recon_operator.lifecycle import StatusChange, Transition

Json = Mapping[str, Any]

GROUP = "kueue.x-k8s.io"
WORKLOADS = "workloads"
WAITING = "WaitingForKueue"
ADMITTED = "AdmittedByKueue"
EVICTED = "EvictedByKueue"
HANDED_OVER_REASONS = (WAITING, ADMITTED)
# The labels copied from the ReconJob onto its Job, for Kueue to read there.
COPIED_LABELS = (KUEUE_QUEUE_LABEL, KUEUE_PRIORITY_LABEL)


def queue_name(job: ReconJob, default_queue: str) -> str | None:
    """The LocalQueue a ReconJob goes to: its own label, else the operator's default; None
    when the operator queues it itself."""
    labels = job.metadata.get("labels") or {}
    return str(labels.get(KUEUE_QUEUE_LABEL) or default_queue) or None


def job_labels(job: ReconJob, queue: str) -> dict[str, str]:
    """Kueue's labels for the child Job: the queue, and the WorkloadPriorityClass when the
    ReconJob names one."""
    labels = job.metadata.get("labels") or {}
    result = {KUEUE_QUEUE_LABEL: queue}
    if labels.get(KUEUE_PRIORITY_LABEL):
        result[KUEUE_PRIORITY_LABEL] = str(labels[KUEUE_PRIORITY_LABEL])
    return result


def handed_over(job: ReconJob) -> bool:
    """Whether Kueue owns this job's admission: its Job exists and Kueue decides when it runs."""
    admitted = conditions.find(job.status.conditions, ConditionType.ADMITTED)
    return admitted is not None and admitted.reason in HANDED_OVER_REASONS


def owner_job_name(workload: Json) -> str | None:
    """The batch/v1 Job a Workload stands for (Kueue makes the Job its controller owner)."""
    for ref in (workload.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("kind") == "Job" and str(ref.get("apiVersion", "")).startswith("batch/"):
            return str(ref.get("name") or "") or None
    return None


def cluster_queue(workload: Json | None) -> str | None:
    admission = ((workload or {}).get("status") or {}).get("admission") or {}
    name = admission.get("clusterQueue")
    return str(name) if name else None


def eviction(workload: Json | None) -> tuple[str, str] | None:
    """Kueue's reason and message for the latest eviction (preemption included), if the
    Workload is evicted now."""
    evicted = conditions.find(conditions.of(workload), "Evicted")
    if evicted is None or evicted.status != "True":
        return None
    return evicted.reason or "Evicted", evicted.message or ""


def waiting_message(workload: Json | None, queue: str) -> str:
    """Why the job waits, in Kueue's words (the Workload's QuotaReserved=False message)."""
    if workload is None:
        return f"waiting for Kueue to admit the Job from LocalQueue {queue}"
    evicted = eviction(workload)
    if evicted is not None:
        reason, message = evicted
        return f"evicted by Kueue ({reason}): {message}".rstrip(": ")
    reserved = conditions.find(conditions.of(workload), "QuotaReserved")
    if reserved is not None and reserved.status == "False" and reserved.message:
        return f"Kueue: {reserved.message}"
    if reserved is not None and reserved.status == "True":
        return "Kueue reserved quota; waiting for the Job to be started"
    name = (workload.get("metadata") or {}).get("name", "")
    return f"Workload {name} is waiting in LocalQueue {queue}"


def _queue_of(job: ReconJob, runner_job: Json | None, default_queue: str) -> str:
    labels = ((runner_job or {}).get("metadata") or {}).get("labels") or {}
    return str(labels.get(KUEUE_QUEUE_LABEL) or queue_name(job, default_queue) or "")


def hand_over(job: ReconJob, job_name: str, queue: str, now: datetime) -> Transition:
    """Queued, with its suspended Job created: Kueue admits it from now on."""
    if job.status.phase != Phase.QUEUED or handed_over(job):
        return Transition()
    message = f"created Job {job_name} suspended in LocalQueue {queue}; waiting for Kueue"
    return (
        StatusChange(job, now)
        .set("jobName", job_name)
        .set("queuePosition", None)
        .condition(ConditionType.ADMITTED, False, WAITING, message)
        .note("HandedToKueue", message)
        .result()
    )


def admitted_message(workload: Json | None, job_name: str) -> str:
    where = cluster_queue(workload)
    told = f"admitted by Kueue (ClusterQueue {where})" if where else "admitted by Kueue"
    return f"{told}; Job {job_name}"


def from_workload(job: ReconJob, workload: Json, now: datetime) -> Transition:
    """While the job waits: Kueue's reason in the Admitted=False message; an Event when it
    changes, so `kubectl describe` shows what Kueue said and when. Once running: the
    ClusterQueue that admitted it, should the Job's event have come first."""
    if not handed_over(job):
        return Transition()
    if job.status.phase == Phase.RUNNING and cluster_queue(workload) and job.status.job_name:
        message = admitted_message(workload, job.status.job_name)
        return (
            StatusChange(job, now)
            .condition(ConditionType.ADMITTED, True, ADMITTED, message)
            .result()
        )
    if job.status.phase != Phase.QUEUED:
        return Transition()
    queue = str((workload.get("spec") or {}).get("queueName") or "")
    message = waiting_message(workload, queue)
    current = conditions.find(job.status.conditions, ConditionType.ADMITTED)
    change = StatusChange(job, now)
    if current is None or current.message != message:
        change.note(WAITING, message)
    return change.condition(ConditionType.ADMITTED, False, WAITING, message).result()


def from_job(
    job: ReconJob, runner_job: Json, workload: Json | None, default_queue: str, now: datetime
) -> Transition:
    """Queued -> Running when Kueue unsuspends the Job; Running -> Queued when Kueue
    suspends it again (preemption or eviction), without counting an attempt: `attempts`,
    `startedAt` and `jobName` keep the record of the run so far."""
    if not handed_over(job) or (runner_job.get("metadata") or {}).get("deletionTimestamp"):
        return Transition()
    suspended = bool((runner_job.get("spec") or {}).get("suspend"))
    name = str((runner_job.get("metadata") or {}).get("name", ""))
    change = StatusChange(job, now)
    if job.status.phase == Phase.QUEUED and not suspended:
        message = admitted_message(workload, name)
        change.set_phase(Phase.RUNNING).set("jobName", name)
        if job.status.started_at is None:
            change.set("startedAt", now.strftime("%Y-%m-%dT%H:%M:%SZ"))
        if job.status.attempts is None:
            change.set("attempts", 0)
        return (
            change.condition(ConditionType.ADMITTED, True, ADMITTED, message)
            .condition(ConditionType.SCHEDULED, "Unknown", "Pending", "waiting for the scheduler")
            .note("Admitted", f"{message} unsuspended")
            .result()
        )
    if job.status.phase == Phase.RUNNING and not suspended:
        # Every event of the running Job confirms Kueue's admission: a status write decided
        # from an older copy (the Workload's words while it still waited) is corrected here.
        current = conditions.find(job.status.conditions, ConditionType.ADMITTED)
        settled = current is not None and (current.status, current.reason) == ("True", ADMITTED)
        if cluster_queue(workload) or not settled:
            message = admitted_message(workload, name)
            change.condition(ConditionType.ADMITTED, True, ADMITTED, message)
        return change.result()
    if job.status.phase == Phase.RUNNING and suspended:
        evicted = eviction(workload)
        reason, detail = evicted if evicted is not None else ("Suspended", "")
        told = f"Kueue suspended Job {name} ({reason}){': ' + detail if detail else ''}"
        queue = _queue_of(job, runner_job, default_queue)
        waiting = f"{told}; waiting for Kueue to admit it again from LocalQueue {queue}"
        return (
            change.set_phase(Phase.QUEUED)
            .set("nodeName", None)
            .condition(ConditionType.ADMITTED, False, WAITING, waiting)
            .condition(ConditionType.RUNNING, False, EVICTED, told)
            .condition(ConditionType.SCHEDULED, "Unknown", EVICTED, "the runner pod was stopped")
            .note(EVICTED, f"{told}; the runner is stopped, the job queued again", warning=True)
            .result()
        )
    return Transition()


def evicted(before: ReconJob, after: ReconJob | None) -> bool:
    """Whether a step took a running job back to the queue (its runner is being stopped)."""
    return (
        after is not None
        and before.status.phase == Phase.RUNNING
        and after.status.phase == Phase.QUEUED
        and handed_over(after)
    )
