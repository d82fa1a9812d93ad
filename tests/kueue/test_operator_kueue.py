"""Kueue admission with the real Kueue (built from its module, its own manifests) on the
stack: ReconJobs labelled with a LocalQueue are admitted by Kueue within its GPU quota,
wait with Kueue's reason beyond it, go back to Queued when a higher-priority workload
preempts them (no retry counted, partial outputs removed) and still succeed later, can be
cancelled while Kueue holds them; a ReconJob without the label keeps the operator's queue.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import captures
from tests.support.operator_process import (
    BUCKET,
    apply,
    condition,
    events,
    get,
    reconjob_manifest,
    status,
)
from tests.support.stack_handle import wait_for
from tests.support.standin_runner import SIGNAL_DIR, gate_file

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"


def submit(stack, ns, name, words="gate", *, queue="recon", priority="recon-low"):
    prefix = f"{name}/{words}/"
    captures.upload(stack.minio_client(), BUCKET, prefix, captures.files(6))
    manifest = reconjob_manifest(name, prefix)
    labels = {}
    if queue:
        labels[QUEUE_LABEL] = queue
        labels[PRIORITY_LABEL] = priority
    manifest["metadata"]["labels"] = labels
    apply(stack, ns, manifest)
    return wait_for(lambda: get(stack, ns, name)["metadata"].get("uid"), 10)


def phase(stack, ns, name):
    return status(stack, ns, name).get("phase")


def admitted(stack, ns, name) -> dict[str, Any]:
    return condition(stack, ns, name, "Admitted") or {}


def explained(stack, ns, name, check, timeout, what):
    """wait_for, failing with the ReconJob's status and its Workload's, which say why."""
    try:
        return wait_for(check, timeout, what=what)
    except pytest.fail.Exception:
        details = {"status": status(stack, ns, name), "workload": workload(stack, ns, name)}
        pytest.fail(f"timed out waiting for {what}:\n{json.dumps(details, indent=1)}")


def wait_phase(stack, ns, name, wanted, timeout=90):
    check = lambda: phase(stack, ns, name) == wanted  # noqa: E731
    explained(stack, ns, name, check, timeout, f"{name} {wanted}")
    return status(stack, ns, name)


def wait_running_pod(stack, ns, name, timeout=90):
    """The runner pod is up (the ReconJob's Running condition, set from the pod)."""
    check = lambda: (condition(stack, ns, name, "Running") or {}).get("status") == "True"  # noqa: E731
    explained(stack, ns, name, check, timeout, f"{name}'s runner running")


def open_gate(uid):
    SIGNAL_DIR.mkdir(parents=True, exist_ok=True)
    gate_file(uid).write_text("go\n")


def job(stack, ns, name) -> dict[str, Any]:
    out = stack.kubectl("get", "job", f"{name}-recon", "-n", ns, "-o", "json").stdout
    result: dict[str, Any] = json.loads(out)
    return result


def workload(stack, ns, name) -> dict[str, Any] | None:
    """Kueue's Workload for the ReconJob's Job (Kueue makes the Job its owner)."""
    out = stack.kubectl("get", "workloads.kueue.x-k8s.io", "-n", ns, "-o", "json").stdout
    for item in json.loads(out)["items"]:
        for ref in item["metadata"].get("ownerReferences") or ():
            if ref["kind"] == "Job" and ref["name"] == f"{name}-recon":
                return dict(item)
    return None


def keys(stack, prefix):
    client = stack.minio_client()
    return sorted(o.object_name for o in client.list_objects(BUCKET, prefix, recursive=True))


def test_admitted_by_kueue_within_quota(stack, kueue_operator):
    ns = kueue_operator.namespace
    uid = submit(stack, ns, "within")
    wait_running_pod(stack, ns, "within")
    st = status(stack, ns, "within")
    assert st["phase"] == "Running"
    # The ClusterQueue that admitted it is named (from the Workload, whose event may come
    # after the Job's).
    cond = wait_for(
        lambda: (
            "recon-gpu" in admitted(stack, ns, "within").get("message", "")
            and admitted(stack, ns, "within")
        ),
        30,
        what="the ClusterQueue in within's Admitted condition",
    )
    assert (cond["status"], cond["reason"]) == ("True", "AdmittedByKueue")
    child = job(stack, ns, "within")
    assert child["metadata"]["labels"][QUEUE_LABEL] == "recon"
    assert child["spec"]["suspend"] is False, "Kueue unsuspended the Job"
    wl = workload(stack, ns, "within")
    assert wl is not None and wl["status"]["admission"]["clusterQueue"] == "recon-gpu"
    told = [e["reason"] for e in events(stack, ns, "within")]
    assert told.index("HandedToKueue") < told.index("Admitted")

    open_gate(uid)
    st = wait_phase(stack, ns, "within", "Succeeded")
    assert st["attempts"] == 1


def test_waits_beyond_quota_then_preempted_by_higher_priority(stack, kueue_operator):
    ns = kueue_operator.namespace
    low = submit(stack, ns, "low", "gate-partial")
    wait_running_pod(stack, ns, "low")
    out_prefix = f"low/gate-partial/output/{low}/"
    wait_for(lambda: keys(stack, out_prefix), 30, what="low's partial output written")
    before = status(stack, ns, "low")

    # Beyond the quota: Queued, with Kueue's own reason.
    waiting = submit(stack, ns, "waiting")
    check = lambda: "insufficient" in admitted(stack, ns, "waiting").get("message", "")  # noqa: E731
    explained(stack, ns, "waiting", check, 60, "Kueue's reason in waiting's Admitted condition")
    st = status(stack, ns, "waiting")
    cond = admitted(stack, ns, "waiting")
    assert st["phase"] == "Queued"
    assert (cond["status"], cond["reason"]) == ("False", "WaitingForKueue")
    assert "nvidia.com/gpu" in cond["message"]
    assert "queuePosition" not in st, "Kueue, not the operator, orders its queue"
    assert job(stack, ns, "waiting")["spec"]["suspend"] is True

    # A higher-priority workload preempts the running one.
    high = submit(stack, ns, "high", priority="recon-high")
    st = wait_phase(stack, ns, "low", "Queued", 90)
    cond = admitted(stack, ns, "low")
    assert (cond["status"], cond["reason"]) == ("False", "WaitingForKueue")
    running = condition(stack, ns, "low", "Running") or {}
    assert (running["status"], running["reason"]) == ("False", "EvictedByKueue")
    assert st["attempts"] == before["attempts"], "a preemption is no retry"
    assert st["startedAt"] == before["startedAt"] and st["jobName"] == before["jobName"]
    wait_for(lambda: (SIGNAL_DIR / f"{low}.sigterm").exists(), 60, what="low's runner SIGTERM")
    wait_for(
        lambda: "PartialOutputsRemoved" in [e["reason"] for e in events(stack, ns, "low")],
        60,
        what="low's partial outputs removed",
    )
    assert keys(stack, out_prefix) == []
    wait_running_pod(stack, ns, "high")
    assert phase(stack, ns, "waiting") == "Queued"

    # Everything finishes: the preempted job runs again and succeeds.
    for uid in (high, waiting, low):
        open_gate(uid)
    for name in ("high", "waiting", "low"):
        wait_phase(stack, ns, name, "Succeeded", 180)
    final = status(stack, ns, "low")
    assert final["attempts"] == before["attempts"], "the preempted run cost no attempt"
    assert final["outputs"]["mesh"].endswith("mesh.glb")
    told = [e["reason"] for e in events(stack, ns, "low")]
    assert "EvictedByKueue" in told and told.count("Admitted") == 2


def test_cancel_then_confirm_while_kueue_holds_the_job(stack, kueue_operator):
    ns = kueue_operator.namespace
    holder = submit(stack, ns, "holder")
    wait_running_pod(stack, ns, "holder")
    submit(stack, ns, "held")
    check = lambda: "insufficient" in admitted(stack, ns, "held").get("message", "")  # noqa: E731
    explained(stack, ns, "held", check, 60, "held waits in Kueue")
    stack.kubectl("annotate", "reconjob", "held", "-n", ns, "recon.dev/cancel=requested")
    wait_for(
        lambda: (condition(stack, ns, "held", "CancelRequested") or {}).get("status") == "True",
        30,
    )
    assert phase(stack, ns, "held") == "Queued"
    stack.kubectl(
        "annotate", "reconjob", "held", "-n", ns, "recon.dev/cancel=confirmed", "--overwrite"
    )
    st = wait_phase(stack, ns, "held", "Cancelled", 60)
    assert (condition(stack, ns, "held", "Cancelled") or {}).get("status") == "True"
    assert "attempts" not in st or st["attempts"] == 0
    wait_for(lambda: workload(stack, ns, "held") is None, 60, what="held's Workload gone")
    gone = stack.kubectl("get", "job", "held-recon", "-n", ns, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr

    open_gate(holder)
    wait_phase(stack, ns, "holder", "Succeeded", 120)


def test_job_without_the_label_keeps_the_operators_queue(stack, kueue_operator):
    ns = kueue_operator.namespace
    kueue_job = submit(stack, ns, "kueue-held")
    wait_running_pod(stack, ns, "kueue-held")

    # maxRunningJobs is 1 and counts only the operator's own jobs: this one starts at once
    # beside the Kueue job, and the next one waits in the operator's queue.
    first = submit(stack, ns, "plain-1", queue=None)
    wait_running_pod(stack, ns, "plain-1")
    cond = admitted(stack, ns, "plain-1")
    assert (cond["status"], cond["reason"]) == ("True", "Admitted")
    child = job(stack, ns, "plain-1")
    assert QUEUE_LABEL not in child["metadata"]["labels"]
    assert not child["spec"].get("suspend")
    assert workload(stack, ns, "plain-1") is None, "Kueue leaves unlabelled Jobs alone"

    second = submit(stack, ns, "plain-2", queue=None)
    wait_for(
        lambda: status(stack, ns, "plain-2").get("queuePosition") == 1,
        60,
        what="plain-2 at position 1 of the operator's queue",
    )
    assert admitted(stack, ns, "plain-2")["reason"] == "Queued"

    for uid in (kueue_job, first, second):
        open_gate(uid)
    for name in ("kueue-held", "plain-1", "plain-2"):
        wait_phase(stack, ns, name, "Succeeded", 120)
