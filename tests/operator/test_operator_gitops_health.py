"""What Flux and Argo CD make of real ReconJobs at every phase, read by the real clients:
kstatus (built from sigs.k8s.io/cli-utils) and the shipped Argo CD health check (Lua),
against DESIGN.md's GitOps health table.

Set RECON_CAPTURE_HEALTH_TESTDATA=1 to also write the objects seen here into the health
check's testdata/ (the files committed there were captured this way).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import yaml
from recon_stack.binaries import resolve_kstatus

from tests.support import captures
from tests.support.gitops_health import (
    HEALTH_LUA,
    REPO,
    TABLE,
    TESTDATA,
    argocd_health,
    as_captured,
    kstatus,
)
from tests.support.operator_process import (
    BUCKET,
    apply,
    get,
    reconjob_manifest,
)
from tests.support.stack_handle import wait_for

CAPTURE_ENV = "RECON_CAPTURE_HEALTH_TESTDATA"
HOLD_FINALIZER = "tests.recon.dev/hold"


@pytest.fixture(scope="module")
def kstatus_binary():
    return resolve_kstatus(build=True)


@pytest.fixture(scope="module")
def operator_env():
    return {"RECON_MAX_RUNNING_JOBS": "2"}


def conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in obj["status"].get("conditions") or ()}


def reached(stack, ns, name, phase, extra=lambda _obj: True):
    def check():
        obj = get(stack, ns, name)
        return obj if (obj.get("status") or {}).get("phase") == phase and extra(obj) else None

    return wait_for(check, 90, what=f"{name} {phase}")


def assert_verdicts(kstatus_binary, obj: dict[str, Any], capture_as: str | None = None) -> None:
    """The table's row for the object's phase, from both clients, plus the conditions and
    generation bookkeeping the verdicts rest on."""
    phase = obj["status"]["phase"]
    want_kstatus, want_argocd = TABLE[phase]
    (verdict,) = kstatus(kstatus_binary, obj)
    assert verdict["status"] == want_kstatus, (phase, verdict)
    health = argocd_health(obj)
    assert health["status"] == want_argocd, (phase, health)
    assert health["message"], "Argo CD shows the operator's words"

    st, conds = obj["status"], conditions(obj)
    generation = obj["metadata"]["generation"]
    assert st["observedGeneration"] == generation
    assert all(c["observedGeneration"] == generation for c in conds.values()), conds
    reconciling, stalled = conds["Reconciling"], conds["Stalled"]
    assert reconciling["status"] == ("True" if want_kstatus == "InProgress" else "False")
    if phase == "Failed":
        failed = conds["Failed"]
        assert (stalled["status"], stalled["reason"], stalled["message"]) == (
            "True",
            failed["reason"],
            failed["message"],
        )
        assert verdict["message"] == failed["message"], "Flux shows why it failed"
        assert health["message"] == f"{failed['reason']}: {failed['message']}"
    else:
        assert stalled["status"] == "False"
    if capture_as and os.environ.get(CAPTURE_ENV):
        TESTDATA.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(as_captured(obj), sort_keys=False)
        (TESTDATA / f"{capture_as}.yaml").write_text(text)


def test_every_phase_reads_as_the_table_says(stack, ns, kstatus_binary):
    client = stack.minio_client()
    for prefix in ("health/hold/sleep120/", "health/next/sleep1/", "health/big/sleep1/"):
        captures.upload(client, BUCKET, prefix, captures.files(6))
    captures.upload(client, BUCKET, "health/four/", captures.files(4))

    # Never looked at: a ReconJob in a namespace no operator watches reads as not yet
    # reconciled, not as healthy.
    unwatched = f"{ns}-unwatched"
    stack.kubectl("create", "namespace", unwatched)
    try:
        apply(stack, unwatched, reconjob_manifest("fresh", "health/next/sleep1/"))
        fresh = get(stack, unwatched, "fresh")
        assert argocd_health(fresh)["status"] == "Progressing"
        (verdict,) = kstatus(kstatus_binary, fresh)
        assert verdict["status"] == "Current", "no status at all: kstatus has nothing to go on"
        if os.environ.get(CAPTURE_ENV):
            text = yaml.safe_dump(as_captured(fresh), sort_keys=False)
            (TESTDATA / "pending.yaml").write_text(text)
    finally:
        stack.kubectl("delete", "namespace", unwatched, "--wait=false")

    # Validating: its credentials Secret is not there yet, so it stays there, retrying.
    apply(
        stack,
        ns,
        reconjob_manifest("waiting", "health/next/sleep1/", storage={"credentialsSecret": "late"}),
    )
    # Running: one that holds a slot, and one the scheduler cannot place (8 GPUs).
    apply(stack, ns, reconjob_manifest("hold", "health/hold/sleep120/"))
    big = reconjob_manifest("big", "health/big/sleep1/")
    big["spec"]["resources"]["gpus"] = 8
    apply(stack, ns, big)
    hold = reached(
        stack, ns, "hold", "Running", lambda o: "percent" in o["status"].get("progress", {})
    )
    unschedulable = reached(
        stack, ns, "big", "Running", lambda o: conditions(o)["Scheduled"]["status"] == "False"
    )
    # Queued behind them; Failed at validation.
    apply(stack, ns, reconjob_manifest("next", "health/next/sleep1/"))
    apply(stack, ns, reconjob_manifest("four", "health/four/"))
    queued = reached(stack, ns, "next", "Queued", lambda o: o["status"].get("queuePosition") == 1)
    failed = reached(stack, ns, "four", "Failed")
    validating = reached(
        stack,
        ns,
        "waiting",
        "Validating",
        lambda o: conditions(o)["InputsValid"]["status"] == "Unknown",
    )

    assert_verdicts(kstatus_binary, validating, "validating")
    assert "waiting for storage" in argocd_health(validating)["message"]
    assert_verdicts(kstatus_binary, hold, "running")
    assert "%" in argocd_health(hold)["message"], "the runner's progress"
    assert_verdicts(kstatus_binary, unschedulable, "running-unschedulable")
    assert "Insufficient nvidia.com/gpu" in argocd_health(unschedulable)["message"]
    assert_verdicts(kstatus_binary, queued, "queued")
    assert "(position 1)" in argocd_health(queued)["message"]
    assert_verdicts(kstatus_binary, failed, "failed-invalid-input")

    # Cancelled (deliberately stopped, not an error), which frees the slot for the queued
    # job to run to Succeeded.
    stack.kubectl("annotate", "reconjob", "hold", "-n", ns, "recon.dev/cancel=requested")
    stack.kubectl(
        "annotate", "reconjob", "hold", "-n", ns, "recon.dev/cancel=confirmed", "--overwrite"
    )
    assert_verdicts(kstatus_binary, reached(stack, ns, "hold", "Cancelled"), "cancelled")
    assert_verdicts(kstatus_binary, reached(stack, ns, "next", "Succeeded"), "succeeded")

    # Being deleted: held by a finalizer of the test's own, so the moment can be read.
    stack.kubectl(
        "patch", "reconjob", "big", "-n", ns, "--type=json",
        "-p", f'[{{"op":"add","path":"/metadata/finalizers/-","value":"{HOLD_FINALIZER}"}}]',
    )  # fmt: skip
    stack.kubectl("delete", "reconjob", "big", "-n", ns, "--wait=false")
    try:
        deleting = wait_for(
            lambda: (o := get(stack, ns, "big"))["metadata"].get("deletionTimestamp") and o,
            30,
            what="big being deleted",
        )
        (verdict,) = kstatus(kstatus_binary, deleting)
        assert verdict["status"] == "Terminating"
        assert argocd_health(deleting)["status"] == "Progressing"
    finally:
        release(stack, ns, "big")


def release(stack, ns, name):
    """Take the test's finalizer off again, leaving the operator's own alone. A JSON patch
    that first tests the entry it removes: the operator may drop its own finalizer at the
    same moment, which shifts the list; then the patch is refused and read again."""
    for _ in range(5):
        finalizers = (get(stack, ns, name)["metadata"].get("finalizers")) or []
        if HOLD_FINALIZER not in finalizers:
            return
        at = finalizers.index(HOLD_FINALIZER)
        ops = [
            {"op": "test", "path": f"/metadata/finalizers/{at}", "value": HOLD_FINALIZER},
            {"op": "remove", "path": f"/metadata/finalizers/{at}"},
        ]
        out = stack.kubectl(
            "patch", "reconjob", name, "-n", ns, "--type=json", "-p", json.dumps(ops),
            check=False,
        )  # fmt: skip
        if out.returncode == 0:
            return
    pytest.fail(f"could not remove {HOLD_FINALIZER} from {name}")


def test_release_notes_print_the_argocd_health_check(stack):
    """The entry `helm install` prints is the shipped check, unchanged (helm's dry run asks
    the cluster for its version, so this runs against the stack)."""
    chart = str(REPO / "charts" / "recon-operator")
    # Without peering: the dry run resolves every kind, and kopf's peering CRD is not here.
    args = ("install", "recon", chart, "--namespace", "recon-system", "--dry-run=client",
            "--set", "peering.enabled=false")  # fmt: skip
    notes = stack.helm(*args).stdout
    script = HEALTH_LUA.read_text()
    block = "".join("      " + line for line in script.splitlines(True))  # helm's `indent 6`
    assert "resource.customizations.health.recon.dev_ReconJob: |\n" + block in notes
    quiet = stack.helm(*args, "--set", "argocd.printHealthCheck=false").stdout
    assert "resource.customizations.health" not in quiet
