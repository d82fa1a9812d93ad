"""Capture download and output upload against the stack's real MinIO."""

from __future__ import annotations

import io
import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from minio import Minio
from recon_api.runner_params import RunnerParams
from recon_runner.control import StopToken
from recon_runner.errors import InvalidInputError, RunnerError, StopRequested, TransientError
from recon_runner.pod.storage import (
    RetryPolicy,
    Storage,
    download_capture,
    make_client,
    upload_outputs,
)

from tests.support import captures
from tests.support.loopback_servers import MODES, HostileS3

FAST = RetryPolicy(attempts=3, backoff=0.05, timeout=1.0)


def params(endpoint: str, bucket: str = "scans") -> RunnerParams:
    return RunnerParams(
        job_name="chair-001",
        job_namespace="studio",
        job_uid="uid-1",
        input_bucket=bucket,
        input_prefix="chair-001/",
        expected_views=2,
        output_bucket=bucket,
        output_prefix="chair-001/output/uid-1/",
        storage_endpoint=endpoint,
    )


@pytest.fixture
def minio(stack: Any) -> Minio:
    client: Minio = stack.minio_client()
    return client


@pytest.fixture
def bucket(minio: Minio) -> Iterator[str]:
    """A bucket of its own for each test (the shared one lasts a module)."""
    with captures.throwaway_bucket(minio) as name:
        yield name


def storage(stack: Any, bucket: str, stop: StopToken | None = None) -> Storage:
    p = params(stack.minio_endpoint, bucket)
    client = make_client(p, stack.minio_access_key, stack.minio_secret_key, FAST)
    return Storage(client, FAST, stop)


def put(minio: Minio, bucket: str, key: str, data: bytes) -> None:
    minio.put_object(bucket, key, io.BytesIO(data), len(data))


def keys(minio: Minio, bucket: str, prefix: str = "") -> set[str]:
    return {o.object_name for o in minio.list_objects(bucket, prefix=prefix, recursive=True)}


TRANSFORMS = {
    "w": 4,
    "h": 4,
    "fl_x": 4,
    "fl_y": 4,
    "cx": 2,
    "cy": 2,
    "frames": [
        {
            "file_path": "images/view_000.png",
            "depth_file_path": "depth/view_000.png",
            "transform_matrix": captures.IDENTITY,
        },
        {
            "file_path": "./images/view_001.png",
            "depth_file_path": "depth/view_001.png",
            "transform_matrix": captures.IDENTITY,
        },
    ],
}


def put_capture(minio: Minio, bucket: str, skip: str | None = None) -> dict[str, bytes]:
    files = {
        "images/view_000.png": b"colour 0",
        "images/view_001.png": b"colour 1",
        "depth/view_000.png": b"depth 0",
        "depth/view_001.png": b"depth 1",
    }
    put(minio, bucket, "chair-001/transforms.json", json.dumps(TRANSFORMS).encode())
    for name, data in files.items():
        if name != skip:
            put(minio, bucket, f"chair-001/{name}", data)
    return files


def test_download_fetches_only_what_transforms_json_references(
    stack: Any, minio: Minio, bucket: str, tmp_path: Path
) -> None:
    files = put_capture(minio, bucket)
    # An earlier run's outputs under the input prefix, and a stray file: never fetched.
    put(minio, bucket, "chair-001/output/old-uid/mesh.glb", b"x" * 1000)
    put(minio, bucket, "chair-001/notes.txt", b"unrelated")
    seen: list[float] = []
    got = download_capture(
        storage(stack, bucket),
        bucket,
        "chair-001/",
        tmp_path,
        lambda fraction, message: seen.append(fraction),
        StopToken(),
    )
    assert sorted(got) == sorted(["transforms.json", *files])
    on_disk = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    assert on_disk == {"transforms.json", *files}
    assert all((tmp_path / name).read_bytes() == data for name, data in files.items())
    assert seen == sorted(seen) and seen[-1] == 1.0


def test_missing_referenced_file_is_invalid_input_naming_the_key(
    stack: Any, minio: Minio, bucket: str, tmp_path: Path
) -> None:
    put_capture(minio, bucket, skip="depth/view_001.png")
    with pytest.raises(InvalidInputError) as info:
        download_capture(
            storage(stack, bucket), bucket, "chair-001", tmp_path, lambda f, m: None, StopToken()
        )
    assert info.value.exit_code == 3
    assert info.value.file == f"s3://{bucket}/chair-001/depth/view_001.png"


def test_missing_transforms_json_is_invalid_input(stack: Any, bucket: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as info:
        download_capture(
            storage(stack, bucket), bucket, "nothing/", tmp_path, lambda f, m: None, StopToken()
        )
    assert info.value.file == f"s3://{bucket}/nothing/transforms.json"


def test_paths_leaving_the_capture_are_refused_before_any_download(
    stack: Any, minio: Minio, bucket: str, tmp_path: Path
) -> None:
    bad = {"frames": [{"file_path": "../secrets.png", "depth_file_path": "depth/a.png"}]}
    put(minio, bucket, "chair-001/transforms.json", json.dumps(bad).encode())
    with pytest.raises(InvalidInputError, match=r"\.\./secrets\.png"):
        download_capture(
            storage(stack, bucket), bucket, "chair-001/", tmp_path, lambda f, m: None, StopToken()
        )
    assert not (tmp_path.parent / "secrets.png").exists()


def outputs(tmp_path: Path) -> dict[str, Path]:
    files = {}
    for name, data in {
        "mesh.glb": b"glTF mesh",
        "preview.png": b"png",
        "metrics.json": b"{}",
    }.items():
        (tmp_path / name).write_bytes(data)
        files[name] = tmp_path / name
    return files


def test_upload_puts_every_file_in_place_and_leaves_no_temporaries(
    stack: Any, minio: Minio, bucket: str, tmp_path: Path
) -> None:
    prefix = "chair-001/output/uid-1/"
    urls = upload_outputs(
        storage(stack, bucket), bucket, prefix, outputs(tmp_path), lambda f, m: None, StopToken()
    )
    assert urls == {
        "mesh.glb": f"s3://{bucket}/{prefix}mesh.glb",
        "preview.png": f"s3://{bucket}/{prefix}preview.png",
        "metrics.json": f"s3://{bucket}/{prefix}metrics.json",
    }
    assert keys(minio, bucket) == {prefix + n for n in ("mesh.glb", "preview.png", "metrics.json")}
    response = minio.get_object(bucket, prefix + "mesh.glb")
    assert response.read() == b"glTF mesh"
    assert response.headers["Content-Type"] == "model/gltf-binary"


def test_stop_during_upload_leaves_nothing_in_the_output_prefix(
    stack: Any, minio: Minio, bucket: str, tmp_path: Path
) -> None:
    stop = StopToken()
    calls: list[str] = []

    def progress(fraction: float, message: str) -> None:
        calls.append(message)
        if len(calls) == 2:  # one file is up in its temporary key
            stop.request()

    with pytest.raises(StopRequested):
        upload_outputs(
            storage(stack, bucket, stop), bucket, "out/", outputs(tmp_path), progress, stop
        )
    assert keys(minio, bucket) == set()


class CopyWatchingStorage(Storage):
    """The real Storage, noting after each server-side copy which final keys MinIO holds,
    so the test can show the failure came after a copy really landed."""

    def __init__(self, stack: Any, minio: Minio, bucket: str, prefix: str) -> None:
        p = params(stack.minio_endpoint, bucket)
        super().__init__(make_client(p, stack.minio_access_key, stack.minio_secret_key, FAST), FAST)
        self._minio, self._bucket, self._prefix = minio, bucket, prefix
        self.after_copies: list[set[str]] = []

    def copy(self, bucket: str, key: str, source_key: str) -> None:
        super().copy(bucket, key, source_key)
        final = keys(self._minio, self._bucket, self._prefix) - keys(
            self._minio, self._bucket, self._prefix + ".partial-"
        )
        self.after_copies.append(final)


def test_failure_while_moving_into_place_rolls_back_what_was_moved(
    stack: Any, minio: Minio, bucket: str, tmp_path: Path
) -> None:
    stage = "rollback-test"
    # Copies run in the order mesh.glb, preview.png, metrics.json: losing preview.png's
    # staged object makes the second copy fail once mesh.glb is already in its final key.
    lost = f"out/.partial-{stage}/preview.png"

    def progress(fraction: float, message: str) -> None:
        if message == "moving outputs into place":
            minio.remove_object(bucket, lost)

    watching = CopyWatchingStorage(stack, minio, bucket, "out/")
    with pytest.raises(RunnerError) as info:
        upload_outputs(
            watching, bucket, "out/", outputs(tmp_path), progress, StopToken(), staging_name=stage
        )
    assert watching.after_copies == [{"out/mesh.glb"}], "the first copy must have landed"
    assert type(info.value) is RunnerError
    assert f"moving s3://{bucket}/{lost} into place" in str(info.value)
    assert "NoSuchKey" in str(info.value)
    # The moved mesh.glb is deleted again along with every temporary.
    assert keys(minio, bucket) == set()


def test_unreachable_storage_is_transient_after_bounded_retries(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = params(f"127.0.0.1:{port}")
    client = make_client(p, "access", "secret", FAST)
    started = time.monotonic()
    with pytest.raises(TransientError) as info:
        download_capture(
            Storage(client, FAST, endpoint=p.storage_endpoint),
            p.input_bucket,
            p.input_prefix,
            tmp_path,
            lambda f, m: None,
            StopToken(),
        )
    assert time.monotonic() - started < 5
    assert info.value.exit_code == 75
    assert "3 attempts" in str(info.value) and f"127.0.0.1:{port}" in str(info.value)


def test_wrong_credentials_are_not_mistaken_for_bad_input(
    stack: Any, bucket: str, tmp_path: Path
) -> None:
    p = params(stack.minio_endpoint, bucket)
    client = make_client(p, stack.minio_access_key, "not-the-secret", FAST)
    with pytest.raises(Exception) as info:
        download_capture(
            Storage(client, FAST), bucket, "chair-001/", tmp_path, lambda f, m: None, StopToken()
        )
    assert not isinstance(info.value, InvalidInputError)
    assert "SignatureDoesNotMatch" in str(info.value)


@pytest.mark.parametrize("mode", MODES)
def test_a_hostile_servers_text_reaches_no_runner_error_or_log(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """What the runner raises becomes its ReconJob's status message and its pod log: the
    server's words (error fields, headers, an HTML body, a broken status line) must not
    travel in it, only the S3 code and the runner's own description (DESIGN.md, "Who may
    reach what storage")."""
    hostile = HostileS3()
    try:
        p = params(hostile.endpoint, bucket=mode)
        client = make_client(p, "access", "secret", FAST)
        store = Storage(client, FAST, endpoint=hostile.endpoint)
        with caplog.at_level(logging.DEBUG), pytest.raises(RunnerError) as failure:
            store.get_bytes(mode, "capture/transforms.json")
    finally:
        hostile.close()
    assert hostile.requests, "the hostile server was never asked"
    told = str(failure.value)
    assert hostile.endpoint in told
    assert hostile.token not in told
    assert hostile.token not in caplog.text
