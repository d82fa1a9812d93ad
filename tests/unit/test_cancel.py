"""Cancel, then confirm: every case DESIGN.md lists."""

from __future__ import annotations

from datetime import timedelta

from recon_api.constants import ConditionType, Phase
from recon_operator import conditions
from recon_operator.cancel import Action, completed, decide, expire

from tests.support.reconjobs import T0, apply_status, reconjob

TTL = 600


def requested(phase: str = "Running"):
    job = reconjob(status={"phase": phase})
    d = decide(job, None, "requested", T0, TTL)
    assert d.action is Action.RECORD
    return apply_status(job, d.transition.patch), d


def test_request_records_expiry_and_says_how_to_confirm() -> None:
    job, d = requested()
    assert job.status.phase == Phase.RUNNING, "nothing stops on a request"
    assert job.status.cancel.requested_at == T0
    assert job.status.cancel.expires_at == T0 + timedelta(seconds=TTL)
    assert conditions.find(job.status.conditions, ConditionType.CANCEL_REQUESTED).status == "True"
    note = d.transition.notes[0]
    assert "recon.dev/cancel=confirmed --overwrite" in note.message
    assert "-n studio" in note.message and "chair-001" in note.message


def test_confirm_within_the_window_cancels() -> None:
    job, _ = requested()
    d = decide(job, "requested", "confirmed", T0 + timedelta(seconds=TTL - 1), TTL)
    assert d.action is Action.CANCEL
    job = apply_status(job, completed(job, T0, removed_outputs=2).patch)
    assert job.status.phase == Phase.CANCELLED
    assert conditions.find(job.status.conditions, ConditionType.CANCELLED).status == "True"
    assert conditions.find(job.status.conditions, ConditionType.RUNNING) is None or (
        conditions.find(job.status.conditions, ConditionType.RUNNING).status == "False"
    )
    assert job.status.finished_at == T0


def test_confirm_without_request_is_refused_with_a_warning() -> None:
    job = reconjob(status={"phase": "Queued"})
    d = decide(job, None, "confirmed", T0, TTL)
    assert d.action is Action.REFUSE
    assert d.transition.notes[0].warning
    assert "without a request" in d.transition.notes[0].message
    assert "phase" not in d.transition.patch


def test_confirm_after_expiry_is_refused() -> None:
    job, _ = requested()
    d = decide(job, "requested", "confirmed", T0 + timedelta(seconds=TTL + 1), TTL)
    assert d.action is Action.REFUSE
    assert "expired" in d.transition.notes[0].message
    job = apply_status(job, d.transition.patch)
    assert job.status.cancel is None
    assert (
        conditions.find(job.status.conditions, ConditionType.CANCEL_REQUESTED).reason == "Expired"
    )


def test_confirm_after_the_request_lapsed_says_it_expired() -> None:
    job, _ = requested()
    later = T0 + timedelta(seconds=TTL + 5)
    t = expire(job, later)
    assert t.notes[0].reason == "CancelExpired"
    job = apply_status(job, t.patch)
    assert job.status.cancel is None
    assert not expire(job, later), "a lapsed request is expired only once"
    d = decide(job, "requested", "confirmed", later, TTL)
    assert d.action is Action.REFUSE and "expired" in d.transition.notes[0].message


def test_removing_the_annotation_withdraws_the_request() -> None:
    job, _ = requested("Queued")
    d = decide(job, "requested", None, T0, TTL)
    assert d.action is Action.WITHDRAW
    job = apply_status(job, d.transition.patch)
    assert job.status.cancel is None
    assert (
        conditions.find(job.status.conditions, ConditionType.CANCEL_REQUESTED).reason == "Withdrawn"
    )
    # confirming afterwards no longer cancels
    assert decide(job, None, "confirmed", T0, TTL).action is Action.REFUSE


def test_a_finished_job_is_left_alone_with_an_event() -> None:
    for phase in ("Succeeded", "Failed", "Cancelled"):
        job = reconjob(status={"phase": phase})
        for old, new in ((None, "requested"), ("requested", "confirmed")):
            d = decide(job, old, new, T0, TTL)
            assert d.action is Action.IGNORE
            assert d.transition.patch == {}
            assert phase in d.transition.notes[0].message


def test_unknown_values_are_ignored_with_a_warning() -> None:
    d = decide(reconjob(status={"phase": "Running"}), None, "yes-please", T0, TTL)
    assert d.action is Action.IGNORE and d.transition.notes[0].warning


def test_cancel_while_validating_or_queued_is_allowed() -> None:
    for phase in ("Validating", "Queued", "Pending"):
        job, _ = requested(phase)
        assert decide(job, "requested", "confirmed", T0, TTL).action is Action.CANCEL
        done = apply_status(job, completed(job, T0, 0).patch)
        assert done.status.phase == Phase.CANCELLED
