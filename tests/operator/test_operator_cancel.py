"""Cancel, then confirm, in every case DESIGN.md lists, on the real stack: the runner really
gets SIGTERM, its pods and Job are really gone, partial outputs are removed and nobody
else's outputs are touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import captures
from tests.support.operator_process import (
    BUCKET,
    apply,
    condition,
    events,
    get,
    jobs,
    pods,
    reconjob_manifest,
    status,
)
from tests.support.stack_handle import wait_for

SIGNALS = Path("/tmp/recon-standin")
TTL = 8


@pytest.fixture(scope="module")
def operator_env():
    return {"RECON_MAX_RUNNING_JOBS": "1", "RECON_CANCEL_TTL_SECONDS": str(TTL)}


def annotate(stack, ns, name, value):
    arg = f"recon.dev/cancel={value}" if value else "recon.dev/cancel-"
    stack.kubectl("annotate", "reconjob", name, "-n", ns, arg, "--overwrite")


def reasons(stack, ns, name):
    return [e["reason"] for e in events(stack, ns, name)]


def keys(client, prefix):
    return sorted(o.object_name for o in client.list_objects(BUCKET, prefix, recursive=True))


def start_running(stack, ns, name, words="partial-sleep120"):
    prefix = f"{name}/{words}/"
    captures.upload(stack.minio_client(), BUCKET, prefix, captures.files(6))
    apply(stack, ns, reconjob_manifest(name, prefix))
    wait_for(
        lambda: (condition(stack, ns, name, "Running") or {}).get("status") == "True",
        60,
        what=f"{name} running",
    )
    return get(stack, ns, name)


def test_request_then_confirm_stops_a_running_job(stack, ns):
    client = stack.minio_client()
    # a finished output of another job under the same bucket must survive
    other = "other/output/earlier-run/mesh.glb"
    captures.upload(client, BUCKET, "other/output/earlier-run/", {"mesh.glb": b"finished"})

    body = start_running(stack, ns, "busy")
    uid = body["metadata"]["uid"]
    out_prefix = f"busy/partial-sleep120/output/{uid}/"
    wait_for(lambda: keys(client, out_prefix), 30, what="partial output written")

    annotate(stack, ns, "busy", "requested")
    wait_for(
        lambda: (condition(stack, ns, "busy", "CancelRequested") or {}).get("status") == "True",
        30,
    )
    st = status(stack, ns, "busy")
    assert st["phase"] == "Running", "a request alone stops nothing"
    assert st["cancel"]["requestedAt"] < st["cancel"]["expiresAt"]
    (requested,) = [e for e in events(stack, ns, "busy") if e["reason"] == "CancelRequested"]
    assert "recon.dev/cancel=confirmed --overwrite" in requested["message"]
    assert pods(stack, ns, f"recon.dev/reconjob-uid={uid}")

    annotate(stack, ns, "busy", "confirmed")
    wait_for(lambda: status(stack, ns, "busy").get("phase") == "Cancelled", 60)
    st = status(stack, ns, "busy")
    assert condition(stack, ns, "busy", "Cancelled")["status"] == "True"
    assert pods(stack, ns, f"recon.dev/reconjob-uid={uid}") == []
    assert [j for j in jobs(stack, ns) if j["metadata"]["name"] == "busy-recon"] == []
    assert (SIGNALS / f"{uid}.sigterm").exists(), "the runner got SIGTERM"
    assert keys(client, out_prefix) == []
    assert keys(client, "other/") == [other]
    assert "Cancelled" in reasons(stack, ns, "busy")


@pytest.fixture
def holder(stack, ns, request):
    """A job of the test's own, Running in the one slot, deleted afterwards so the next
    test starts from a free slot: no test depends on what another left behind."""
    name = request.node.name.removeprefix("test_").replace("_", "-")[:40].rstrip("-")
    start_running(stack, ns, name, "sleep120")
    yield name
    stack.kubectl("delete", "reconjob", name, "-n", ns, "--timeout=60s", check=False)
    wait_for(lambda: not jobs(stack, ns), 60, what=f"{name}'s Job gone, the slot free")


def test_cancel_while_queued_never_starts_it(stack, ns, holder):
    prefix = "waiting/sleep1/"
    captures.upload(stack.minio_client(), BUCKET, prefix, captures.files(6))
    apply(stack, ns, reconjob_manifest("waiting", prefix))
    wait_for(lambda: status(stack, ns, "waiting").get("queuePosition") == 1, 30)
    annotate(stack, ns, "waiting", "requested")
    wait_for(lambda: (status(stack, ns, "waiting").get("cancel") or {}).get("requestedAt"), 30)
    annotate(stack, ns, "waiting", "confirmed")
    wait_for(lambda: status(stack, ns, "waiting").get("phase") == "Cancelled", 30)
    assert "queuePosition" not in status(stack, ns, "waiting")
    assert [j for j in jobs(stack, ns) if j["metadata"]["name"] == "waiting-recon"] == []


def test_confirm_without_request_is_refused(stack, ns, holder):
    annotate(stack, ns, holder, "confirmed")
    wait_for(lambda: "CancelRefused" in reasons(stack, ns, holder), 30)
    (refused,) = [e for e in events(stack, ns, holder) if e["reason"] == "CancelRefused"]
    assert refused["type"] == "Warning" and "without a request" in refused["message"]
    assert status(stack, ns, holder)["phase"] == "Running"


def test_removing_the_annotation_withdraws_the_request(stack, ns, holder):
    annotate(stack, ns, holder, "requested")
    wait_for(lambda: (status(stack, ns, holder).get("cancel") or {}).get("requestedAt"), 30)
    annotate(stack, ns, holder, None)
    wait_for(
        lambda: (
            (condition(stack, ns, holder, "CancelRequested") or {}).get("reason") == "Withdrawn"
        ),
        30,
    )
    assert "cancel" not in status(stack, ns, holder)
    assert status(stack, ns, holder)["phase"] == "Running"


def test_confirm_after_expiry_is_refused(stack, ns, holder):
    annotate(stack, ns, holder, "requested")
    wait_for(lambda: (status(stack, ns, holder).get("cancel") or {}).get("requestedAt"), 30)
    wait_for(
        lambda: (condition(stack, ns, holder, "CancelRequested") or {}).get("reason") == "Expired",
        TTL + 15,
    )
    annotate(stack, ns, holder, "confirmed")
    wait_for(lambda: "CancelRefused" in reasons(stack, ns, holder), 30)
    (refused,) = [e for e in events(stack, ns, holder) if e["reason"] == "CancelRefused"]
    assert "expired" in refused["message"]
    assert status(stack, ns, holder)["phase"] == "Running"


def test_cancel_on_a_finished_job_is_a_no_op_with_an_event(stack, ns):
    prefix = "quick/sleep1/"
    captures.upload(stack.minio_client(), BUCKET, prefix, captures.files(6))
    apply(stack, ns, reconjob_manifest("quick", prefix))
    stack.kubectl("wait", "--for=condition=Succeeded", "reconjob/quick", "-n", ns, "--timeout=60s")
    annotate(stack, ns, "quick", "requested")
    wait_for(lambda: "CancelIgnored" in reasons(stack, ns, "quick"), 30)
    assert status(stack, ns, "quick")["phase"] == "Succeeded"
    assert "cancel" not in status(stack, ns, "quick")
