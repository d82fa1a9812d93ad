"""The operator killed (SIGKILL, no goodbye) at each step of a job's life and started again,
and the API server restarted under a running operator. Nothing is lost, nothing runs twice,
and every status ends where the truth is. The operator runs with the chart's RBAC only."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config, watch
from recon_stack.components import APISERVER
from recon_stack.stack import Stack

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
from tests.support.standin_runner import gate_file

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


def assert_ran_once(
    stack: StackHandle, ns: str, name: str, admitted_events: tuple[int, ...] = (1,)
) -> dict[str, Any]:
    """Succeeded from one attempt and one Job. `admitted_events`: the counts of `Admitted`
    Events allowed; (0, 1) where a kill may land between the status write that records the
    admission and the Event that tells of it (an Event is posted after its status write, so
    a kill there loses it; the status condition is the record, and it is never doubled)."""
    st = status(stack, ns, name)
    assert st["phase"] == "Succeeded", st
    assert st["attempts"] == 1 and st["progress"]["percent"] == 100, st
    assert st["outputs"]["mesh"].endswith("/mesh.glb")
    assert len(job_objects(stack, ns, name)) == 1
    assert reasons(stack, ns, name).count("Admitted") in admitted_events
    assert reasons(stack, ns, name).count("Succeeded") == 1
    return st


# ------------------------------------------------------------------ SIGKILL, shared stack


@pytest.fixture(scope="module")
def operator_env() -> dict[str, str]:
    return {"RECON_MAX_RUNNING_JOBS": str(SLOTS)}


@pytest.fixture(scope="module")
def killed(operator: OperatorProcess) -> OperatorProcess:
    """The module's operator, to be killed and started again."""
    return operator


def open_gate(stack: StackHandle, ns: str, name: str) -> None:
    """Let a `gate` stand-in go on to its stages and finish."""
    gate = gate_file(get(stack, ns, name)["metadata"]["uid"])
    gate.parent.mkdir(parents=True, exist_ok=True)
    gate.touch()


def test_killed_while_jobs_validate_queue_and_run(
    stack: StackHandle, killed: OperatorProcess
) -> None:
    ns = killed.namespace
    client_ = stack.minio_client()
    # "holder" and "running" fill both slots and finish only when the test opens their
    # gates, so "queued" waits however slowly the machine runs.
    captures.upload(client_, BUCKET, "k/gate/", captures.files(6))
    captures.upload(client_, BUCKET, "k/sleep1/", captures.files(6))
    apply(stack, ns, manifest("holder", "k/gate/"))
    apply(stack, ns, manifest("running", "k/gate/"))
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
    open_gate(stack, ns, "running")
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
    assert status(stack, ns, "queued")["phase"] == "Queued"
    assert status(stack, ns, "validating")["phase"] == "Validating"
    killed.start()

    wait_for(lambda: status(stack, ns, "running").get("phase") == "Succeeded", 30)
    create_credentials_secret(stack, ns, "late-credentials")
    open_gate(stack, ns, "holder")
    for name in ("queued", "validating", "holder"):
        stack.kubectl(
            "wait", "--for=condition=Succeeded", f"reconjob/{name}", "-n", ns, "--timeout=120s"
        )
    for name in ("running", "queued", "validating", "holder"):
        assert_ran_once(stack, ns, name)
    assert reasons(stack, ns, "validating").count("Queued") == 1


def test_killed_as_the_job_is_created(stack: StackHandle, killed: OperatorProcess) -> None:
    """SIGKILL the moment the Job appears, before the operator records the admission.

    The watch that sees the Job and the operator's own status write race: when the write
    wins, that try did not reach the moment this test is about, so it tries again with a
    new job (every try must still run exactly once), and fails if none of three did."""
    ns = killed.namespace
    batch = client.BatchV1Api(config.new_client_from_config(config_file=str(stack.kubeconfig)))
    reached: list[str] = []
    for attempt in range(3):
        name = f"created-{attempt}"
        prefix = f"{name}/sleep3/"
        captures.upload(stack.minio_client(), BUCKET, prefix, captures.files(6))
        # Watching from the list's resourceVersion, the watch sees every Job created after
        # this line, however late its connection opens.
        since = batch.list_namespaced_job(ns).metadata.resource_version
        seen: dict[str, Any] = {}

        def kill_on_create(
            job_name: str = f"{name}-recon", since: str = since, seen: dict[str, Any] = seen
        ) -> None:
            w = watch.Watch()
            for event in w.stream(
                batch.list_namespaced_job, ns, resource_version=since, timeout_seconds=60
            ):
                job = event["object"]
                if event["type"] == "ADDED" and job.metadata.name == job_name:
                    killed.kill()
                    seen["uid"] = job.metadata.uid
                    w.stop()
                    return

        killer = threading.Thread(target=kill_on_create)
        killer.start()
        apply(stack, ns, manifest(name, prefix))
        killer.join(60)
        # The operator is dead: what the status says now is what it had recorded at the kill.
        at_kill = status(stack, ns, name) if "uid" in seen else {}
        before_admission = (
            at_kill.get("phase") == "Queued"
            and "jobName" not in at_kill
            and "Admitted" not in reasons(stack, ns, name)
        )
        killed.start()
        assert "uid" in seen, "the Job was created"
        stack.kubectl(
            "wait", "--for=condition=Succeeded", f"reconjob/{name}", "-n", ns, "--timeout=90s"
        )
        # Killed before the admission was recorded, the restarted operator records it and
        # tells of it once; killed later, between the status write and its Event, the Event
        # went with the operator (that try then does not count, below).
        assert_ran_once(stack, ns, name, (1,) if before_admission else (0, 1))
        (job,) = job_objects(stack, ns, name)
        assert job["metadata"]["uid"] == seen["uid"], "the Job from before the kill was kept"
        if before_admission:
            reached.append(name)
            break
    assert reached, "in three tries the kill never landed before the admission was recorded"


def test_killed_while_cancelling(stack: StackHandle, killed: OperatorProcess) -> None:
    ns = killed.namespace
    minio = stack.minio_client()
    # slowstop: the runner takes 8 s to exit after SIGTERM, so the kill below lands while
    # the cancel is still waiting for the pod to go.
    prefix = "cancelling/partial-slowstop-sleep60/"
    captures.upload(minio, BUCKET, prefix, captures.files(6))
    apply(stack, ns, manifest("cancelling", prefix))
    wait_for(
        lambda: (condition(stack, ns, "cancelling", "Running") or {}).get("status") == "True", 60
    )
    uid = get(stack, ns, "cancelling")["metadata"]["uid"]
    out = f"{prefix}output/{uid}/"
    wait_for(lambda: list(minio.list_objects(BUCKET, out, recursive=True)), 30)
    stack.kubectl("annotate", "reconjob", "cancelling", "-n", ns, "recon.dev/cancel=requested")
    wait_for(lambda: (status(stack, ns, "cancelling").get("cancel") or {}).get("requestedAt"), 30)
    stack.kubectl(
        "annotate", "reconjob", "cancelling", "-n", ns, "recon.dev/cancel=confirmed", "--overwrite"
    )
    wait_for(lambda: "Cancelling" in reasons(stack, ns, "cancelling"), 30, interval=0.05)
    killed.kill()
    # Killed mid-cancel: not yet Cancelled, the runner's pod still there, outputs not cleaned.
    assert status(stack, ns, "cancelling").get("phase") != "Cancelled"
    assert pods(stack, ns, f"recon.dev/reconjob-uid={uid}") != []
    assert list(minio.list_objects(BUCKET, out, recursive=True)) != []
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
    op = OperatorProcess.under_chart_rbac(stack, ns, tmp_path_factory.mktemp("operator"))
    op.start()
    try:
        minio = stack.minio_client()
        captures.upload(minio, BUCKET, "restart/gate/", captures.files(6))
        captures.upload(minio, BUCKET, "restart/sleep6/", captures.files(6))
        apply(stack, ns, manifest("across", "restart/gate/"))
        wait_for(
            lambda: (condition(stack, ns, "across", "Running") or {}).get("status") == "True", 60
        )
        uid = get(stack, ns, "across")["metadata"]["uid"]
        own_stack.stop_component(APISERVER)
        # the runner does all its stages while nobody can hear it: its last output is up
        gate_file(uid).parent.mkdir(parents=True, exist_ok=True)
        gate_file(uid).touch()
        wait_for(
            lambda: any(
                str(o.object_name).endswith("/metrics.json")
                for o in minio.list_objects(BUCKET, f"restart/gate/output/{uid}/", recursive=True)
            ),
            60,
            what="the runner's outputs uploaded while the API server is down",
        )
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
