"""The operator killed (SIGKILL, no goodbye) at each step of a job's life and started again,
and the API server restarted under a running operator. Nothing is lost, nothing runs twice,
and every status ends where the truth is. The operator runs with the chart's RBAC only."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config, watch
from recon_stack.components import APISERVER
from recon_stack.stack import Stack

from tests.reliability.chart_operator import chart_operator
from tests.support import captures
from tests.support.operator_process import (
    BUCKET,
    OperatorProcess,
    apply,
    condition,
    create_credentials_secret,
    events,
    get,
    jobs,
    pods,
    prepare_namespace,
    reconjob_manifest,
    status,
)
from tests.support.stack_handle import StackHandle, handle_for, wait_for

pytestmark = pytest.mark.stack

SLOTS = 2


def manifest(name: str, prefix: str, **spec: Any) -> dict[str, Any]:
    body = reconjob_manifest(name, prefix, **spec)
    body["spec"]["resources"]["gpus"] = 0  # slots, not the node's two GPUs, limit what runs
    return body


def reasons(stack: StackHandle, ns: str, name: str) -> list[str]:
    return [e["reason"] for e in events(stack, ns, name)]


def job_objects(stack: StackHandle, ns: str, name: str) -> list[dict[str, Any]]:
    return [j for j in jobs(stack, ns) if j["metadata"]["name"] == f"{name}-recon"]


def assert_ran_once(stack: StackHandle, ns: str, name: str) -> dict[str, Any]:
    st = status(stack, ns, name)
    assert st["phase"] == "Succeeded", st
    assert st["attempts"] == 1 and st["progress"]["percent"] == 100, st
    assert st["outputs"]["mesh"].endswith("/mesh.glb")
    assert len(job_objects(stack, ns, name)) == 1
    assert reasons(stack, ns, name).count("Admitted") == 1
    assert reasons(stack, ns, name).count("Succeeded") == 1
    return st


# ------------------------------------------------------------------ SIGKILL, shared stack


@pytest.fixture(scope="module")
def killed(
    stack: StackHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    ns = prepare_namespace(stack, "faults-operator")
    env = {"RECON_MAX_RUNNING_JOBS": str(SLOTS)}
    op, rbac = chart_operator(stack, ns, tmp_path_factory.mktemp("operator"), env)
    op.start()
    yield op
    stack.kubectl("delete", "reconjobs", "--all", "-n", ns, "--timeout=60s", check=False)
    op.stop()
    rbac.remove()
    stack.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_killed_while_jobs_validate_queue_and_run(
    stack: StackHandle, killed: OperatorProcess
) -> None:
    ns = killed.namespace
    client_ = stack.minio_client()
    captures.upload(client_, BUCKET, "k/sleep4/", captures.files(6))
    captures.upload(client_, BUCKET, "k/sleep12/", captures.files(6))
    captures.upload(client_, BUCKET, "k/sleep1/", captures.files(6))
    apply(stack, ns, manifest("holder", "k/sleep12/"))
    apply(stack, ns, manifest("running", "k/sleep4/"))
    wait_for(lambda: status(stack, ns, "running").get("phase") == "Running", 60)
    apply(stack, ns, manifest("queued", "k/sleep1/"))
    # its credentials Secret does not exist yet: it waits in Validating
    late = {"credentialsSecret": "late-credentials"}
    apply(stack, ns, manifest("validating", "k/sleep1/", storage=late))
    wait_for(lambda: status(stack, ns, "queued").get("queuePosition") == 1, 30)
    wait_for(
        lambda: (
            (condition(stack, ns, "validating", "InputsValid") or {}).get("reason")
            == "CredentialsMissing"
        ),
        30,
    )

    killed.kill()
    # while it is down, one job's runner finishes: only the Job records it
    wait_for(
        lambda: any(
            c["type"] == "Complete" and c["status"] == "True"
            for j in job_objects(stack, ns, "running")
            for c in j["status"].get("conditions") or ()
        ),
        60,
        what="running's Job complete while the operator is down",
    )
    assert status(stack, ns, "running")["phase"] == "Running"
    killed.start()

    wait_for(lambda: status(stack, ns, "running").get("phase") == "Succeeded", 30)
    create_credentials_secret(stack, ns, "late-credentials")
    for name in ("queued", "validating", "holder"):
        stack.kubectl(
            "wait", "--for=condition=Succeeded", f"reconjob/{name}", "-n", ns, "--timeout=120s"
        )
    for name in ("running", "queued", "validating", "holder"):
        assert_ran_once(stack, ns, name)
    assert reasons(stack, ns, "validating").count("Queued") == 1


def test_killed_as_the_job_is_created(stack: StackHandle, killed: OperatorProcess) -> None:
    """SIGKILL the moment the Job appears, before or just after the operator records it."""
    ns = killed.namespace
    captures.upload(stack.minio_client(), BUCKET, "created/sleep3/", captures.files(6))
    batch = client.BatchV1Api(config.new_client_from_config(config_file=str(stack.kubeconfig)))
    seen: dict[str, Any] = {}

    def kill_on_create() -> None:
        w = watch.Watch()
        for event in w.stream(batch.list_namespaced_job, ns, timeout_seconds=60):
            job = event["object"]
            if event["type"] == "ADDED" and job.metadata.name == "created-recon":
                killed.kill()
                seen["uid"] = job.metadata.uid
                w.stop()
                return

    killer = threading.Thread(target=kill_on_create)
    killer.start()
    time.sleep(0.5)  # the watch is open
    apply(stack, ns, manifest("created", "created/sleep3/"))
    killer.join(60)
    assert "uid" in seen, "the Job was created"
    seen["phase"] = status(stack, ns, "created").get("phase")
    killed.start()
    stack.kubectl(
        "wait", "--for=condition=Succeeded", "reconjob/created", "-n", ns, "--timeout=90s"
    )
    assert_ran_once(stack, ns, "created")
    (job,) = job_objects(stack, ns, "created")
    assert job["metadata"]["uid"] == seen["uid"], "the Job from before the kill was kept"
    print(f"killed with the Job created and the ReconJob {seen['phase']}")


def test_killed_while_cancelling(stack: StackHandle, killed: OperatorProcess) -> None:
    ns = killed.namespace
    minio = stack.minio_client()
    captures.upload(minio, BUCKET, "cancelling/partial-sleep60/", captures.files(6))
    apply(stack, ns, manifest("cancelling", "cancelling/partial-sleep60/"))
    wait_for(
        lambda: (condition(stack, ns, "cancelling", "Running") or {}).get("status") == "True", 60
    )
    uid = get(stack, ns, "cancelling")["metadata"]["uid"]
    out = f"cancelling/partial-sleep60/output/{uid}/"
    wait_for(lambda: list(minio.list_objects(BUCKET, out, recursive=True)), 30)
    stack.kubectl("annotate", "reconjob", "cancelling", "-n", ns, "recon.dev/cancel=requested")
    wait_for(lambda: (status(stack, ns, "cancelling").get("cancel") or {}).get("requestedAt"), 30)
    stack.kubectl(
        "annotate", "reconjob", "cancelling", "-n", ns, "recon.dev/cancel=confirmed", "--overwrite"
    )
    wait_for(lambda: "Cancelling" in reasons(stack, ns, "cancelling"), 30, interval=0.05)
    killed.kill()
    killed.start()

    wait_for(lambda: status(stack, ns, "cancelling").get("phase") == "Cancelled", 60)
    assert (condition(stack, ns, "cancelling", "Cancelled") or {}).get("status") == "True"
    assert pods(stack, ns, f"recon.dev/reconjob-uid={uid}") == []
    assert job_objects(stack, ns, "cancelling") == []
    assert list(minio.list_objects(BUCKET, out, recursive=True)) == []
    assert reasons(stack, ns, "cancelling").count("Cancelled") == 1


# ------------------------------------------------------------------ API server restart


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of this module's own: restarting its API server disturbs no other test."""
    local = Stack(tmp_path_factory.mktemp("apiserver-restart-stack"))
    local.up()
    try:
        yield local
    finally:
        local.down()


def test_api_server_restart_under_a_running_operator(
    own_stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    stack = handle_for(own_stack)
    ns = prepare_namespace(stack, "apiserver-restart")
    op, _ = chart_operator(stack, ns, tmp_path_factory.mktemp("operator"))
    op.start()
    try:
        captures.upload(stack.minio_client(), BUCKET, "restart/sleep6/", captures.files(6))
        apply(stack, ns, manifest("across", "restart/sleep6/"))
        wait_for(
            lambda: (condition(stack, ns, "across", "Running") or {}).get("status") == "True", 60
        )
        own_stack.stop_component(APISERVER)
        time.sleep(8)  # the runner finishes its stages while nobody can hear it
        own_stack.start_component(APISERVER)

        stack.kubectl(
            "wait", "--for=condition=Succeeded", "reconjob/across", "-n", ns, "--timeout=120s"
        )
        assert_ran_once(stack, ns, "across")
        assert op.proc is not None and op.proc.poll() is None, "the same operator process"
        # the watch is live again: a job created after the restart runs too
        apply(stack, ns, manifest("after", "restart/sleep6/"))
        stack.kubectl(
            "wait", "--for=condition=Succeeded", "reconjob/after", "-n", ns, "--timeout=90s"
        )
        assert_ran_once(stack, ns, "after")
        assert op.starts == 1
    finally:
        op.stop()
