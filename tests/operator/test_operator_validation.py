"""What a user sees when a ReconJob cannot run: bad captures (every problem at once),
credentials or storage that are not there yet, and GPUs the cluster does not have."""

from __future__ import annotations

import json

import pytest

from tests.support import captures
from tests.support.loopback_servers import Relay
from tests.support.operator_process import (
    BUCKET,
    apply,
    condition,
    create_credentials_secret,
    events,
    jobs,
    reconjob_manifest,
    status,
)
from tests.support.stack_handle import wait_for


@pytest.fixture(scope="module")
def relay(stack):
    relay = Relay(stack.minio_endpoint)
    yield relay
    relay.down()


@pytest.fixture(scope="module")
def operator_env(relay):
    # The relay's endpoint is not the default one: the platform allows it by name.
    return {"RECON_STORAGE_ALLOWED_ENDPOINTS": relay.endpoint}


def test_every_problem_is_reported_and_the_job_fails_before_any_gpu(stack, ns):
    files = captures.files(6)
    del files["depth/view_002.png"]
    files["images/view_004.png"] = captures.png(8, 8, bit_depth=16, colour_type=2)
    files["images/view_005.png"] = b"not a png at all, just text"
    captures.upload(stack.minio_client(), BUCKET, "broken/", files)
    apply(stack, ns, reconjob_manifest("broken", "broken/"))
    wait_for(lambda: status(stack, ns, "broken").get("phase") == "Failed", 30)
    valid = condition(stack, ns, "broken", "InputsValid")
    assert valid["status"] == "False" and valid["reason"] == "InvalidInput"
    for fragment in ("depth/view_002.png", "images/view_004.png", "images/view_005.png"):
        assert fragment in valid["message"], valid["message"]
    (event,) = [e for e in events(stack, ns, "broken") if e["reason"] == "InvalidInput"]
    assert event["type"] == "Warning" and "depth/view_002.png" in event["message"]
    assert condition(stack, ns, "broken", "Failed")["reason"] == "InvalidInput"
    assert not jobs(stack, ns), "no Job (and so no GPU) for a bad capture"


def test_a_depth_map_that_disagrees_with_depth_w_depth_h_is_refused_before_admission(stack, ns):
    """Depth at half the colour resolution, as phones store it; one depth map at the colour
    resolution instead. Refused from its PNG header, naming the file, and no Job."""
    files = captures.files(6)
    doc = captures.transforms(6)
    half = captures.SIZE // 2
    doc.update(depth_w=half, depth_h=half)
    files["transforms.json"] = json.dumps(doc).encode()
    for i in range(6):
        files[f"depth/view_{i:03d}.png"] = captures.png(half, half, bit_depth=16, colour_type=0)
    files["depth/view_003.png"] = captures.png(
        captures.SIZE, captures.SIZE, bit_depth=16, colour_type=0
    )
    captures.upload(stack.minio_client(), BUCKET, "depth-size/", files)
    apply(stack, ns, reconjob_manifest("depth-size", "depth-size/"))
    wait_for(lambda: status(stack, ns, "depth-size").get("phase") == "Failed", 30)
    valid = condition(stack, ns, "depth-size", "InputsValid")
    assert valid["status"] == "False" and valid["reason"] == "InvalidInput"
    expected = (
        f"depth/view_003.png: is {captures.SIZE}x{captures.SIZE} but frame 3 says "
        f"{half}x{half} (depth_w, depth_h)"
    )
    assert valid["message"].endswith(": " + expected), valid["message"]
    assert not jobs(stack, ns), "no Job (and so no GPU) for a bad capture"


def test_wrong_view_count_and_missing_transforms(stack, ns):
    captures.upload(stack.minio_client(), BUCKET, "four/", captures.files(4))
    apply(
        stack,
        ns,
        reconjob_manifest("four", "four/"),
        reconjob_manifest("empty", "nothing-here/"),
    )
    wait_for(lambda: status(stack, ns, "four").get("phase") == "Failed", 30)
    wait_for(lambda: status(stack, ns, "empty").get("phase") == "Failed", 30)
    assert "6" in condition(stack, ns, "four", "InputsValid")["message"]
    assert "transforms.json" in condition(stack, ns, "empty", "InputsValid")["message"]


def test_missing_credentials_wait_in_validating_until_the_secret_appears(stack, ns):
    captures.upload(stack.minio_client(), BUCKET, "creds/sleep1/", captures.files(6))
    manifest = reconjob_manifest("creds", "creds/sleep1/", storage={"credentialsSecret": "late"})
    apply(stack, ns, manifest)
    wait_for(
        lambda: (
            (condition(stack, ns, "creds", "InputsValid") or {}).get("reason")
            == "CredentialsMissing"
        ),
        30,
    )
    assert status(stack, ns, "creds")["phase"] == "Validating"
    assert "late" in condition(stack, ns, "creds", "InputsValid")["message"]
    create_credentials_secret(stack, ns, "late")
    stack.kubectl("wait", "--for=condition=Succeeded", "reconjob/creds", "-n", ns, "--timeout=90s")


def test_unreachable_storage_keeps_validating_then_recovers(stack, ns, relay):
    captures.upload(stack.minio_client(), BUCKET, "flaky/sleep1/", captures.files(6))
    endpoint = relay.endpoint
    apply(stack, ns, reconjob_manifest("flaky", "flaky/sleep1/", storage={"endpoint": endpoint}))
    try:
        wait_for(
            lambda: (
                (condition(stack, ns, "flaky", "InputsValid") or {}).get("reason")
                == "StorageUnreachable"
            ),
            30,
        )
        assert status(stack, ns, "flaky")["phase"] == "Validating"
        assert endpoint in condition(stack, ns, "flaky", "InputsValid")["message"]
        assert any(e["reason"] == "StorageUnreachable" for e in events(stack, ns, "flaky"))
        relay.up()
        stack.kubectl(
            "wait", "--for=condition=Succeeded", "reconjob/flaky", "-n", ns, "--timeout=90s"
        )
    finally:
        relay.down()


def test_more_gpus_than_the_node_has_shows_the_schedulers_reason(stack, ns):
    captures.upload(stack.minio_client(), BUCKET, "big/sleep1/", captures.files(6))
    manifest = reconjob_manifest("big", "big/sleep1/")
    manifest["spec"]["resources"]["gpus"] = 8
    apply(stack, ns, manifest)
    wait_for(
        lambda: (condition(stack, ns, "big", "Scheduled") or {}).get("status") == "False",
        60,
    )
    scheduled = condition(stack, ns, "big", "Scheduled")
    assert scheduled["reason"] == "Unschedulable"
    assert "Insufficient nvidia.com/gpu" in scheduled["message"], scheduled
    assert status(stack, ns, "big")["phase"] == "Running"
    assert any(e["reason"] == "Unschedulable" for e in events(stack, ns, "big"))
