"""A confirmation that arrives once the runner has reported its outputs: the work is done,
and a finished output is never deleted. Outputs reported while the runner was being stopped
are removed with the partial outputs, so a cancelled job points at none."""

from __future__ import annotations

from datetime import timedelta

from recon_api.constants import ConditionType, Phase
from recon_operator import conditions
from recon_operator.cancel import Action, completed, decide

from tests.support.reconjobs import T0, apply_status, reconjob

TTL = 600
OUTPUTS = {"mesh": "s3://scans/chair-001/output/uid/mesh.glb"}


def requested(job):
    d = decide(job, None, "requested", T0, TTL)
    assert d.action is Action.RECORD
    return apply_status(job, d.transition.patch)


def test_confirm_after_the_runner_reported_its_outputs_is_ignored() -> None:
    job = requested(reconjob(status={"phase": "Running"}))
    job = apply_status(job, {"outputs": OUTPUTS, "metrics": {"vertices": 8}})
    d = decide(job, "requested", "confirmed", T0 + timedelta(seconds=1), TTL)
    assert d.action is Action.IGNORE
    job = apply_status(job, d.transition.patch)
    assert job.status.phase == Phase.RUNNING, "left to finish as Succeeded"
    assert job.status.cancel is None
    cond = conditions.find(job.status.conditions, ConditionType.CANCEL_REQUESTED)
    assert cond.status == "False" and cond.reason == "Finished"
    (note,) = d.transition.notes
    assert note.reason == "CancelIgnored" and "outputs" in note.message


def test_outputs_reported_while_stopping_are_not_left_in_the_status() -> None:
    job = requested(reconjob(status={"phase": "Running"}))
    d = decide(job, "requested", "confirmed", T0 + timedelta(seconds=1), TTL)
    assert d.action is Action.CANCEL
    job = apply_status(job, {"outputs": OUTPUTS, "metrics": {"vertices": 8}})
    job = apply_status(job, completed(job, T0, removed_outputs=3).patch)
    assert job.status.phase == Phase.CANCELLED
    assert job.status.outputs is None and job.status.metrics is None


def test_confirm_without_outputs_still_cancels() -> None:
    job = requested(reconjob(status={"phase": "Running"}))
    d = decide(job, "requested", "confirmed", T0 + timedelta(seconds=1), TTL)
    assert d.action is Action.CANCEL


def test_cancelled_clears_outputs_even_when_this_copy_has_not_seen_them() -> None:
    """The runner's last report may still be on its way to the operator's cache."""
    job = requested(reconjob(status={"phase": "Running"}))
    patch = completed(job, T0, removed_outputs=3).patch
    assert "outputs" in patch and patch["outputs"] is None
    assert "metrics" in patch and patch["metrics"] is None


def test_confirm_on_a_finished_job_clears_the_standing_request() -> None:
    job = requested(reconjob(status={"phase": "Running"}))
    job = apply_status(job, {"phase": "Succeeded"})
    d = decide(job, "requested", "confirmed", T0 + timedelta(seconds=1), TTL)
    assert d.action is Action.IGNORE
    job = apply_status(job, d.transition.patch)
    assert job.status.phase == Phase.SUCCEEDED and job.status.cancel is None
    assert conditions.find(job.status.conditions, ConditionType.CANCEL_REQUESTED).status == "False"
