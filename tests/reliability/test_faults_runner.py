"""The runner's process dies under it: SIGKILLed as the OOM killer would (retried within
`retries`, then Failed with the reason), or its pod is evicted with a DisruptionTarget
condition as preemption does (retried without counting against `retries`). The operator
runs with the chart's RBAC only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config

from tests.reliability.chart_operator import running_chart_operator
from tests.reliability.runner_processes import oom_kill, runner_pids
from tests.support import captures
from tests.support.operator_process import (
    BUCKET,
    apply,
    condition,
    events,
    get,
    jobs,
    pods,
    reconjob_manifest,
    status,
)
from tests.support.stack_handle import StackHandle, wait_for
from tests.support.standin_runner import gate_file

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def ns(stack: StackHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log_dir = tmp_path_factory.mktemp("operator")
    with running_chart_operator(stack, "faults-runner", log_dir) as op:
        yield op.namespace


def start(stack: StackHandle, ns: str, name: str, words: str, retries: int) -> str:
    prefix = f"{name}/{words}/"
    captures.upload(stack.minio_client(), BUCKET, prefix, captures.files(6))
    apply(stack, ns, reconjob_manifest(name, prefix, retries=retries))
    wait_for(lambda: status(stack, ns, name).get("phase") == "Running", 60, what=f"{name} Running")
    return str(get(stack, ns, name)["metadata"]["uid"])


def open_gate(uid: str) -> None:
    """Let the job's `gate` stand-in (this attempt and any later one) finish."""
    gate_file(uid).parent.mkdir(parents=True, exist_ok=True)
    gate_file(uid).touch()


def next_runner(uid: str, not_pid: int | None = None, timeout: float = 90) -> int:
    """The pid of the job's runner process, once one other than ``not_pid`` runs."""
    pids: list[int] = wait_for(
        lambda: [p for p in runner_pids(uid) if p != not_pid],
        timeout,
        interval=0.1,
        what=f"a runner process for {uid}",
    )
    return min(pids)


def exit_codes(stack: StackHandle, ns: str, uid: str) -> list[int]:
    codes = []
    for pod in pods(stack, ns, f"recon.dev/reconjob-uid={uid}"):
        for cs in pod["status"].get("containerStatuses") or ():
            terminated = (cs.get("state") or {}).get("terminated")
            if terminated:
                codes.append(int(terminated["exitCode"]))
    return sorted(codes)


def test_oom_killed_runner_is_retried_within_retries_then_failed(
    stack: StackHandle, ns: str
) -> None:
    # Both jobs allow one retry. "once" is killed on its first attempt only; "always" on
    # both, so its retries run out. Their runners wait at a gate, so none can finish
    # before it is killed, however slowly the machine runs; "once" is let through after.
    once = start(stack, ns, "oom-once", "gate", retries=1)
    always = start(stack, ns, "oom-always", "gate", retries=1)
    first_once, first_always = next_runner(once), next_runner(always)
    oom_kill(first_once)
    open_gate(once)
    oom_kill(first_always)
    oom_kill(next_runner(always, not_pid=first_always))

    stack.kubectl(
        "wait", "--for=condition=Succeeded", "reconjob/oom-once", "-n", ns, "--timeout=120s"
    )
    st = status(stack, ns, "oom-once")
    assert st["phase"] == "Succeeded" and st["attempts"] == 2, st
    assert st["outputs"]["mesh"].endswith("mesh.glb")
    assert exit_codes(stack, ns, once) == [0, 137]
    failed_pods = [e for e in events(stack, ns, "oom-once") if e["reason"] == "PodFailed"]
    assert len(failed_pods) == 1 and "exit code 137" in failed_pods[0]["message"], failed_pods

    wait_for(lambda: status(stack, ns, "oom-always").get("phase") == "Failed", 90)
    st = status(stack, ns, "oom-always")
    assert st["attempts"] == 2, st
    failed = condition(stack, ns, "oom-always", "Failed")
    assert failed is not None and failed["status"] == "True"
    assert failed["reason"] == "BackoffLimitExceeded", failed
    assert "backoff limit" in failed["message"], failed
    assert exit_codes(stack, ns, always) == [137, 137]
    warnings = [e for e in events(stack, ns, "oom-always") if e["type"] == "Warning"]
    assert "BackoffLimitExceeded" in [e["reason"] for e in warnings]
    # one Job per ReconJob, never a second one for a retry
    names = sorted(j["metadata"]["name"] for j in jobs(stack, ns))
    assert names == ["oom-always-recon", "oom-once-recon"]


def core_api(stack: StackHandle) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=str(stack.kubeconfig)))


def test_eviction_is_retried_without_counting_against_retries(stack: StackHandle, ns: str) -> None:
    # retries=0: a counted failure would fail the Job at once, so only an uncounted
    # retry can still succeed.
    uid = start(stack, ns, "evicted", "gate", retries=0)  # finishes only once let through
    first = next_runner(uid)
    (pod,) = pods(stack, ns, f"recon.dev/reconjob-uid={uid}")
    name = pod["metadata"]["name"]
    eviction: dict[str, Any] = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": ns},
    }
    core_api(stack).create_namespaced_pod_eviction(name, ns, eviction)

    def disruption_target() -> dict[str, Any] | None:
        out = stack.kubectl("get", "pod", name, "-n", ns, "-o", "json", check=False)
        if out.returncode != 0:
            return None
        for cond in json.loads(out.stdout)["status"].get("conditions") or ():
            if cond["type"] == "DisruptionTarget":
                return dict(cond)
        return None

    target = wait_for(disruption_target, 10, interval=0.1, what="DisruptionTarget on the pod")
    assert target["status"] == "True" and target["reason"] == "EvictionByEvictionAPI"
    second = next_runner(uid, not_pid=first)
    assert second != first
    open_gate(uid)

    stack.kubectl(
        "wait", "--for=condition=Succeeded", "reconjob/evicted", "-n", ns, "--timeout=120s"
    )
    st = status(stack, ns, "evicted")
    assert st["phase"] == "Succeeded", st
    (job,) = [j for j in jobs(stack, ns) if j["metadata"]["name"] == "evicted-recon"]
    assert job["spec"]["backoffLimit"] == 0
    assert not job["status"].get("failed"), job["status"]
    assert job["status"]["succeeded"] == 1
