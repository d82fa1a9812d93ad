"""The status a ReconJob moves through, and the Events that tell the story."""

from __future__ import annotations

from datetime import timedelta

from recon_api.constants import ConditionType, Phase
from recon_operator import lifecycle

from tests.support.reconjobs import T0, apply_status, reconjob


def cond(job, type_):
    return job.status.condition(type_.value)


def test_happy_path_through_validation_queue_and_admission() -> None:
    job = reconjob(generation=1)
    t = lifecycle.begin_validation(job, T0)
    assert t.patch["phase"] == "Validating" and t.patch["observedGeneration"] == 1
    assert [n.reason for n in t.notes] == ["Validating"]
    job = apply_status(job, t.patch)

    t = lifecycle.inputs_valid(job, T0)
    job = apply_status(job, t.patch)
    assert job.status.phase == Phase.QUEUED
    assert cond(job, ConditionType.INPUTS_VALID).status == "True"
    assert cond(job, ConditionType.ADMITTED).status == "False"
    assert [n.reason for n in t.notes] == ["Queued"]

    job = apply_status(job, lifecycle.queue_position(job, 3).patch)
    assert job.status.queue_position == 3
    assert not lifecycle.queue_position(job, 3), "an unchanged position is not written"

    t = lifecycle.admitted(job, "chair-001-recon", T0)
    job = apply_status(job, t.patch)
    assert job.status.phase == Phase.RUNNING
    assert job.status.queue_position is None, "the position goes once the job leaves the queue"
    assert job.status.job_name == "chair-001-recon" and job.status.started_at == T0
    assert cond(job, ConditionType.ADMITTED).status == "True"
    assert [n.reason for n in t.notes] == ["Admitted"]


def test_repeating_a_step_writes_nothing() -> None:
    job = reconjob()
    job = apply_status(job, lifecycle.begin_validation(job, T0).patch)
    assert not lifecycle.begin_validation(job, T0)


def test_unreachable_storage_keeps_validating_and_does_not_repeat_the_event() -> None:
    job = apply_status(reconjob(), lifecycle.begin_validation(reconjob(), T0).patch)
    t = lifecycle.storage_unavailable(job, "StorageUnavailable", "cannot reach minio:9000", T0)
    assert "phase" not in t.patch
    job = apply_status(job, t.patch)
    c = cond(job, ConditionType.INPUTS_VALID)
    assert (c.status, c.reason) == ("Unknown", "StorageUnavailable")
    assert "cannot reach minio:9000" in c.message
    assert t.notes and t.notes[0].warning
    again = lifecycle.storage_unavailable(
        job, "StorageUnavailable", "cannot reach minio:9000", T0 + timedelta(seconds=30)
    )
    assert not again, "a retry with the same outcome writes nothing and emits nothing"
    # ...and once storage is back, validation proceeds as usual
    job = apply_status(job, lifecycle.inputs_valid(job, T0).patch)
    assert job.status.phase == Phase.QUEUED


def test_every_problem_is_reported_at_once() -> None:
    job = apply_status(reconjob(), lifecycle.begin_validation(reconjob(), T0).patch)
    problems = ["images/view_001.png: missing", "depth/view_000.png: not 16-bit"]
    t = lifecycle.inputs_invalid(job, problems, T0)
    job = apply_status(job, t.patch)
    assert job.status.phase == Phase.FAILED and job.status.finished_at == T0
    for problem in problems:
        assert problem in cond(job, ConditionType.INPUTS_VALID).message
        assert problem in t.notes[0].message
    assert cond(job, ConditionType.FAILED).reason == "InvalidInput"


def test_a_huge_problem_leaves_the_condition_within_its_limit() -> None:
    """One 100 kB file name once made the condition message (and so the status patch) too
    long for the API server, and hid every other problem."""
    job = apply_status(reconjob(), lifecycle.begin_validation(reconjob(), T0).patch)
    problems = [
        "transforms.json: frames[0].file_path: '../" + "a" * 100_000 + "' leaves the dataset (..)",
        *(f"images/view_{i:03d}.png: not a PNG file (bad signature)" for i in range(2000)),
    ]
    t = lifecycle.inputs_invalid(job, problems, T0)
    job = apply_status(job, t.patch)  # parses with the model: message within 32768
    message = cond(job, ConditionType.INPUTS_VALID).message
    assert len(message) <= lifecycle.MAX_PROBLEMS_MESSAGE
    assert message.startswith("2001 problem(s) in the capture: transforms.json: frames[0]")
    assert "aaa' leaves the dataset (..); images/view_000.png: not a PNG file" in message
    assert message.endswith("more problems")
    assert len(t.notes[0].message) <= lifecycle.MAX_EVENT_MESSAGE


def test_a_finished_job_never_moves_again() -> None:
    job = reconjob(status={"phase": "Cancelled"})
    assert not lifecycle.begin_validation(job, T0)
    assert not lifecycle.inputs_valid(job, T0)
    assert not lifecycle.inputs_invalid(job, ["x"], T0)
    assert not lifecycle.storage_unavailable(job, "StorageUnavailable", "x", T0)
    assert not lifecycle.admitted(job, "x", T0)
    assert not lifecycle.stalled(job, 999, T0)


def test_stalled_fails_a_running_job_with_reason_stalled() -> None:
    job = reconjob(status={"phase": "Running"})
    job = apply_status(job, lifecycle.stalled(job, 700, T0).patch)
    assert job.status.phase == Phase.FAILED
    assert cond(job, ConditionType.FAILED).reason == "Stalled"
    assert "700s" in cond(job, ConditionType.FAILED).message
