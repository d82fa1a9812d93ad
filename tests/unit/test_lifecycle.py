"""The status a ReconJob moves through, and the Events that tell the story."""

from __future__ import annotations

from datetime import timedelta

import pytest
from recon_api.constants import ConditionType, Phase
from recon_api.models import ReconJob
from recon_operator import cancel, conditions, jobwatch, lifecycle

from tests.support.reconjobs import T0, apply_status, reconjob


def cond(job, type_):
    return conditions.find(job.status.conditions, type_)


def test_happy_path_through_validation_queue_and_admission() -> None:
    job = reconjob(generation=1)
    t = lifecycle.begin_validation(job, T0)
    assert t.patch["phase"] == "Validating"
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


def health(job: ReconJob) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
    """(status, reason, message) of Reconciling and of Stalled."""
    reconciling, stalled = cond(job, ConditionType.RECONCILING), cond(job, ConditionType.STALLED)
    assert reconciling is not None and stalled is not None, "both are always present"
    return (
        (reconciling.status, reconciling.reason, reconciling.message),
        (stalled.status, stalled.reason, stalled.message),
    )


def test_reconciling_until_queued_then_not() -> None:
    """kstatus reads Reconciling=True as InProgress: only until the capture is accepted."""
    job = reconjob()
    job = apply_status(job, lifecycle.begin_validation(job, T0).patch)
    (status, reason, _), stalled = health(job)
    assert (status, reason) == ("True", "Validating") and stalled[0] == "False"

    job = apply_status(job, lifecycle.inputs_valid(job, T0).patch)
    (status, reason, _), stalled = health(job)
    assert (status, reason) == ("False", "Queued") and stalled[0] == "False"

    job = apply_status(job, lifecycle.admitted(job, "chair-001-recon", T0).patch)
    (status, reason, _), stalled = health(job)
    assert (status, reason) == ("False", "Running") and stalled[0] == "False"


def test_waiting_for_storage_says_so_in_reconciling() -> None:
    job = apply_status(reconjob(), lifecycle.begin_validation(reconjob(), T0).patch)
    waiting = lifecycle.storage_unavailable(job, "StorageUnavailable", "cannot reach m:9000", T0)
    job = apply_status(job, waiting.patch)
    (status, _, message), _ = health(job)
    assert status == "True" and message == "waiting for storage: cannot reach m:9000"


@pytest.mark.parametrize(
    ("finish", "reason"),
    [
        (lambda job: lifecycle.inputs_invalid(job, ["images/view_000.png: missing"], T0), None),
        (lambda job: lifecycle.stalled(job, 700, T0), "Stalled"),
        (
            lambda job: jobwatch.from_job(
                job,
                {
                    "metadata": {"name": "chair-001-recon"},
                    "status": {
                        "failed": 3,
                        "conditions": [
                            {
                                "type": "Failed",
                                "status": "True",
                                "reason": "BackoffLimitExceeded",
                                "message": "Job has reached the specified backoff limit",
                            }
                        ],
                    },
                },
                T0,
            ),
            "BackoffLimitExceeded",
        ),
    ],
    ids=["invalid-input", "heartbeat-stalled", "job-failed"],
)
def test_a_failed_job_is_stalled_with_the_reason_and_message_of_failed(finish, reason) -> None:
    phase = "Validating" if reason is None else "Running"
    job = reconjob(status={"phase": phase})
    job = apply_status(job, finish(job).patch)
    assert job.status.phase == Phase.FAILED
    failed = cond(job, ConditionType.FAILED)
    (reconciling, _, _), stalled = health(job)
    assert reconciling == "False"
    assert stalled == ("True", failed.reason, failed.message)
    if reason is not None:
        assert failed.reason == reason


@pytest.mark.parametrize("phase", ["Succeeded", "Cancelled"])
def test_finished_without_failure_is_neither_reconciling_nor_stalled(phase: str) -> None:
    job = reconjob(status={"phase": "Running"})
    if phase == "Succeeded":
        done = {
            "metadata": {"name": "x"},
            "status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]},
        }
        job = apply_status(job, jobwatch.from_job(job, done, T0).patch)
    else:
        job = apply_status(job, cancel.completed(job, T0, 0).patch)
    assert job.status.phase == Phase(phase)
    (reconciling, reason, _), (stalled, _, _) = health(job)
    assert (reconciling, reason, stalled) == ("False", phase, "False")


def test_a_job_written_before_the_conditions_existed_gets_them_once() -> None:
    job = reconjob(
        status={
            "phase": "Running",
            "conditions": [
                {"type": "Admitted", "status": "True", "reason": "Admitted", "message": "created"}
            ],
        }
    )
    t = lifecycle.observe(job, T0)
    assert set(t.patch) == {"conditions"} and not t.notes
    job = apply_status(job, t.patch)
    assert [c.type for c in job.status.conditions] == ["Admitted", "Reconciling", "Stalled"]
    assert health(job)[0][0] == "False"
    assert not lifecycle.observe(job, T0), "once present and right, nothing is written"


def test_health_conditions_do_not_add_writes_to_an_unchanged_step() -> None:
    """The position pass and repeated observations stay as cheap as before."""
    job = apply_status(reconjob(), lifecycle.begin_validation(reconjob(), T0).patch)
    job = apply_status(job, lifecycle.inputs_valid(job, T0).patch)
    assert not lifecycle.inputs_valid(job, T0)
    assert set(lifecycle.queue_position(job, 2).patch) == {"queuePosition"}
