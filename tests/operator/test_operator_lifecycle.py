"""A ReconJob from `kubectl apply` to Succeeded, as a user sees it: status, printer columns,
Events, progress moving forward, and the child Job the operator made."""

from __future__ import annotations

import threading
import time

from tests.support import captures
from tests.support.operator_process import (
    BUCKET,
    apply,
    events,
    get,
    jobs,
    reconjob_manifest,
    status,
)
from tests.support.stack_handle import wait_for


def watch_progress(stack, ns, name, seen, done):
    while not done.is_set():
        progress = status(stack, ns, name).get("progress") or {}
        if "percent" in progress:
            seen.append(progress["percent"])
        time.sleep(0.2)


def test_apply_to_succeeded(stack, operator):
    NS = operator.namespace
    captures.upload(stack.minio_client(), BUCKET, "chair/sleep4/", captures.files(6))
    seen: list[int] = []
    done = threading.Event()
    apply(stack, NS, reconjob_manifest("chair", "chair/sleep4/"))
    watcher = threading.Thread(target=watch_progress, args=(stack, NS, "chair", seen, done))
    watcher.start()
    try:
        stack.kubectl(
            "wait", "--for=condition=Succeeded", "reconjob/chair", "-n", NS, "--timeout=90s"
        )
    finally:
        done.set()
        watcher.join()

    body = get(stack, NS, "chair")
    st = body["status"]
    assert st["phase"] == "Succeeded"
    assert st["progress"]["percent"] == 100
    assert st["jobName"] == "chair-recon"
    assert st["nodeName"] == stack.node_name
    assert st["attempts"] == 1
    assert st["observedGeneration"] == 1
    assert st["startedAt"] <= st["finishedAt"]
    assert st["outputs"]["mesh"].startswith(f"s3://{BUCKET}/chair/sleep4/output/")
    assert "queuePosition" not in st
    conds = {c["type"]: c for c in st["conditions"]}
    for type_ in ("InputsValid", "Admitted", "Scheduled", "Succeeded"):
        assert conds[type_]["status"] == "True", conds[type_]
        assert conds[type_]["observedGeneration"] == 1
    assert conds["Running"]["status"] == "False" and conds["Running"]["reason"] == "Completed"
    # operator bookkeeping stays out of the status and in its own annotations
    assert set(st) <= {
        "phase", "progress", "conditions", "jobName", "nodeName", "attempts", "startedAt",
        "finishedAt", "outputs", "metrics", "observedGeneration",
    }  # fmt: skip
    assert "recon.dev/cleanup" in body["metadata"]["finalizers"]
    for key in body["metadata"].get("annotations") or {}:
        assert key.startswith(("kopf.recon.dev/", "kubectl.kubernetes.io/")), key

    # progress moved forward, through several values, never back
    assert len(set(seen)) >= 3, seen
    assert seen == sorted(seen), seen

    reasons = [e["reason"] for e in events(stack, NS, "chair")]
    for expected in ("Validating", "Queued", "Admitted", "Scheduled", "Running", "Succeeded"):
        assert expected in reasons, reasons
    assert reasons.index("Validating") < reasons.index("Queued") < reasons.index("Admitted")

    table = stack.kubectl("get", "reconjobs", "-n", NS).stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "PROGRESS", "STAGE", "QUEUE", "AGE"]
    assert table[1].split()[:4] == ["chair", "Succeeded", "100", "upload"]
    wide = stack.kubectl("get", "reconjobs", "-n", NS, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-2:] == ["NODE", "MESSAGE"]
    assert stack.node_name in wide[1]

    (job,) = jobs(stack, NS)
    assert job["metadata"]["name"] == "chair-recon"
    (owner,) = job["metadata"]["ownerReferences"]
    assert owner["kind"] == "ReconJob" and owner["uid"] == body["metadata"]["uid"]
    assert owner["controller"] is True


def test_the_operator_writes_little_per_job(stack, operator):
    """Writes beyond kopf's bookkeeping for one job, counted by the operator itself."""
    NS = operator.namespace
    wait_for(lambda: status(stack, NS, "chair").get("phase") == "Succeeded", 30)
    metrics = operator.metrics()
    counts = {
        line.split('kind="')[1].split('"')[0]: float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("recon_operator_api_writes_total{")
    }
    # Validating, Queued, Admitted, Scheduled, Running, Succeeded: six status writes; one
    # Event each; four creates (ServiceAccount, Role, RoleBinding, Job).
    assert counts["status"] <= 8, counts
    assert counts["create"] == 4, counts
    assert 'recon_jobs{phase="Succeeded"} 1.0' in metrics
