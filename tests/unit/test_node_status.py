"""Pod status as a kubelet reports it: phases, exit codes, reasons, conditions."""

from __future__ import annotations

import signal
from typing import Any

import pytest
from recon_stack.node.status import (
    ContainerState,
    Termination,
    exit_code_of,
    has_started,
    lost_states,
    pod_phase,
    pod_status,
    terminated,
)

T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T00:01:00Z"
T2 = "2026-01-01T00:02:00Z"


def pod(restart_policy: str = "Never", conditions: list[Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "n", "uid": "u"},
        "spec": {"restartPolicy": restart_policy, "containers": [{"name": "main"}]},
        "status": {"conditions": conditions or []},
    }


def running(name: str = "main") -> ContainerState:
    return ContainerState(name, "img", running_since=T0, container_id="process://42")


def ended(code: int, name: str = "main") -> ContainerState:
    return ContainerState(name, "img", termination=terminated(code, T0, T1))


def by_type(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def test_a_process_killed_by_a_signal_exits_128_plus_the_signal() -> None:
    assert exit_code_of(0) == 0
    assert exit_code_of(3) == 3
    assert exit_code_of(-signal.SIGTERM) == 143
    assert exit_code_of(-signal.SIGKILL) == 137


def test_exit_3_is_a_failed_pod_with_the_exit_code_a_failure_policy_matches() -> None:
    status = pod_status(pod(), [], [ended(3)], T0, T1)
    assert status["phase"] == "Failed"
    (main,) = status["containerStatuses"]
    assert main["state"] == {
        "terminated": {"exitCode": 3, "reason": "Error", "startedAt": T0, "finishedAt": T1}
    }
    assert main["ready"] is False
    assert status["podIP"] == status["hostIP"] == "127.0.0.1"
    conditions = by_type(status)
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["reason"] == "PodCompleted"
    assert "PodScheduled" not in conditions  # the scheduler's, left alone


def test_exit_0_completes_and_a_running_container_makes_the_pod_ready() -> None:
    done = pod_status(pod(), [], [ended(0)], T0, T1)
    assert done["phase"] == "Succeeded"
    assert done["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"

    up = pod_status(pod(), [], [running()], T0, T1)
    assert up["phase"] == "Running"
    (main,) = up["containerStatuses"]
    assert main["state"] == {"running": {"startedAt": T0}}
    assert main["ready"] is True and main["started"] is True
    assert main["containerID"] == "process://42"
    conditions = by_type(up)
    assert {k: c["status"] for k, c in conditions.items()} == {
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "ContainersReady": "True",
        "Ready": "True",
    }
    # Cleared reasons are sent as null, so a merge patch removes the stale ones.
    assert conditions["Ready"]["reason"] is None and conditions["Ready"]["message"] is None


def test_waiting_containers_keep_the_pod_pending_with_their_reason() -> None:
    reason, message = "CreateContainerConfigError", 'secret "s" not found'
    waiting = ContainerState("main", "img", waiting_reason=reason, waiting_message=message)
    status = pod_status(pod(), [], [waiting], T0, T1)
    assert status["phase"] == "Pending"
    assert status["containerStatuses"][0]["state"] == {
        "waiting": {"reason": reason, "message": message}
    }
    assert by_type(status)["Ready"]["message"] == "containers with unready status: [main]"


def test_transition_time_moves_only_when_a_condition_changes() -> None:
    first = pod_status(pod(), [], [running()], T0, T1)
    again = pod_status(pod(conditions=first["conditions"]), [], [running()], T0, T2)
    assert by_type(again)["Ready"]["lastTransitionTime"] == T1
    done = pod_status(pod(conditions=first["conditions"]), [], [ended(0)], T0, T2)
    assert by_type(done)["Ready"]["lastTransitionTime"] == T2
    assert by_type(done)["Initialized"]["lastTransitionTime"] == T1


@pytest.mark.parametrize(
    ("policy", "codes", "phase"),
    [
        ("Never", [0, 0], "Succeeded"),
        ("Never", [0, 1], "Failed"),
        ("OnFailure", [0, 0], "Succeeded"),
        ("Always", [0], "Running"),
    ],
)
def test_phase_of_stopped_containers_depends_on_the_restart_policy(
    policy: str, codes: list[int], phase: str
) -> None:
    main = [ended(c, f"c{i}") for i, c in enumerate(codes)]
    assert pod_phase([], main, policy) == phase


def test_one_container_still_running_keeps_the_pod_running() -> None:
    assert pod_phase([], [ended(1, "a"), running("b")], "Never") == "Running"


def test_a_restarting_container_keeps_the_pod_running_and_shows_its_last_run() -> None:
    backing_off = ContainerState(
        "main",
        "img",
        waiting_reason="CrashLoopBackOff",
        restart_count=2,
        last_termination=terminated(1, T0, T1),
    )
    status = pod_status(pod("OnFailure"), [], [backing_off], T0, T2)
    assert status["phase"] == "Running"
    (main,) = status["containerStatuses"]
    assert main["restartCount"] == 2
    assert main["lastState"]["terminated"]["exitCode"] == 1


def test_a_deleted_pod_ends_in_a_final_phase_whatever_its_policy() -> None:
    status = pod_status(pod("Always"), [], [ended(143)], T0, T1, restart_policy="Never")
    assert status["phase"] == "Failed"


def test_init_containers_run_first_and_a_failed_one_fails_the_pod() -> None:
    waiting_main = ContainerState("main", "img", waiting_reason="PodInitializing")
    assert pod_phase([running("init")], [waiting_main], "Never") == "Pending"
    assert pod_phase([ended(2, "init")], [waiting_main], "Never") == "Failed"
    status = pod_status(pod(), [ended(0, "init")], [running()], T0, T1)
    assert status["phase"] == "Running"
    assert status["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0


def test_a_start_failure_reads_like_a_runtimes() -> None:
    failure = Termination(128, "StartError", T0, T0, 'exec: "nope": executable file not found')
    status = pod_status(pod(), [], [ContainerState("main", "img", termination=failure)], T0, T1)
    assert status["phase"] == "Failed"
    terminated_state = status["containerStatuses"][0]["state"]["terminated"]
    assert terminated_state["reason"] == "StartError"
    assert "executable file not found" in terminated_state["message"]


def test_containers_lost_with_an_earlier_node_run_end_as_unknown() -> None:
    recorded = pod()
    recorded["spec"]["containers"] = [{"name": "a"}, {"name": "b"}, {"name": "c"}]
    recorded["status"]["containerStatuses"] = [
        {"name": "a", "state": {"running": {"startedAt": T0}}},
        {"name": "b", "state": {"terminated": {"exitCode": 0, "startedAt": T0, "finishedAt": T1}}},
        {"name": "c", "state": {"waiting": {"reason": "ContainerCreating"}}},
    ]
    assert has_started(recorded)
    assert not has_started(pod())
    init, (a, b, c) = lost_states(recorded, T2)
    assert init == []
    assert a.termination is not None and a.termination.exit_code == 137
    assert a.termination.reason == "ContainerStatusUnknown"
    assert b.termination == terminated(0, T0, T1)
    assert c.is_waiting
    assert pod_status(recorded, init, [a, b, ended(0, "c")], T0, T2)["phase"] == "Failed"
