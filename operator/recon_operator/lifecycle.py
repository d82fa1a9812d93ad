"""The ReconJob's next status, decided from its current one: no I/O here.

Each step returns a `Transition`: a JSON merge patch for `.status` holding only what
changes (the runner patches `.status.progress` concurrently, so the operator never sends
fields it does not own), and the Events that tell the story in `kubectl describe`.
A finished job never leaves its terminal phase.

Every step also brings kstatus's two abnormal-true conditions, `Reconciling` and
`Stalled`, in line with the phase it leaves the job in (`health`), so Flux and Argo CD
read the same story as `kubectl get` (DESIGN.md's GitOps health table).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from recon_api.constants import ConditionType, Phase
from recon_api.models import Condition, ReconJob

from recon_operator import conditions
from recon_operator.conditions import ConditionStatus
from recon_operator.queue import position_message
from recon_operator.validation import Outcome, Verdict, format_problems

# Events carry at most this much text; the full list of problems lives in the condition.
MAX_EVENT_MESSAGE = 1000
# The problems of a refused capture in a condition message (the schema allows 32768).
MAX_PROBLEMS_MESSAGE = 16384


@dataclass(frozen=True)
class Note:
    """One Kubernetes Event to emit on the ReconJob."""

    reason: str
    message: str
    warning: bool = False


@dataclass
class Transition:
    patch: dict[str, Any] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.patch or self.notes)


def timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class StatusChange:
    """Accumulates one step's changes against the job's current status."""

    def __init__(self, job: ReconJob, now: datetime) -> None:
        self.job = job
        self.now = now
        self.generation: int | None = job.metadata.get("generation")
        self._conditions: list[Condition] = list(job.status.conditions or [])
        self._conditions_changed = False
        self._patch: dict[str, Any] = {}
        self._notes: list[Note] = []

    @property
    def phase(self) -> Phase | None:
        value = self._patch.get("phase")
        return Phase(value) if value else self.job.status.phase

    def set_phase(self, phase: Phase) -> StatusChange:
        if phase == self.job.status.phase:
            return self
        self._patch["phase"] = phase.value
        if phase != Phase.QUEUED and self.job.status.queue_position is not None:
            self._patch["queuePosition"] = None
        if phase.terminal:
            self._patch["finishedAt"] = timestamp(self.now)
        if phase in (Phase.SUCCEEDED, Phase.FAILED) and self.job.status.cancel is not None:
            # A request nobody confirmed cannot apply to a finished job: say so, rather
            # than leave CancelRequested=True on it for good.
            self._patch["cancel"] = None
            self.condition(
                ConditionType.CANCEL_REQUESTED,
                False,
                "JobFinished",
                f"the job finished ({phase.value}) before the cancel request was confirmed",
            )
        return self

    def condition(
        self, type_: ConditionType, status: bool | ConditionStatus, reason: str, message: str
    ) -> StatusChange:
        current = conditions.find(self._conditions, type_)
        wanted = conditions.as_status(status)
        if (
            current is not None
            and (current.status, current.reason, current.message) == (wanted, reason, message)
            and current.observed_generation == self.generation
        ):
            return self
        self._conditions = conditions.set_condition(
            self._conditions,
            type_,
            wanted,
            reason,
            message,
            generation=self.generation,
            now=self.now,
        )
        self._conditions_changed = True
        return self

    def set(self, key: str, value: Any) -> StatusChange:
        current = self.job.status.to_api().get(key)
        if current != value:
            self._patch[key] = value
        return self

    def note(self, reason: str, message: str, *, warning: bool = False) -> StatusChange:
        self._notes.append(Note(reason, message[:MAX_EVENT_MESSAGE], warning))
        return self

    def result(self, *, refresh_health: bool = False) -> Transition:
        """The patch (`Runtime.apply` adds observedGeneration to it) and the Events.

        `Reconciling` and `Stalled` follow along with any change; a step that changes
        nothing writes nothing, unless `refresh_health` asks for them alone."""
        if self._patch or self._conditions_changed or refresh_health:
            failed = conditions.find(self._conditions, ConditionType.FAILED)
            inputs = conditions.find(self._conditions, ConditionType.INPUTS_VALID)
            for type_, (status, reason, message) in health(self.phase, failed, inputs).items():
                self.condition(type_, status, reason, message)
        patch = dict(self._patch)
        if self._conditions_changed:
            patch["conditions"] = conditions.to_api(self._conditions)
        return Transition(patch, list(self._notes))


HealthCondition = tuple[ConditionStatus, str, str]

_RECONCILING: dict[Phase, str] = {
    Phase.PENDING: "waiting for the operator to check the capture",
    Phase.VALIDATING: "checking the capture's layout and image headers in storage",
    Phase.QUEUED: "the capture is valid; the job waits for a run slot",
    Phase.RUNNING: "the child Job runs the reconstruction",
    Phase.SUCCEEDED: "the job finished: Succeeded",
    Phase.FAILED: "the job finished: Failed",
    Phase.CANCELLED: "the job finished: Cancelled",
}


def health(
    phase: Phase | None, failed: Condition | None, inputs_valid: Condition | None
) -> dict[ConditionType, HealthCondition]:
    """`Reconciling` and `Stalled` for a phase, as kstatus reads them.

    Reconciling=True (kstatus: InProgress) only before admission, like a batch/v1 Job that
    has not started; once queued the job is Current. Stalled=True (kstatus: Failed) exactly
    when the job failed, with the `Failed` condition's reason and message, so Flux shows
    why. Both are always present, False included, so a reader can tell "not reconciling"
    from "never looked at".
    """
    phase = phase or Phase.PENDING
    message = _RECONCILING[phase]
    if (
        phase == Phase.VALIDATING
        and inputs_valid is not None
        and inputs_valid.status == "Unknown"
        and inputs_valid.message
    ):
        message = f"waiting for storage: {inputs_valid.message}"
    reconciling = phase in (Phase.PENDING, Phase.VALIDATING)
    stalled: HealthCondition = ("False", "NotFailed", "the job has not failed")
    if phase == Phase.FAILED:
        stalled = ("True", "Failed", "the job failed")
        if failed is not None and failed.reason:
            stalled = ("True", failed.reason, failed.message or "")
    return {
        ConditionType.RECONCILING: (conditions.as_status(reconciling), phase.value, message),
        ConditionType.STALLED: stalled,
    }


def _finished(job: ReconJob) -> bool:
    return job.status.phase is not None and job.status.phase.terminal


def begin_validation(job: ReconJob, now: datetime) -> Transition:
    """Pending -> Validating: the capture is about to be read, no GPU requested yet."""
    if _finished(job) or job.status.phase not in (None, Phase.PENDING, Phase.VALIDATING):
        return Transition()
    change = StatusChange(job, now)
    if job.status.phase != Phase.VALIDATING:
        change.set_phase(Phase.VALIDATING).note(
            "Validating", "checking the capture's layout and image headers in storage"
        )
    return change.result()


def storage_unavailable(job: ReconJob, reason: str, message: str, now: datetime) -> Transition:
    """Storage that cannot be read is not bad input: stay Validating and say why.

    The Event is emitted only when the reason or message changes, so a retry loop with
    backoff does not flood `kubectl describe`.
    """
    if _finished(job):
        return Transition()
    change = StatusChange(job, now).set_phase(Phase.VALIDATING)
    current = conditions.find(job.status.conditions, ConditionType.INPUTS_VALID)
    if current is None or (current.reason, current.message) != (reason, message):
        change.note(reason, f"{message}; will retry", warning=True)
    change.condition(ConditionType.INPUTS_VALID, "Unknown", reason, message)
    return change.result()


def inputs_invalid(job: ReconJob, problems: Sequence[str], now: datetime) -> Transition:
    """Every problem at once, in the condition and in the Event, then Failed."""
    if _finished(job):
        return Transition()
    head = f"{len(problems)} problem(s) in the capture: "
    # Bounded whatever the capture holds: a condition message over its schema's limit
    # would make the whole status patch fail.
    summary = head + format_problems(problems, MAX_PROBLEMS_MESSAGE - len(head))
    return (
        StatusChange(job, now)
        .set_phase(Phase.FAILED)
        .condition(ConditionType.INPUTS_VALID, False, "InvalidInput", summary)
        .condition(ConditionType.FAILED, True, "InvalidInput", summary)
        .note("InvalidInput", summary, warning=True)
        .result()
    )


def storage_refused(job: ReconJob, reason: str, message: str, now: datetime) -> Transition:
    """Storage the platform does not allow (EndpointNotAllowed, InsecureStorageNotAllowed):
    only a new spec can change that, so the job fails at once, before any connection."""
    if _finished(job):
        return Transition()
    return (
        StatusChange(job, now)
        .set_phase(Phase.FAILED)
        .condition(ConditionType.INPUTS_VALID, False, reason, message)
        .condition(ConditionType.FAILED, True, reason, message)
        .note(reason, message, warning=True)
        .result()
    )


def validated(job: ReconJob, verdict: Verdict, now: datetime) -> Transition:
    """The next status once the capture check has ended, however it ended."""
    if verdict.outcome is Outcome.VALID:
        return inputs_valid(job, now)
    if verdict.outcome is Outcome.INVALID:
        return inputs_invalid(job, verdict.problems, now)
    if verdict.outcome is Outcome.REFUSED:
        return storage_refused(job, verdict.reason, verdict.message, now)
    return storage_unavailable(job, verdict.reason, verdict.message, now)


def inputs_valid(job: ReconJob, now: datetime) -> Transition:
    """Validating -> Queued; admission decides when it runs."""
    if _finished(job) or job.status.phase not in (None, Phase.PENDING, Phase.VALIDATING):
        return Transition()
    return (
        StatusChange(job, now)
        .set_phase(Phase.QUEUED)
        .condition(ConditionType.INPUTS_VALID, True, "Valid", "the capture passed every check")
        .condition(ConditionType.ADMITTED, False, "Queued", position_message(None))
        .note("Queued", "inputs are valid; waiting for a free run slot")
        .result()
    )


def observe(job: ReconJob, now: datetime) -> Transition:
    """Nothing but `Reconciling` and `Stalled`, for a job last written before they existed
    (an upgraded operator); nothing at all for one that has them right."""
    return StatusChange(job, now).result(refresh_health=True)


def queue_position(job: ReconJob, position: int | None, now: datetime | None = None) -> Transition:
    """The position, and (given ``now``) the Admitted=False message that says it in words;
    no Event, since the queue moves often and Events cost writes. None clears it for a
    moment, while the job between it and its new place moves."""
    if job.status.phase != Phase.QUEUED or job.status.queue_position == position:
        return Transition()
    if now is None:
        return Transition({"queuePosition": position})
    return (
        StatusChange(job, now)
        .set("queuePosition", position)
        .condition(ConditionType.ADMITTED, False, "Queued", position_message(position))
        .result()
    )


def admitted(job: ReconJob, job_name: str, now: datetime) -> Transition:
    """Queued -> Running: the child Job exists and holds one of the run slots."""
    if job.status.phase != Phase.QUEUED:
        return Transition()
    return (
        StatusChange(job, now)
        .set_phase(Phase.RUNNING)
        .set("jobName", job_name)
        .set("startedAt", timestamp(now))
        .set("attempts", 0)
        .condition(ConditionType.ADMITTED, True, "Admitted", f"created Job {job_name}")
        .condition(ConditionType.SCHEDULED, "Unknown", "Pending", "waiting for the scheduler")
        .note("Admitted", f"created Job {job_name}")
        .result()
    )


def stalled(job: ReconJob, silent_seconds: float, now: datetime) -> Transition:
    if job.status.phase != Phase.RUNNING:
        return Transition()
    message = f"no progress heartbeat for {int(silent_seconds)}s; the Job was deleted"
    return (
        StatusChange(job, now)
        .set_phase(Phase.FAILED)
        .condition(ConditionType.RUNNING, False, "Stalled", message)
        .condition(ConditionType.FAILED, True, "Stalled", message)
        .note("Stalled", message, warning=True)
        .result()
    )
