"""Cancel, then confirm: what a change of the `recon.dev/cancel` annotation means.

Two steps, so a stray `kubectl annotate` cannot throw away hours of GPU work: a request is
recorded with an expiry, and only a confirmation while that request stands stops anything.
The decision is pure; the handler carries it out (deleting the Job, its pods and the
partial outputs) and then records `completed`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from recon_api.constants import (
    CANCEL_ANNOTATION,
    CANCEL_CONFIRMED,
    CANCEL_REQUESTED,
    ConditionType,
    Phase,
)
from recon_api.models import ReconJob

from recon_operator import conditions
from recon_operator.lifecycle import StatusChange, Transition, timestamp


class Action(StrEnum):
    NOTHING = "nothing"
    RECORD = "record"  # a request is recorded; nothing stops yet
    CANCEL = "cancel"  # stop the work and clean up, then record `completed`
    REFUSE = "refuse"  # a confirmation without a standing request
    WITHDRAW = "withdraw"
    IGNORE = "ignore"  # finished job, or a value that means nothing


@dataclass
class Decision:
    action: Action
    transition: Transition = field(default_factory=Transition)


def confirm_command(job: ReconJob) -> str:
    meta = job.metadata
    return (
        f"kubectl annotate reconjob {meta.get('name')} -n {meta.get('namespace')} "
        f"{CANCEL_ANNOTATION}={CANCEL_CONFIRMED} --overwrite"
    )


def pending_request(job: ReconJob, now: datetime) -> bool:
    """A request on record that has not expired."""
    cancel = job.status.cancel
    if cancel is None or cancel.requested_at is None:
        return False
    return cancel.expires_at is None or now <= cancel.expires_at


def decide(
    job: ReconJob, old: str | None, new: str | None, now: datetime, ttl_seconds: float
) -> Decision:
    if old == new:
        return Decision(Action.NOTHING)
    phase = job.status.phase
    change = StatusChange(job, now)
    if new is not None and phase is not None and phase.terminal:
        message = f"{CANCEL_ANNOTATION}={new} ignored: the job already {phase}"
        change.note("CancelIgnored", message)
        # A request that stood when the job finished is moot now, not pending.
        if conditions.is_true(job.status.conditions, ConditionType.CANCEL_REQUESTED):
            change.condition(ConditionType.CANCEL_REQUESTED, False, "Finished", message)
        if job.status.cancel is not None:
            change.set("cancel", None)
        return Decision(Action.IGNORE, change.result())
    if new == CANCEL_REQUESTED:
        expires = now + timedelta(seconds=ttl_seconds)
        message = f"cancel requested; confirm before {timestamp(expires)} with: "
        message += confirm_command(job)
        change.set(
            "cancel", {"requestedAt": timestamp(now), "expiresAt": timestamp(expires)}
        ).condition(ConditionType.CANCEL_REQUESTED, True, "Requested", message).note(
            "CancelRequested", message
        )
        return Decision(Action.RECORD, change.result())
    if new == CANCEL_CONFIRMED:
        if pending_request(job, now) and job.status.outputs is not None:
            # The runner has already put its outputs in place and reported them: the work is
            # done, and a finished output is never deleted.
            message = (
                f"{CANCEL_ANNOTATION}={new} ignored: the runner already finished and reported "
                "its outputs, which are kept"
            )
            change.set("cancel", None).condition(
                ConditionType.CANCEL_REQUESTED, False, "Finished", message
            ).note("CancelIgnored", message)
            return Decision(Action.IGNORE, change.result())
        if pending_request(job, now):
            return Decision(Action.CANCEL)
        lapsed = conditions.find(job.status.conditions, ConditionType.CANCEL_REQUESTED)
        if job.status.cancel is not None and job.status.cancel.requested_at is not None:
            reason = "Expired"
            expires_at = job.status.cancel.expires_at
            when = timestamp(expires_at) if expires_at else "earlier"
            message = f"cancel not confirmed in time: the request expired at {when}"
        elif lapsed is not None and lapsed.reason == "Expired":
            reason = "Expired"
            message = "cancel not confirmed in time: the request had expired"
        else:
            reason = "NotRequested"
            message = "cancel confirmed without a request"
        message += (
            f"; nothing was cancelled. Request first with {CANCEL_ANNOTATION}={CANCEL_REQUESTED}"
            " --overwrite, then confirm"
        )
        change.condition(ConditionType.CANCEL_REQUESTED, False, reason, message).note(
            "CancelRefused", message, warning=True
        )
        if job.status.cancel is not None:
            change.set("cancel", None)
        return Decision(Action.REFUSE, change.result())
    if new is None:
        if job.status.cancel is None:
            return Decision(Action.NOTHING)
        message = f"{CANCEL_ANNOTATION} annotation removed: the cancel request is withdrawn"
        change.set("cancel", None).condition(
            ConditionType.CANCEL_REQUESTED, False, "Withdrawn", message
        ).note("CancelWithdrawn", message)
        return Decision(Action.WITHDRAW, change.result())
    message = (
        f"{CANCEL_ANNOTATION}={new!r} means nothing: use {CANCEL_REQUESTED}, "
        f"then {CANCEL_CONFIRMED}"
    )
    change.note("CancelIgnored", message, warning=True)
    return Decision(Action.IGNORE, change.result())


def completed(job: ReconJob, now: datetime, removed_outputs: int) -> Transition:
    """The work is stopped and the partial outputs are gone: phase Cancelled."""
    if job.status.phase is not None and job.status.phase.terminal:
        return Transition()
    was = job.status.phase or Phase.PENDING
    message = f"cancelled while {was}; removed {removed_outputs} partial output object(s)"
    change = (
        StatusChange(job, now)
        .set_phase(Phase.CANCELLED)
        .condition(ConditionType.CANCEL_REQUESTED, False, "Confirmed", "cancel confirmed")
        .condition(ConditionType.CANCELLED, True, "Confirmed", message)
        .note("Cancelled", message)
    )
    if conditions.is_true(job.status.conditions, ConditionType.RUNNING):
        change.condition(ConditionType.RUNNING, False, "Cancelled", "the runner was stopped")
    result = change.result()
    # Outputs a runner reported while it was being stopped were removed with the partial
    # outputs; the report may not have reached this copy of the status yet, so the fields
    # are cleared unconditionally (null in a merge patch: a no-op when absent).
    result.patch.update(outputs=None, metrics=None)
    return result


def expire(job: ReconJob, now: datetime) -> Transition:
    """A request left unconfirmed past its expiry lapses, so an old request can never be
    confirmed by accident later."""
    cancel = job.status.cancel
    if cancel is None or cancel.expires_at is None or now <= cancel.expires_at:
        return Transition()
    if job.status.phase is not None and job.status.phase.terminal:
        return Transition()
    message = f"the cancel request expired at {timestamp(cancel.expires_at)} unconfirmed"
    return (
        StatusChange(job, now)
        .set("cancel", None)
        .condition(ConditionType.CANCEL_REQUESTED, False, "Expired", message)
        .note("CancelExpired", message)
        .result()
    )
