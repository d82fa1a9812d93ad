"""The ReconJob's status, kept in step with its child Job and the Job's pods.

The Job controller and the scheduler are the authorities here: the Job's terminal
conditions decide Succeeded/Failed (its podFailurePolicy already told invalid input from
transient trouble), and the pod's PodScheduled condition carries the scheduler's own
words, which users need to see when a GPU request cannot be met.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from recon_api.constants import ConditionType, ExitCode, Phase
from recon_api.models import Condition, ReconJob

from recon_operator import conditions
from recon_operator.lifecycle import StatusChange, Transition

Json = Mapping[str, Any]


def attempts(runner_job_status: Json) -> int:
    """Runner pods started so far: finished ones plus the one still active, if any."""
    return (
        int(runner_job_status.get("failed") or 0)
        + int(runner_job_status.get("succeeded") or 0)
        + int(runner_job_status.get("active") or 0)
    )


def failure_reason(failed: Condition) -> str:
    """A reason a user can act on: invalid input and timeouts read differently from retries
    running out."""
    reason = failed.reason or "JobFailed"
    if reason == "PodFailurePolicy" and f"exit code {ExitCode.INVALID_INPUT}" in (
        failed.message or ""
    ):
        return "InvalidInput"
    return reason


def from_job(job: ReconJob, runner_job: Json, now: datetime) -> Transition:
    """Attempts, and the terminal phase once the Job controller has decided it."""
    if job.status.phase != Phase.RUNNING:
        return Transition()
    if (runner_job.get("metadata") or {}).get("deletionTimestamp"):
        return Transition()
    change = StatusChange(job, now)
    count = attempts(runner_job.get("status") or {})
    if count > (job.status.attempts or 0):
        change.set("attempts", count)
    found = conditions.of(runner_job)
    failed = conditions.find(found, "Failed")
    name = (runner_job.get("metadata") or {}).get("name", "")
    if conditions.is_true(found, "Complete"):
        message = f"Job {name} completed"
        change.set_phase(Phase.SUCCEEDED).condition(
            ConditionType.RUNNING, False, "Completed", message
        ).condition(ConditionType.SUCCEEDED, True, "Completed", message).note("Succeeded", message)
    elif failed is not None and failed.status == "True":
        reason = failure_reason(failed)
        message = failed.message or f"Job {name} failed"
        change.set_phase(Phase.FAILED).condition(
            ConditionType.RUNNING, False, reason, message
        ).condition(ConditionType.FAILED, True, reason, message).note(reason, message, warning=True)
    return change.result()


def from_pod(job: ReconJob, pod: Json, now: datetime) -> Transition:
    """Scheduled (with the scheduler's message when it cannot place the pod), the node,
    and whether the runner process is up."""
    if job.status.phase != Phase.RUNNING:
        return Transition()
    meta = pod.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return Transition()
    pod_name = str(meta.get("name", ""))
    change = StatusChange(job, now)
    scheduled = conditions.find(conditions.of(pod), "PodScheduled")
    node = (pod.get("spec") or {}).get("nodeName")
    if scheduled is not None and scheduled.status == "False":
        reason = scheduled.reason or "Unschedulable"
        message = scheduled.message or "the scheduler cannot place the pod"
        current = conditions.find(job.status.conditions, ConditionType.SCHEDULED)
        if current is None or current.message != message:
            change.note(reason, f"pod {pod_name}: {message}", warning=True)
        change.condition(ConditionType.SCHEDULED, False, reason, message)
    elif node:
        message = f"pod {pod_name} assigned to {node}"
        if not (
            job.status.node_name == node
            and conditions.is_true(job.status.conditions, ConditionType.SCHEDULED)
        ):
            change.note("Scheduled", message)
        change.condition(ConditionType.SCHEDULED, True, "Scheduled", message)
        change.set("nodeName", node)
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Running":
        if not conditions.is_true(job.status.conditions, ConditionType.RUNNING):
            change.note("Running", f"runner pod {pod_name} started on {node}")
        change.condition(ConditionType.RUNNING, True, "PodRunning", f"pod {pod_name} is running")
    elif phase == "Failed" and conditions.is_true(job.status.conditions, ConditionType.RUNNING):
        message = f"pod {pod_name} failed{_exit_detail(pod)}"
        change.condition(ConditionType.RUNNING, False, "PodFailed", message)
        change.note("PodFailed", message, warning=True)
    return change.result()


def _exit_detail(pod: Json) -> str:
    for status in (pod.get("status") or {}).get("containerStatuses") or ():
        terminated = (status.get("state") or {}).get("terminated")
        if terminated is not None:
            return f" with exit code {terminated.get('exitCode')}"
    return ""
