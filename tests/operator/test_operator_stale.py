"""A runner that stops heartbeating is failed as Stalled and its Job deleted, and deleting
a ReconJob stops its runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import captures
from tests.support.operator_process import (
    BUCKET,
    apply,
    condition,
    get,
    jobs,
    pods,
    reconjob_manifest,
    status,
)
from tests.support.stack_handle import wait_for

STALE_AFTER = 6


@pytest.fixture(scope="module")
def operator_env():
    return {"RECON_STALE_AFTER_SECONDS": str(STALE_AFTER)}


def test_silent_runner_is_failed_as_stalled(stack, ns):
    captures.upload(stack.minio_client(), BUCKET, "silent/hang/", captures.files(6))
    apply(stack, ns, reconjob_manifest("silent", "silent/hang/"))
    wait_for(lambda: status(stack, ns, "silent").get("phase") == "Failed", 60)
    failed = condition(stack, ns, "silent", "Failed")
    assert failed["reason"] == "Stalled"
    uid = get(stack, ns, "silent")["metadata"]["uid"]
    wait_for(lambda: not pods(stack, ns, f"recon.dev/reconjob-uid={uid}"), 60)
    assert not [j for j in jobs(stack, ns) if j["metadata"]["name"] == "silent-recon"]


def test_deleting_a_reconjob_stops_its_runner(stack, ns):
    captures.upload(stack.minio_client(), BUCKET, "doomed/sleep20/", captures.files(6))
    apply(stack, ns, reconjob_manifest("doomed", "doomed/sleep20/"))
    wait_for(lambda: (condition(stack, ns, "doomed", "Running") or {}).get("status") == "True", 60)
    # A Running pod is not yet a runner that handles SIGTERM: its first progress report is
    # sent only after the handler is in place, so wait for that before deleting.
    wait_for(lambda: bool(status(stack, ns, "doomed").get("progress")), 60)
    uid = get(stack, ns, "doomed")["metadata"]["uid"]
    stack.kubectl("delete", "reconjob", "doomed", "-n", ns, "--timeout=60s")
    assert not pods(stack, ns, f"recon.dev/reconjob-uid={uid}")
    assert Path(f"/tmp/recon-standin/{uid}.sigterm").exists()
