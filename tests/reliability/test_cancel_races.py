"""Cancel confirmations that race the job's own life: while its Job is being created, twice
in a row, while it is queued, right as it succeeds. Whatever wins, the job ends in one
terminal phase whose conditions, Jobs, pods and outputs agree with it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client, config, watch

from tests.support import captures
from tests.support.operator_process import (
    BUCKET,
    apply,
    events,
    get,
    jobs,
    pods,
    reconjob_manifest,
    status,
)
from tests.support.stack_handle import StackHandle, wait_for

pytestmark = pytest.mark.stack

SLOTS = 3
TERMINAL = ("Succeeded", "Failed", "Cancelled")
CANCEL = "recon.dev/cancel"


@pytest.fixture(scope="module")
def operator_env() -> dict[str, str]:
    return {"RECON_MAX_RUNNING_JOBS": str(SLOTS)}


@pytest.fixture(scope="module")
def objects(stack: StackHandle) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(config.new_client_from_config(config_file=str(stack.kubeconfig)))


def annotate(objects: client.CustomObjectsApi, ns: str, name: str, value: str | None) -> None:
    body = {"metadata": {"annotations": {CANCEL: value}}}
    objects.patch_namespaced_custom_object("recon.dev", "v1alpha1", ns, "reconjobs", name, body)


def manifest_for(name: str, prefix: str) -> dict[str, Any]:
    """No GPU asked for: the node's two GPUs would otherwise cap how many runners can run,
    and three slots' worth of holders must run at once here."""
    manifest = reconjob_manifest(name, prefix)
    manifest["spec"]["resources"]["gpus"] = 0
    return manifest


def upload(stack: StackHandle, prefix: str) -> None:
    captures.upload(stack.minio_client(), BUCKET, prefix, captures.files(6))


def confirm_when(
    objects: client.CustomObjectsApi,
    ns: str,
    name: str,
    ready: Callable[[dict[str, Any]], bool],
    delay: float,
    seen: dict[str, Any],
) -> None:
    """Watch the ReconJob and confirm the cancel ``delay`` seconds after ``ready(status)``;
    ``seen`` records the status the confirmation was sent on, and ``seen["confirmed"]``
    that it was sent (or ``seen["error"]`` what stopped it)."""
    try:
        w = watch.Watch()
        for event in w.stream(
            objects.list_namespaced_custom_object,
            "recon.dev",
            "v1alpha1",
            ns,
            "reconjobs",
            field_selector=f"metadata.name={name}",
            timeout_seconds=90,
        ):
            st = event["object"].get("status") or {}
            if ready(st):
                w.stop()
                time.sleep(delay)
                seen.update(st)
                annotate(objects, ns, name, "confirmed")
                seen["confirmed"] = True
                return
    except Exception as e:  # reported by confirmations_sent in the test's thread
        seen["error"] = repr(e)


def confirmations_sent(threads: list[threading.Thread], seen: dict[str, dict[str, Any]]) -> None:
    """Each confirm thread finished and really sent its confirmation: a race the test
    never ran would otherwise pass as won."""
    for t in threads:
        t.join(120)
        assert not t.is_alive(), f"{t.name} still waiting to confirm"
    for name, what in seen.items():
        assert what.get("confirmed") is True, (name, what.get("error", "never became ready"))


def window_passed(stack: StackHandle, ns: str, tag: str) -> None:
    """Wait until the operator has admitted, run and finished a job created after the
    others settled: any late admission or status write for them comes before that, so
    checking them afterwards shows that none happened (a fixed sleep only shows that
    none happened yet)."""
    name = f"witness-{tag}"
    upload(stack, "witness/sleep1/")
    apply(stack, ns, manifest_for(name, "witness/sleep1/"))
    settle(stack, ns, [name])
    assert status(stack, ns, name)["phase"] == "Succeeded"


def outputs_under(stack: StackHandle, prefix: str) -> list[str]:
    objs = stack.minio_client().list_objects(BUCKET, prefix, recursive=True)
    return sorted(str(o.object_name) for o in objs)


def conditions_true(st: dict[str, Any]) -> set[str]:
    return {c["type"] for c in st.get("conditions") or () if c["status"] == "True"}


def assert_consistent(stack: StackHandle, ns: str, name: str) -> dict[str, Any]:
    """One terminal phase, and everything else agrees with it."""
    body = get(stack, ns, name)
    st = body["status"]
    uid = body["metadata"]["uid"]
    phase = st["phase"]
    assert phase in TERMINAL, st
    true = conditions_true(st)
    assert true & set(TERMINAL) == {phase}, (phase, true)
    assert "Running" not in true and "CancelRequested" not in true, true
    assert "queuePosition" not in st
    reasons = [e["reason"] for e in events(stack, ns, name)]
    assert sum(reasons.count(p) for p in TERMINAL) == 1, reasons
    out_prefix = f"{body['spec']['input']['prefix']}output/{uid}/"
    if phase == "Cancelled":
        assert "outputs" not in st, "a cancelled job points at no outputs"
        assert outputs_under(stack, out_prefix) == []
        assert pods(stack, ns, f"recon.dev/reconjob-uid={uid}") == []
        assert [j for j in jobs(stack, ns) if j["metadata"]["name"] == f"{name}-recon"] == []
    if phase == "Succeeded":
        kept = outputs_under(stack, out_prefix)
        assert [k.rsplit("/", 1)[1] for k in kept] == ["mesh.glb", "metrics.json"], kept
        assert st["outputs"]["mesh"] == f"s3://{BUCKET}/{out_prefix}mesh.glb"
    return st


def settle(stack: StackHandle, ns: str, names: list[str], timeout: float = 90) -> None:
    wait_for(
        lambda: all(status(stack, ns, n).get("phase") in TERMINAL for n in names),
        timeout,
        what=f"{names} terminal",
    )


def test_confirm_while_the_job_is_being_created(
    stack: StackHandle, ns: str, objects: client.CustomObjectsApi
) -> None:
    """The request is made with the ReconJob; the confirmation lands at, or just after, the
    moment the job is queued, which is when the operator creates its Job."""
    prefix = "creating/partial-sleep3/"
    upload(stack, prefix)
    delays = [0.0, 0.05, 0.1, 0.2, 0.4, 0.8]
    names = [f"creating-{i}" for i in range(len(delays))]
    seen: dict[str, dict[str, Any]] = {n: {} for n in names}
    for batch in (names[:SLOTS], names[SLOTS:]):
        threads = []
        for name in batch:
            manifest = manifest_for(name, prefix)
            manifest["metadata"]["annotations"] = {CANCEL: "requested"}
            args = (
                objects,
                ns,
                name,
                lambda st: (
                    st.get("phase") in ("Queued", "Running")
                    and bool((st.get("cancel") or {}).get("requestedAt"))
                ),
                delays[names.index(name)],
                seen[name],
            )
            t = threading.Thread(target=confirm_when, args=args, name=f"confirm {name}")
            t.start()
            threads.append(t)
            apply(stack, ns, manifest)
        confirmations_sent(threads, {n: seen[n] for n in batch})
        settle(stack, ns, batch)
    window_passed(stack, ns, "creating")
    for name in names:
        st = assert_consistent(stack, ns, name)
        assert st["phase"] == "Cancelled", (name, seen[name].get("phase"), st)


def test_confirm_twice_in_a_row(
    stack: StackHandle, ns: str, objects: client.CustomObjectsApi
) -> None:
    prefix = "twice/partial-sleep30/"
    upload(stack, prefix)
    apply(stack, ns, manifest_for("twice", prefix))
    wait_for(lambda: status(stack, ns, "twice").get("phase") == "Running", 60)
    annotate(objects, ns, "twice", "requested")
    wait_for(lambda: (status(stack, ns, "twice").get("cancel") or {}).get("requestedAt"), 30)
    annotate(objects, ns, "twice", "confirmed")
    annotate(objects, ns, "twice", None)
    annotate(objects, ns, "twice", "requested")
    annotate(objects, ns, "twice", "confirmed")
    settle(stack, ns, ["twice"])
    window_passed(stack, ns, "twice")
    st = assert_consistent(stack, ns, "twice")
    assert st["phase"] == "Cancelled", st


def test_confirm_on_a_queued_job_it_never_runs(
    stack: StackHandle, ns: str, objects: client.CustomObjectsApi
) -> None:
    upload(stack, "holder/hang/")
    holders = [f"holder-{i}" for i in range(SLOTS)]
    for name in holders:
        apply(stack, ns, manifest_for(name, "holder/hang/"))
    wait_for(lambda: all(status(stack, ns, n).get("phase") == "Running" for n in holders), 60)
    upload(stack, "queued/sleep1/")
    apply(stack, ns, manifest_for("queued", "queued/sleep1/"))
    time.sleep(1.1)  # creation timestamps have one-second resolution: FIFO needs distinct ones
    apply(stack, ns, manifest_for("behind", "queued/sleep1/"))
    wait_for(lambda: status(stack, ns, "behind").get("queuePosition") == 2, 30)
    annotate(objects, ns, "queued", "requested")
    wait_for(lambda: (status(stack, ns, "queued").get("cancel") or {}).get("requestedAt"), 30)
    annotate(objects, ns, "queued", "confirmed")
    settle(stack, ns, ["queued"], 30)
    # free a slot: the job behind it is admitted, the cancelled one never is
    stack.kubectl("delete", "reconjob", holders[0], "-n", ns, "--timeout=60s")
    settle(stack, ns, ["behind"], 60)
    st = assert_consistent(stack, ns, "queued")
    assert st["phase"] == "Cancelled" and "jobName" not in st and "startedAt" not in st, st
    assert "Admitted" not in [e["reason"] for e in events(stack, ns, "queued")]
    assert assert_consistent(stack, ns, "behind")["phase"] == "Succeeded"
    for name in holders[1:]:
        stack.kubectl("delete", "reconjob", name, "-n", ns, "--timeout=60s")


def test_confirm_right_as_the_job_succeeds(
    stack: StackHandle, ns: str, objects: client.CustomObjectsApi
) -> None:
    """Confirmations sent as the upload starts, once the runner reported its outputs, and
    once the job is Succeeded. A finished output is never deleted."""
    prefix = "finishing/sleep3/"
    upload(stack, prefix)
    triggers: dict[str, Callable[[dict[str, Any]], bool]] = {
        "at-upload": lambda st: (st.get("progress") or {}).get("stage") == "upload",
        "at-outputs": lambda st: bool(st.get("outputs")),
        "at-succeeded": lambda st: st.get("phase") == "Succeeded",
    }
    seen: dict[str, dict[str, Any]] = {n: {} for n in triggers}
    threads = []
    for name, ready in triggers.items():
        manifest = manifest_for(name, prefix)
        manifest["metadata"]["annotations"] = {CANCEL: "requested"}
        t = threading.Thread(
            target=confirm_when,
            args=(objects, ns, name, ready, 0.0, seen[name]),
            name=f"confirm {name}",
        )
        t.start()
        threads.append(t)
        apply(stack, ns, manifest)
    confirmations_sent(threads, seen)
    settle(stack, ns, list(triggers))
    window_passed(stack, ns, "finishing")
    for name in triggers:
        st = assert_consistent(stack, ns, name)
        if seen[name].get("outputs"):
            assert st["phase"] == "Succeeded", (name, "outputs were reported", st)
