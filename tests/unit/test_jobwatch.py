"""The ReconJob follows its Job and pods: scheduling trouble, node, attempts, outcome."""

from __future__ import annotations

from recon_api.constants import ConditionType, Phase
from recon_operator import conditions, jobwatch

from tests.support.reconjobs import T0, apply_status, reconjob

UNSCHEDULABLE = "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."


def running_job():
    return reconjob(status={"phase": "Running", "jobName": "chair-001-recon", "attempts": 0})


def pod(phase="Pending", node=None, scheduled=None, exit_code=None):
    conditions = []
    if scheduled is not None:
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "True" if scheduled is True else "False",
                "reason": None if scheduled is True else "Unschedulable",
                "message": None if scheduled is True else scheduled,
            }
        )
    status = {"phase": phase, "conditions": conditions}
    if exit_code is not None:
        status["containerStatuses"] = [{"state": {"terminated": {"exitCode": exit_code}}}]
    return {
        "metadata": {"name": "chair-001-recon-x7k2p"},
        "spec": {"nodeName": node} if node else {},
        "status": status,
    }


def job(active=0, failed=0, succeeded=0, condition=None):
    conds = [condition] if condition else []
    return {
        "metadata": {"name": "chair-001-recon"},
        "status": {"active": active, "failed": failed, "succeeded": succeeded, "conditions": conds},
    }


def test_unschedulable_pod_shows_the_schedulers_message() -> None:
    t = jobwatch.from_pod(running_job(), pod(scheduled=UNSCHEDULABLE), T0)
    rj = apply_status(running_job(), t.patch)
    c = conditions.find(rj.status.conditions, ConditionType.SCHEDULED)
    assert (c.status, c.reason, c.message) == ("False", "Unschedulable", UNSCHEDULABLE)
    assert t.notes[0].warning and UNSCHEDULABLE in t.notes[0].message
    assert not jobwatch.from_pod(rj, pod(scheduled=UNSCHEDULABLE), T0), "no repeat writes"


def test_scheduled_then_running_records_node_and_condition() -> None:
    rj = running_job()
    t = jobwatch.from_pod(rj, pod(node="gpu-node-7", scheduled=True), T0)
    rj = apply_status(rj, t.patch)
    assert rj.status.node_name == "gpu-node-7"
    assert conditions.find(rj.status.conditions, ConditionType.SCHEDULED).status == "True"
    t = jobwatch.from_pod(rj, pod("Running", node="gpu-node-7", scheduled=True), T0)
    rj = apply_status(rj, t.patch)
    assert conditions.find(rj.status.conditions, ConditionType.RUNNING).status == "True"
    assert [n.reason for n in t.notes] == ["Running"]
    assert not jobwatch.from_pod(rj, pod("Running", node="gpu-node-7", scheduled=True), T0)


def test_attempts_count_retried_pods() -> None:
    rj = apply_status(running_job(), jobwatch.from_job(running_job(), job(active=1), T0).patch)
    assert rj.status.attempts == 1
    rj = apply_status(rj, jobwatch.from_job(rj, job(active=1, failed=1), T0).patch)
    assert rj.status.attempts == 2
    assert rj.status.phase == Phase.RUNNING


def test_complete_job_succeeds_the_reconjob() -> None:
    done = job(succeeded=1, condition={"type": "Complete", "status": "True"})
    t = jobwatch.from_job(running_job(), done, T0)
    rj = apply_status(running_job(), t.patch)
    assert rj.status.phase == Phase.SUCCEEDED and rj.status.finished_at == T0
    assert conditions.find(rj.status.conditions, ConditionType.SUCCEEDED).status == "True"
    assert [n.reason for n in t.notes] == ["Succeeded"]


def test_a_job_finishing_with_an_unconfirmed_cancel_request_clears_it() -> None:
    requested = {"requestedAt": "2026-01-01T00:00:00Z", "expiresAt": "2026-01-01T00:10:00Z"}
    pending = reconjob(
        status={
            "phase": "Running",
            "jobName": "chair-001-recon",
            "cancel": requested,
            "conditions": [
                {
                    "type": "CancelRequested",
                    "status": "True",
                    "reason": "Requested",
                    "message": "confirm with recon.dev/cancel=confirmed",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
        }
    )
    done = job(succeeded=1, condition={"type": "Complete", "status": "True"})
    rj = apply_status(pending, jobwatch.from_job(pending, done, T0).patch)
    assert rj.status.phase == Phase.SUCCEEDED
    assert rj.status.cancel is None
    cancel = conditions.find(rj.status.conditions, ConditionType.CANCEL_REQUESTED)
    assert cancel.status == "False" and cancel.reason == "JobFinished"


def test_exit_code_3_reads_as_invalid_input() -> None:
    failed = job(
        failed=1,
        condition={
            "type": "Failed",
            "status": "True",
            "reason": "PodFailurePolicy",
            "message": "Container runner for pod ns/p failed with exit code 3 matching "
            "FailJob rule at index 0",
        },
    )
    rj = apply_status(running_job(), jobwatch.from_job(running_job(), failed, T0).patch)
    assert rj.status.phase == Phase.FAILED
    c = conditions.find(rj.status.conditions, ConditionType.FAILED)
    assert c.reason == "InvalidInput" and "exit code 3" in c.message


def test_retries_running_out_and_deadline_keep_the_job_controllers_reason() -> None:
    for reason in ("BackoffLimitExceeded", "DeadlineExceeded"):
        failed = job(failed=3, condition={"type": "Failed", "status": "True", "reason": reason})
        rj = apply_status(running_job(), jobwatch.from_job(running_job(), failed, T0).patch)
        assert conditions.find(rj.status.conditions, ConditionType.FAILED).reason == reason


def test_a_job_being_deleted_or_a_finished_reconjob_is_not_followed() -> None:
    deleting = job(failed=1, condition={"type": "Failed", "status": "True"})
    deleting["metadata"]["deletionTimestamp"] = "2025-01-01T12:00:00Z"
    assert not jobwatch.from_job(running_job(), deleting, T0)
    cancelled = reconjob(status={"phase": "Cancelled"})
    assert not jobwatch.from_job(cancelled, job(failed=1), T0)
    assert not jobwatch.from_pod(cancelled, pod("Failed", exit_code=143), T0)
