"""The real runner's process dies under it, mid-reconstruction: SIGKILLed as the kernel's
OOM killer would (retried within `retries`, then Failed with the reason), or its pod
evicted with a DisruptionTarget condition as preemption does (retried without counting
against `retries`). Each retry starts the real pipeline again from the capture and ends
with the whole result in storage, nothing of the killed attempt beside it.

The kill comes once the runner reports the refine stage: the capture is downloaded and
fused, and the mesh is not yet written, so the kill lands in the middle of the work.

Storage goes away the same way: the MinIO server of the stack is stopped while the runner
refines (it has its capture and needs storage again only for its upload), so the upload
meets the outage; started again once the runner has given up, the retry uploads the whole
result and the failed attempt leaves nothing behind."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from kubernetes import client, config
from recon_cli.cluster_demo import reconjob
from recon_stack.components import MINIO
from recon_stack.stack import Stack

from tests.reliability.runner_processes import oom_kill, runner_pids
from tests.support.e2e_release import DRAFT, Installed, example_job, upload_synthetic
from tests.support.operator_process import condition, events, exit_codes, get, jobs, pods, status
from tests.support.stack_handle import StackHandle, wait_for

# What a finished job of the example's formats (glb, obj) leaves under its output prefix.
RESULT = ["mesh.glb", "mesh.mtl", "mesh.obj", "metrics.json", "preview.png", "texture.png"]


def submit(stack: StackHandle, installed: Installed, base: str, retries: int) -> tuple[str, str]:
    """A ReconJob of the draft preset over a small synthetic capture; (name, uid)."""
    ns = installed.jobs_namespace
    name = f"{base}-{secrets.token_hex(3)}"
    job = example_job(ns, name, DRAFT)
    job["spec"]["retries"] = retries
    upload_synthetic(stack, job, "torus")
    reconjob.apply(stack, job)
    return name, str(wait_for(lambda: get(stack, ns, name)["metadata"].get("uid"), 30))


def runner_at(
    stack: StackHandle, ns: str, name: str, uid: str, stage: str = "refine", not_pid: int = 0
) -> int:
    """The pid of the job's runner (one other than ``not_pid``) once its attempt reports
    ``stage``."""

    def ready() -> int | None:
        if (status(stack, ns, name).get("progress") or {}).get("stage") != stage:
            return None
        pids = [p for p in runner_pids(uid) if p != not_pid]
        return min(pids) if pids else None

    pid: int = wait_for(ready, 300, interval=0.1, what=f"{name}'s runner at {stage}")
    return pid


def output_names(stack: StackHandle, ns: str, name: str) -> list[str]:
    out = get(stack, ns, name)["spec"]["output"]
    prefix = out["prefix"]
    objs = stack.minio_client().list_objects(out["bucket"], prefix, recursive=True)
    return sorted(str(o.object_name)[len(prefix) :] for o in objs)


def wait_succeeded(stack: StackHandle, ns: str, name: str) -> dict[str, Any]:
    stack.kubectl(
        "wait", "--for=condition=Succeeded", f"reconjob/{name}", "-n", ns, "--timeout=300s"
    )
    return status(stack, ns, name)


def assert_retried_then_succeeded(stack: StackHandle, ns: str, name: str, failed_exit: int) -> None:
    """Two attempts, the first ended with ``failed_exit`` (one PodFailed Event says so), and
    under the output prefix the second attempt's whole result, nothing of the first."""
    st = wait_succeeded(stack, ns, name)
    assert st["attempts"] == 2, st
    assert exit_codes(stack, ns, name) == sorted([0, failed_exit])
    failed_pods = [e for e in events(stack, ns, name) if e["reason"] == "PodFailed"]
    assert len(failed_pods) == 1, failed_pods
    assert f"exit code {failed_exit}" in failed_pods[0]["message"], failed_pods
    assert output_names(stack, ns, name) == RESULT
    assert st["metrics"]["faces"] > 0, st["metrics"]


def test_oom_killed_runner_is_retried_then_succeeds(
    stack: StackHandle, installed: Installed
) -> None:
    ns = installed.jobs_namespace
    name, uid = submit(stack, installed, "oom-once", retries=1)
    oom_kill(runner_at(stack, ns, name, uid))
    assert_retried_then_succeeded(stack, ns, name, 137)


def test_oom_killed_on_every_attempt_fails_when_the_retries_run_out(
    stack: StackHandle, installed: Installed
) -> None:
    ns = installed.jobs_namespace
    name, uid = submit(stack, installed, "oom-always", retries=1)
    first = runner_at(stack, ns, name, uid)
    oom_kill(first)
    oom_kill(runner_at(stack, ns, name, uid, not_pid=first))

    wait_for(lambda: status(stack, ns, name).get("phase") == "Failed", 120, what="Failed")
    st = status(stack, ns, name)
    assert st["attempts"] == 2, st
    failed = condition(stack, ns, name, "Failed")
    assert failed is not None and failed["status"] == "True"
    assert failed["reason"] == "BackoffLimitExceeded", failed
    assert "backoff limit" in failed["message"], failed
    assert exit_codes(stack, ns, name) == [137, 137]
    warnings = [e["reason"] for e in events(stack, ns, name) if e["type"] == "Warning"]
    assert "BackoffLimitExceeded" in warnings, warnings
    assert output_names(stack, ns, name) == [], "a failed job leaves no partial outputs"
    # One Job for the ReconJob, never a second one for a retry.
    assert [j["metadata"]["name"] for j in jobs(stack, ns)].count(f"{name}-recon") == 1


def test_eviction_is_retried_without_counting_against_retries(
    stack: StackHandle, installed: Installed
) -> None:
    ns = installed.jobs_namespace
    # retries=0: a counted failure would fail the Job at once, so only an uncounted
    # retry can still succeed.
    name, uid = submit(stack, installed, "evicted", retries=0)
    first = runner_at(stack, ns, name, uid)
    (pod,) = pods(stack, ns, f"recon.dev/reconjob-uid={uid}")
    pod_name = pod["metadata"]["name"]
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(stack.kubeconfig)))
    eviction: dict[str, Any] = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": pod_name, "namespace": ns},
    }
    core.create_namespaced_pod_eviction(pod_name, ns, eviction)

    def disruption_target() -> dict[str, Any] | None:
        out = stack.kubectl("get", "pod", pod_name, "-n", ns, "-o", "json", check=False)
        if out.returncode != 0:
            return None
        for cond in json.loads(out.stdout)["status"].get("conditions") or ():
            if cond["type"] == "DisruptionTarget":
                return dict(cond)
        return None

    target = wait_for(disruption_target, 10, interval=0.1, what="DisruptionTarget on the pod")
    assert target["status"] == "True" and target["reason"] == "EvictionByEvictionAPI"
    # The evicted runner got SIGTERM and the pipeline started again in a new pod.
    runner_at(stack, ns, name, uid, not_pid=first)

    st = wait_succeeded(stack, ns, name)
    assert st["phase"] == "Succeeded", st
    (job,) = [j for j in jobs(stack, ns) if j["metadata"]["name"] == f"{name}-recon"]
    assert job["spec"]["backoffLimit"] == 0
    assert not job["status"].get("failed"), job["status"]
    assert job["status"]["succeeded"] == 1
    assert output_names(stack, ns, name) == RESULT


def test_storage_down_when_the_runner_uploads_is_retried_once_back(
    stack: StackHandle, installed: Installed
) -> None:
    ns = installed.jobs_namespace
    name, uid = submit(stack, installed, "upload-outage", retries=1)
    runner_at(stack, ns, name, uid)
    # The same stack's own MinIO process, stopped as an outage stops it.
    local = Stack(Path(stack.state_dir))
    assert local.stop_component(MINIO), "MinIO was running"
    try:
        wait_for(
            lambda: exit_codes(stack, ns, name) == [75],
            240,
            what="the runner giving up on storage (exit 75)",
        )
        message = (status(stack, ns, name).get("progress") or {}).get("message", "")
        assert "unreachable while" in message and "upload" in message, message
        assert status(stack, ns, name)["phase"] == "Running", "75 is transient: retried"
    finally:
        local.start_component(MINIO)
    # No staging key of the attempt that met the outage beside the retry's result.
    assert_retried_then_succeeded(stack, ns, name, 75)
