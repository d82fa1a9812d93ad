"""MinIO taken down (the real server process stopped, then started again) while a job is
validated, while its runner downloads, while it uploads, and for good. Storage trouble is
never reported as bad input: validation waits, the runner exits 75 and the Job retries,
and only retries running out fail the job, with the reason in its status.

The runner here is `storage_standin.py`: the runner's own storage code and exit codes
without the reconstruction. These tests use a stack of their own, since MinIO goes away."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from recon_operator.handlers import KOPF_PREFIX
from recon_stack.components import MINIO
from recon_stack.stack import Stack

from tests.support import captures
from tests.support.operator_process import (
    BUCKET,
    STANDIN,
    STANDIN_IMAGE,
    OperatorProcess,
    apply,
    condition,
    events,
    exit_codes,
    get,
    jobs,
    prepare_namespace,
    reconjob_manifest,
    status,
)
from tests.support.stack_handle import StackHandle, handle_for, wait_for
from tests.support.standin_runner import gate_file

pytestmark = pytest.mark.stack

STORAGE_IMAGE = "ghcr.io/recon-operator/recon-storage-standin:test"
STORAGE_STANDIN = Path(__file__).with_name("storage_standin.py")


@dataclass
class Outage:
    stack: Stack
    handle: StackHandle
    ns: str

    def minio_down(self) -> None:
        assert self.stack.stop_component(MINIO)

    def minio_up(self) -> None:
        self.stack.start_component(MINIO)


def map_images(handle: StackHandle) -> None:
    table = {
        STANDIN_IMAGE.split(":")[0]: [sys.executable, str(STANDIN)],
        STORAGE_IMAGE.split(":")[0]: [sys.executable, str(STORAGE_STANDIN)],
    }
    target = Path(handle.state_dir) / "node" / "image-map.yaml"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(table))
    tmp.replace(target)


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outage]:
    local = Stack(tmp_path_factory.mktemp("minio-outage-stack"))
    local.up()
    try:
        handle = handle_for(local)
        ns = prepare_namespace(handle, "faults-storage")
        map_images(handle)
        env = {"RECON_RUNNER_IMAGE": STORAGE_IMAGE}
        log_dir = tmp_path_factory.mktemp("operator")
        op = OperatorProcess.under_chart_rbac(handle, ns, log_dir, env)
        op.start()
        try:
            yield Outage(local, handle, ns)
        finally:
            op.stop()
    finally:
        local.down()


def manifest(name: str, prefix: str, **spec: Any) -> dict[str, Any]:
    body = reconjob_manifest(name, prefix, **spec)
    body["spec"]["resources"]["gpus"] = 0
    return body


def output_names(handle: StackHandle, ns: str, name: str) -> list[str]:
    body = get(handle, ns, name)
    prefix = f"{body['spec']['input']['prefix']}output/{body['metadata']['uid']}/"
    objs = handle.minio_client().list_objects(BUCKET, prefix, recursive=True)
    return sorted(str(o.object_name)[len(prefix) :] for o in objs)


def validation_retries(handle: StackHandle, ns: str, name: str) -> int:
    """How often kopf has retried the validation handler, from the progress record it keeps
    in the object's annotations (the API server's word, not a guess from elapsed time)."""
    notes = get(handle, ns, name)["metadata"].get("annotations") or {}
    record = json.loads(notes.get(f"{KOPF_PREFIX}/validate") or "{}")
    return int(record.get("retries") or 0)


def test_minio_down_during_validation_waits_then_recovers(outage: Outage) -> None:
    handle, ns = outage.handle, outage.ns
    captures.upload(handle.minio_client(), BUCKET, "validate/", captures.files(6))
    outage.minio_down()
    try:
        apply(handle, ns, manifest("validate", "validate/"))
        wait_for(
            lambda: (
                (condition(handle, ns, "validate", "InputsValid") or {}).get("status") == "Unknown"
            ),
            30,
        )
        # Two retries later (1 s, then 2 s of backoff): still waiting, still not bad input.
        wait_for(
            lambda: validation_retries(handle, ns, "validate") >= 2,
            60,
            what="two validation retries while MinIO is down",
        )
        st = status(handle, ns, "validate")
        assert st["phase"] == "Validating", st
        inputs = condition(handle, ns, "validate", "InputsValid")
        assert inputs is not None and inputs["reason"] == "StorageUnreachable", inputs
        assert handle.minio_endpoint in inputs["message"]
        assert jobs(handle, ns) == [], "no GPU requested while the capture is unread"
        warnings = [e for e in events(handle, ns, "validate") if e["type"] == "Warning"]
        assert [e["reason"] for e in warnings] == ["StorageUnreachable"], warnings
    finally:
        outage.minio_up()
    handle.kubectl(
        "wait", "--for=condition=Succeeded", "reconjob/validate", "-n", ns, "--timeout=120s"
    )
    assert condition(handle, ns, "validate", "InputsValid")["status"] == "True"
    assert output_names(handle, ns, "validate") == ["mesh.glb", "metrics.json"]


def test_minio_down_during_download_and_upload_retried_when_back(outage: Outage) -> None:
    """One runner waits to download, another has downloaded and waits to upload, when MinIO
    goes: both exit 75, and their retries succeed once it is back."""
    handle, ns = outage.handle, outage.ns
    client = handle.minio_client()
    # Both runners stop at a gate (before the download, between download and upload) that
    # the test opens only once MinIO is down.
    captures.upload(client, BUCKET, "download/waitgate/", captures.files(6))
    captures.upload(client, BUCKET, "upload/holdgate/", captures.files(6))
    apply(handle, ns, manifest("download", "download/waitgate/", retries=2))
    apply(handle, ns, manifest("upload", "upload/holdgate/", retries=2))
    wait_for(
        lambda: (condition(handle, ns, "download", "Running") or {}).get("status") == "True",
        60,
    )
    wait_for(
        lambda: (
            (status(handle, ns, "upload").get("progress") or {})
            .get("message", "")
            .startswith("downloaded")
        ),
        60,
        what="upload's runner has its capture",
    )
    outage.minio_down()
    try:
        for name in ("download", "upload"):
            gate = gate_file(get(handle, ns, name)["metadata"]["uid"])
            gate.parent.mkdir(parents=True, exist_ok=True)
            gate.touch()
        wait_for(
            lambda: (
                exit_codes(handle, ns, "download") == [75]
                and exit_codes(handle, ns, "upload") == [75]
            ),
            60,
            what="both runners exited 75",
        )
        progress = status(handle, ns, "upload")["progress"]
        assert "unreachable while uploading" in progress["message"], progress
        progress = status(handle, ns, "download")["progress"]
        assert "unreachable while reading" in progress["message"], progress
    finally:
        outage.minio_up()
    for name in ("download", "upload"):
        handle.kubectl(
            "wait", "--for=condition=Succeeded", f"reconjob/{name}", "-n", ns, "--timeout=120s"
        )
        st = status(handle, ns, name)
        assert st["phase"] == "Succeeded" and st["attempts"] == 2, st
        assert exit_codes(handle, ns, name) == [0, 75]
        # staged uploads moved into place: the whole result, nothing half-written beside it
        assert output_names(handle, ns, name) == ["mesh.glb", "metrics.json"]
        failed = [e for e in events(handle, ns, name) if e["reason"] == "PodFailed"]
        assert len(failed) == 1 and "exit code 75" in failed[0]["message"], failed


def test_minio_gone_for_good_fails_after_the_retries_with_the_reason(outage: Outage) -> None:
    handle, ns = outage.handle, outage.ns
    captures.upload(handle.minio_client(), BUCKET, "gone/wait3/", captures.files(6))
    apply(handle, ns, manifest("gone", "gone/wait3/", retries=1))
    wait_for(lambda: (condition(handle, ns, "gone", "Running") or {}).get("status") == "True", 60)
    outage.minio_down()
    try:
        wait_for(lambda: status(handle, ns, "gone").get("phase") == "Failed", 90)
        st = status(handle, ns, "gone")
        assert st["attempts"] == 2, st
        assert exit_codes(handle, ns, "gone") == [75, 75]
        failed = condition(handle, ns, "gone", "Failed")
        assert failed is not None and failed["reason"] == "BackoffLimitExceeded", failed
        message = st["progress"]["message"]
        assert message.startswith("transient failure: storage at " + handle.minio_endpoint)
        assert "unreachable" in message, message
        assert condition(handle, ns, "gone", "InputsValid")["status"] == "True", (
            "storage trouble is never reported as bad input"
        )
    finally:
        outage.minio_up()
