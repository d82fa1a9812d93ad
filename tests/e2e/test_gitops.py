"""The GitOps contract: a ReconJob manifest in Git and the object in the cluster agree.

Applying the same manifest again changes nothing, server-side apply takes it without
conflicts, `kubectl diff` finds no drift after the job succeeds, and neither the operator
nor the runner ever writes to `spec` or to metadata the user owns: their field managers
own only `status`, the operator's finalizer and its own annotations.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from recon_api.constants import FINALIZER
from recon_cli.cluster_demo import reconjob, watch
from recon_cli.cluster_demo.tools import get_json

from tests.support.e2e_release import DRAFT, Installed, example_job, upload_synthetic
from tests.support.stack_handle import StackHandle, wait_for

# kubectl's field managers (client-side apply, server-side apply, and its migration of
# last-applied-configuration): the user's.
USER_MANAGER_PREFIX = "kubectl"
# Annotation prefix the operator keeps its own bookkeeping under.
OPERATOR_ANNOTATIONS = "f:kopf.recon.dev/"


def written_fields(entry: dict[str, Any]) -> list[str]:
    """The paths one managedFields entry owns, as dotted f:/k:/v: keys (leaves only)."""
    paths: list[str] = []

    def walk(node: dict[str, Any], path: str) -> None:
        children = [k for k in node if k != "."]
        if not children:
            paths.append(path)
        for key in children:
            walk(node[key], f"{path}.{key}" if path else key)

    walk(entry.get("fieldsV1") or {}, "")
    return paths


def owned_by_system(path: str) -> bool:
    """What the operator and runner may write: status, the finalizer, their annotations."""
    if path == "f:status" or path.startswith("f:status."):
        return True
    if path == f'f:metadata.f:finalizers.v:"{FINALIZER}"':
        return True
    return path.startswith(f"f:metadata.f:annotations.{OPERATOR_ANNOTATIONS}")


def test_reapply_server_side_apply_and_diff_show_no_drift(
    stack: StackHandle, installed: Installed
) -> None:
    ns = installed.jobs_namespace
    run = f"gitops-{secrets.token_hex(3)}"
    # Refinement long enough that the sync below lands while the runner is at work.
    manifest = example_job(ns, run, {**DRAFT, "iterations": 150})
    upload_synthetic(stack, manifest, "block")
    assert reconjob.apply(stack, manifest) == f"reconjob.recon.dev/{run} created"
    created = reconjob.get(stack, ns, run)

    # A sync while the operator and the runner are at work: nothing to change.
    watch.follow(stack, ns, run, timeout=300, until=lambda s: s.stage == "refine")
    assert reconjob.apply(stack, manifest) == f"reconjob.recon.dev/{run} unchanged"
    assert reconjob.get(stack, ns, run)["status"]["phase"] == "Running"
    seen = watch.follow(stack, ns, run, timeout=600)
    assert seen[-1].phase == "Succeeded"

    # Finished: the object stays still, and a sync does not write it at all.
    def settled() -> dict[str, Any] | None:
        first = reconjob.get(stack, ns, run)
        time.sleep(3)
        return first if reconjob.get(stack, ns, run) == first else None

    before = wait_for(settled, timeout=30, interval=2, what="the finished job to stay still")
    assert reconjob.apply(stack, manifest) == f"reconjob.recon.dev/{run} unchanged"
    after = reconjob.get(stack, ns, run)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["metadata"]["generation"] == created["metadata"]["generation"] == 1
    assert after["spec"] == created["spec"]

    # Server-side apply, as Argo CD's ServerSideApply=true does: no conflict with the
    # operator's or the runner's fields, and the spec is still generation 1.
    assert reconjob.apply(stack, manifest, "--server-side") == (
        f"reconjob.recon.dev/{run} serverside-applied"
    )
    assert reconjob.get(stack, ns, run)["metadata"]["generation"] == 1
    for mode in ((), ("--server-side",)):
        text = reconjob.to_yaml(manifest)
        diff = stack.kubectl("diff", *mode, "-f", "-", input=text, check=False)
        assert diff.returncode == 0, diff.stdout + diff.stderr
        assert diff.stdout == ""

    # Who wrote what: everything outside status and the operator's own bookkeeping is the
    # user's.
    shown = get_json(stack, "reconjob", run, "-n", ns, "--show-managed-fields")
    entries = shown["metadata"]["managedFields"]
    system = [e for e in entries if not e["manager"].startswith(USER_MANAGER_PREFIX)]
    written = [path for entry in system for path in written_fields(entry)]
    # The operator's and the runner's writes are on record, and are all theirs to make.
    assert any(path.startswith("f:status.f:progress") for path in written), entries
    assert f'f:metadata.f:finalizers.v:"{FINALIZER}"' in written, entries
    # Each writer is named: the runner's progress and the operator's phase, on record.
    by_manager = {e["manager"]: written_fields(e) for e in system}
    assert any(p.startswith("f:status.f:progress") for p in by_manager["recon-runner"])
    assert any(p.startswith("f:status.f:phase") for p in by_manager["recon-operator"])
    for entry in system:
        foreign = [p for p in written_fields(entry) if not owned_by_system(p)]
        assert foreign == [], (entry["manager"], foreign)
    final = reconjob.get(stack, ns, run)
    assert final["metadata"].get("labels") == manifest["metadata"].get("labels")
    user_annotations = {
        k: v
        for k, v in (final["metadata"].get("annotations") or {}).items()
        if not k.startswith("kopf.recon.dev/")
        and k != "kubectl.kubernetes.io/last-applied-configuration"
    }
    assert user_annotations == (manifest["metadata"].get("annotations") or {})
