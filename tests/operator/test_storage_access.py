"""Storage access is the platform's to grant, on the real stack: an endpoint outside the
allowlist is refused before anything connects to it, a listed one works, a Secret is used
only once labelled, and a hostile storage server's text reaches no status, Event or log."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from recon_api.constants import STORAGE_CREDENTIALS_LABEL
from recon_operator.capture_reader import (
    StorageAccess,
    StorageUnavailable,
    open_client,
    read_capture,
)
from recon_operator.validation import Limits

from tests.support import captures
from tests.support.loopback_servers import MODES, ConnectionRecorder, HostileS3, Relay
from tests.support.operator_process import (
    BUCKET,
    OperatorProcess,
    apply,
    condition,
    create_credentials_secret,
    events,
    jobs,
    reconjob_manifest,
    running_operator,
    status,
)
from tests.support.stack_handle import StackHandle, wait_for


@dataclass
class Platform:
    """An operator whose allowlist names the relay and the hostile server, not the
    recorder; the recorder listens, so any connection to it would be seen."""

    operator: OperatorProcess
    relay: Relay
    hostile: HostileS3
    unlisted: ConnectionRecorder

    @property
    def ns(self) -> str:
        return self.operator.namespace


@pytest.fixture(scope="module")
def platform(stack: StackHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    relay, hostile, unlisted = Relay(stack.minio_endpoint), HostileS3(), ConnectionRecorder()
    relay.up()
    env = {"RECON_STORAGE_ALLOWED_ENDPOINTS": f"{relay.endpoint}, {hostile.endpoint}"}
    log_dir = tmp_path_factory.mktemp("operator")
    try:
        with running_operator(stack, "storage-access", log_dir, env) as op:
            yield Platform(op, relay, hostile, unlisted)
    finally:
        relay.down()
        hostile.close()
        unlisted.close()


def reason(stack: StackHandle, ns: str, name: str) -> str | None:
    found = (condition(stack, ns, name, "InputsValid") or {}).get("reason")
    return None if found is None else str(found)


def test_an_unlisted_endpoint_is_refused_before_any_connection(
    stack: StackHandle, platform: Platform
) -> None:
    ns = platform.ns
    captures.upload(stack.minio_client(), BUCKET, "unlisted/sleep1/", captures.files(6))
    storage = {"endpoint": platform.unlisted.endpoint}
    apply(stack, ns, reconjob_manifest("unlisted", "unlisted/sleep1/", storage=storage))
    wait_for(lambda: status(stack, ns, "unlisted").get("phase") == "Failed", 30)
    valid = condition(stack, ns, "unlisted", "InputsValid")
    assert valid is not None
    assert (valid["status"], valid["reason"]) == ("False", "EndpointNotAllowed")
    message = valid["message"]
    assert "spec.storage.endpoint" in message and platform.unlisted.endpoint in message
    assert "RECON_STORAGE_ALLOWED_ENDPOINTS" in message and platform.relay.endpoint in message
    assert condition(stack, ns, "unlisted", "Failed")["reason"] == "EndpointNotAllowed"
    (event,) = [e for e in events(stack, ns, "unlisted") if e["reason"] == "EndpointNotAllowed"]
    assert event["type"] == "Warning"
    assert not jobs(stack, ns), "no Job, so no runner that could connect"
    # Deleting it runs the finalizer's cleanup, which must not connect either.
    stack.kubectl("delete", "reconjob", "unlisted", "-n", ns, "--timeout=60s")
    assert platform.unlisted.connections == 0
    # The recorder does see connections: the zero above is not a deaf listener.
    with socket.create_connection(("127.0.0.1", platform.unlisted.port)):
        pass
    wait_for(lambda: platform.unlisted.connections == 1, 5)


def test_a_listed_endpoint_uses_a_secret_only_once_labelled(
    stack: StackHandle, platform: Platform
) -> None:
    ns = platform.ns
    captures.upload(stack.minio_client(), BUCKET, "listed/sleep1/", captures.files(6))
    create_credentials_secret(stack, ns, "team-s3", labelled=False)
    storage = {"endpoint": platform.relay.endpoint, "credentialsSecret": "team-s3"}
    before = platform.relay.accepted
    apply(stack, ns, reconjob_manifest("listed", "listed/sleep1/", storage=storage))
    wait_for(lambda: reason(stack, ns, "listed") == "CredentialsNotLabelled", 30)
    valid = condition(stack, ns, "listed", "InputsValid")
    assert valid is not None and valid["status"] == "Unknown"
    assert f"{ns}/team-s3" in valid["message"]
    assert STORAGE_CREDENTIALS_LABEL in valid["message"]
    assert f"kubectl -n {ns} label secret team-s3" in valid["message"]
    assert status(stack, ns, "listed")["phase"] == "Validating"
    assert any(e["reason"] == "CredentialsNotLabelled" for e in events(stack, ns, "listed"))
    assert not jobs(stack, ns)
    assert platform.relay.accepted == before, "an unlabelled Secret's keys were used"

    stack.kubectl("label", "secret", "team-s3", "-n", ns, f"{STORAGE_CREDENTIALS_LABEL}=true")
    stack.kubectl("wait", "--for=condition=Succeeded", "reconjob/listed", "-n", ns, "--timeout=90s")
    assert platform.relay.accepted > before, "the listed endpoint was the one used"


def test_a_hostile_servers_text_appears_in_no_status_event_or_log(
    stack: StackHandle, platform: Platform
) -> None:
    ns, hostile = platform.ns, platform.hostile
    names = {mode: f"hostile-{i}" for i, mode in enumerate(MODES)}
    manifests = []
    for mode, name in names.items():
        manifest = reconjob_manifest(name, "capture/", storage={"endpoint": hostile.endpoint})
        manifest["spec"]["input"]["bucket"] = mode
        manifests.append(manifest)
    apply(stack, ns, *manifests)
    for name in names.values():
        wait_for(lambda name=name: reason(stack, ns, name) is not None, 30)
    # Each job has asked the server at least twice (first try and a retry).
    wait_for(lambda: len(hostile.requests) >= 2 * len(MODES), 30)
    seen = {mode: condition(stack, ns, name, "InputsValid") for mode, name in names.items()}
    assert {m: c["reason"] for m, c in seen.items() if c} == {
        "xml-unknown-code": "StorageError",
        "xml-known-code": "StorageError",
        "xml-denied": "StorageAuthFailed",
        "html-body": "StorageUnreachable",
        "not-http": "StorageUnreachable",
    }
    assert "InvalidArgument (HTTP 400)" in seen["xml-known-code"]["message"]
    for found in seen.values():
        assert found is not None and hostile.endpoint in found["message"]

    everything = {
        "status": stack.kubectl("get", "reconjobs", "-n", ns, "-o", "json").stdout,
        "events": stack.kubectl("get", "events", "-n", ns, "-o", "json").stdout,
        "operator log": "\n".join(
            p.read_text(errors="replace") for p in platform.operator.log_dir.glob("operator-*")
        ),
    }
    for where, text in everything.items():
        assert hostile.endpoint in text, f"{where}: the hostile jobs left no trace to search"
        assert hostile.token not in text, f"the server's planted token reached the {where}"
    for item in json.loads(everything["events"])["items"]:
        assert len(item["message"]) <= 1000


def test_plain_http_is_refused_where_the_platform_requires_https(
    stack: StackHandle, platform: Platform, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = {"RECON_STORAGE_SECURE": "true", "RECON_STORAGE_ALLOW_INSECURE": "false"}
    log_dir = tmp_path_factory.mktemp("https-only")
    before = platform.unlisted.connections
    with running_operator(stack, "https-only", log_dir, env) as op:
        ns = op.namespace
        storage = {"endpoint": platform.unlisted.endpoint, "secure": False}
        apply(stack, ns, reconjob_manifest("plain", "plain/", storage=storage))
        wait_for(lambda: status(stack, ns, "plain").get("phase") == "Failed", 30)
        valid = condition(stack, ns, "plain", "InputsValid")
        assert valid is not None and valid["reason"] == "InsecureStorageNotAllowed"
        assert "spec.storage.secure" in valid["message"]
        assert "RECON_STORAGE_ALLOW_INSECURE" in valid["message"]
        assert not jobs(stack, ns)
    assert platform.unlisted.connections == before


def test_the_capture_reader_repeats_none_of_a_hostile_servers_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The reader on its own against the hostile server, every log record captured at
    DEBUG (urllib3 included): only our words come out."""
    hostile = HostileS3()
    access = StorageAccess(hostile.endpoint, False, "access", "secret-value")
    caplog.set_level(logging.DEBUG)
    try:
        for mode in MODES:
            with pytest.raises(StorageUnavailable) as caught:
                read_capture(
                    open_client(access),
                    mode,
                    "capture/",
                    expected_views=6,
                    limits=Limits(1024**2, 10 * 1024**2),
                    endpoint=hostile.endpoint,
                )
            assert hostile.token not in str(caught.value), mode
            assert len(caught.value.message) < 200
    finally:
        hostile.close()
    assert len(hostile.requests) >= len(MODES)
    assert caplog.records, "nothing logged to search"
    assert hostile.token not in caplog.text


def test_kubectl_explain_says_the_endpoint_must_be_allowed_and_the_secret_labelled(
    stack: StackHandle, platform: Platform
) -> None:
    def explained() -> str:
        result = stack.kubectl("explain", "reconjob.spec.storage", check=False)
        return result.stdout if result.returncode == 0 else ""

    wait_for(lambda: "credentialsSecret" in explained(), 30)
    text = " ".join(explained().split())
    assert "must be one the platform allows" in text
    assert "RECON_STORAGE_ALLOWED_ENDPOINTS" in text
    assert 'labelled recon.dev/storage-credentials: "true"' in text
