"""The stack's MinIO is a real S3 server: the calls the operator and runner make work."""

from __future__ import annotations

import io
import uuid

import pytest

from tests.support.stack_handle import StackHandle

pytestmark = pytest.mark.stack


def test_bucket_put_list_ranged_get_delete(stack: StackHandle) -> None:
    client = stack.minio_client()
    bucket = f"t-{uuid.uuid4().hex[:10]}"
    client.make_bucket(bucket)
    assert client.bucket_exists(bucket)
    payload = bytes(range(256)) * 40
    client.put_object(bucket, "capture/images/view_000.png", io.BytesIO(payload), len(payload))
    client.put_object(bucket, "capture/transforms.json", io.BytesIO(b"{}"), 2)

    listed = sorted(o.object_name for o in client.list_objects(bucket, "capture/", recursive=True))
    assert listed == ["capture/images/view_000.png", "capture/transforms.json"]

    # The operator validates PNG headers with ranged reads, never the whole file.
    resp = client.get_object(bucket, "capture/images/view_000.png", offset=8, length=25)
    try:
        assert resp.read() == payload[8:33]
    finally:
        resp.close()
        resp.release_conn()

    for name in listed:
        client.remove_object(bucket, name)
    assert list(client.list_objects(bucket, recursive=True)) == []
    client.remove_bucket(bucket)
    assert not client.bucket_exists(bucket)
