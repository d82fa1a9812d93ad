"""Capture validation against the stack's real MinIO: problems in uploaded captures are
found from ranged header reads, and storage failures are told apart from bad input."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from recon_operator import validation
from recon_operator.capture_reader import (
    StorageAccess,
    StorageUnavailable,
    open_client,
    read_capture,
)
from recon_operator.imageheader import HEADER_BYTES
from recon_operator.validation import Limits, Problem

from tests.support import captures
from tests.support.recording_minio import RecordingMinio
from tests.support.stack_handle import StackHandle

pytestmark = pytest.mark.stack

LIMITS = Limits(max_file_bytes=20 * 1024**2, max_total_bytes=200 * 1024**2)
W, H = 32, 24
VIEWS = 3


@pytest.fixture(scope="module")
def access(stack: StackHandle) -> StorageAccess:
    return StorageAccess(
        endpoint=stack.minio_endpoint,
        secure=False,
        access_key=stack.minio_access_key,
        secret_key=stack.minio_secret_key,
    )


def check(access: StorageAccess, bucket: str, prefix: str, views: int = VIEWS) -> list[str]:
    problems = read_capture(
        open_client(access),
        bucket,
        prefix,
        expected_views=views,
        limits=LIMITS,
        endpoint=access.endpoint,
        secrets=(access.secret_key,),
    )
    return [str(p) for p in problems]


def test_good_capture_is_read_with_header_sized_ranges_only(
    stack: StackHandle, access: StorageAccess, bucket: str
) -> None:
    files = captures.files(VIEWS, W, H)
    large = captures.png(W, H, bit_depth=8, colour_type=2, padding=2_000_000)
    files["images/view_001.png"] = large
    captures.upload(stack.minio_client(), bucket, "good/", files)
    client = RecordingMinio.plain(access.endpoint, access.access_key, access.secret_key)
    problems = read_capture(client, bucket, "good/", expected_views=VIEWS, limits=LIMITS)
    assert problems == []
    images = [g for g in client.gets if g[0].endswith(".png")]
    assert len(images) == 2 * VIEWS
    assert all(offset == 0 and length == HEADER_BYTES for _, offset, length in images)


def test_jpeg_sizes_come_from_ranged_reads_up_to_the_sof(
    stack: StackHandle, access: StorageAccess, bucket: str
) -> None:
    """A phone's JPEG carries its metadata first (here a 150 kB colour profile in three
    segments): the reader follows the segment lengths in ranged reads to the SOF segment
    and never downloads the image data after it."""
    files = captures.files(VIEWS, W, H)
    doc = captures.transforms(VIEWS, W, H)
    doc.update(depth_w=W // 2, depth_h=H // 2)
    for i, frame in enumerate(doc["frames"]):
        frame["file_path"] = f"images/view_{i:03d}.jpg"
        files.pop(f"images/view_{i:03d}.png")
        # Padding after the image stands in for a phone photo's megabytes of image data.
        padded = captures.jpeg(W, H, icc_profile=b"\0" * 150_000) + b"\0" * 500_000
        files[f"images/view_{i:03d}.jpg"] = padded
        files[f"depth/view_{i:03d}.png"] = captures.png(W // 2, H // 2, bit_depth=16, colour_type=0)
    files["images/view_002.jpg"] = captures.jpeg(W, H * 2, progressive=True)
    files["depth/view_001.png"] = captures.png(W, H, bit_depth=16, colour_type=0)  # colour size
    files["transforms.json"] = json.dumps(doc).encode()
    captures.upload(stack.minio_client(), bucket, "jpeg/", files)
    client = RecordingMinio.plain(access.endpoint, access.access_key, access.secret_key)
    problems = read_capture(client, bucket, "jpeg/", expected_views=VIEWS, limits=LIMITS)
    assert [str(p) for p in problems] == [
        "depth/view_001.png: is 32x24 but frame 1 says 16x12 (depth_w, depth_h)",
        "images/view_002.jpg: is 32x48 but frame 2 says 32x24 (w, h)",
    ]
    first = files["images/view_000.jpg"]
    reads = [(offset, length) for key, offset, length in client.gets if key.endswith("0.jpg")]
    assert 2 <= len(reads) <= 6, reads
    read = sum(length for _, length in reads)
    sof = first.index(b"\xff\xc0")
    assert sof < read < sof + 4096 < len(first)


def test_bad_capture_reports_every_problem(
    stack: StackHandle, access: StorageAccess, bucket: str
) -> None:
    files = captures.files(VIEWS, W, H)
    doc = captures.transforms(VIEWS, W, H)
    doc["frames"][0]["transform_matrix"][0][0] = 3  # a scaled camera
    doc["frames"][2]["file_path"] = "../good/images/view_000.png"
    files["transforms.json"] = json.dumps(doc).encode()
    del files["depth/view_001.png"]
    files["images/view_001.png"] = captures.png(
        W, H, bit_depth=8, colour_type=0
    )  # grayscale colour
    files["depth/view_000.png"] = captures.png(W, H, bit_depth=8, colour_type=2)  # colour as depth
    files["depth/view_002.png"] = b""  # an empty upload
    captures.upload(stack.minio_client(), bucket, "bad/", files)

    assert check(access, bucket, "bad/") == [
        "transforms.json: frames[0].transform_matrix: rotation part is not orthonormal with "
        "determinant 1 (scaled, sheared or mirrored camera)",
        "transforms.json: frames[2].file_path: '../good/images/view_000.png' leaves the "
        "dataset (..)",
        "depth/view_000.png: depth must be a 16-bit grayscale PNG, found 32x24 8-bit RGB",
        "images/view_001.png: colour must be an 8-bit RGB or RGBA PNG or a baseline or "
        "progressive JPEG, found 32x24 8-bit grayscale",
        "transforms.json: frames[1].depth_file_path: depth/view_001.png not found under the "
        "dataset prefix",
        "depth/view_002.png: not a PNG file (empty)",
    ]


def test_wrong_view_count_and_size_limits(
    stack: StackHandle, access: StorageAccess, bucket: str
) -> None:
    files = captures.files(VIEWS, W, H)
    files["images/view_002.png"] = captures.png(W, H, bit_depth=8, colour_type=6, padding=30_000)
    captures.upload(stack.minio_client(), bucket, "big/", files)
    problems = read_capture(
        open_client(access),
        bucket,
        "big/",
        expected_views=4,
        limits=Limits(max_file_bytes=20_000, max_total_bytes=25_000),
    )
    texts = [str(p) for p in problems]
    assert texts[0] == ("transforms.json: frames: lists 3 frames but spec.input.expectedViews is 4")
    assert texts[1].startswith("images/view_002.png: is ")
    assert "over the per-file limit of 20000" in texts[1]
    assert texts[2].startswith("capture: totals ") and "over the limit of 25000" in texts[2]
    assert len(texts) == 3


def test_missing_transforms_is_bad_input(access: StorageAccess, bucket: str) -> None:
    assert check(access, bucket, "nothing-here/") == [
        "transforms.json: not found under the dataset prefix"
    ]


def test_missing_bucket_is_storage_not_input(access: StorageAccess) -> None:
    with pytest.raises(StorageUnavailable) as err:
        check(access, "no-such-bucket-here", "x/")
    assert err.value.reason == "BucketNotFound"
    assert "no-such-bucket-here" in err.value.message


def test_refused_credentials_never_leak_the_secret(access: StorageAccess, bucket: str) -> None:
    wrong = StorageAccess(
        endpoint=access.endpoint,
        secure=False,
        access_key=access.access_key,
        secret_key="wrong-" + access.secret_key,
    )
    with pytest.raises(StorageUnavailable) as err:
        check(wrong, bucket, "good/")
    assert err.value.reason == "StorageAuthFailed"
    assert wrong.secret_key not in str(err.value)
    assert access.secret_key not in str(err.value)
    assert access.secret_key not in repr(wrong)


def test_stopped_endpoint_is_unreachable_storage(access: StorageAccess, bucket: str) -> None:
    with socket.socket() as s:  # a port nothing listens on, like a stopped MinIO
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = StorageAccess(
        endpoint=f"127.0.0.1:{port}",
        secure=False,
        access_key=access.access_key,
        secret_key=access.secret_key,
    )
    with pytest.raises(StorageUnavailable) as err:
        check(down, bucket, "good/")
    assert err.value.reason == "StorageUnreachable"
    assert f"127.0.0.1:{port}" in err.value.message
    assert access.secret_key not in str(err.value)


def test_transforms_json_is_parsed_once(
    stack: StackHandle, access: StorageAccess, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parsing a transforms.json at the 20 MB limit costs about a hundred MiB; it used to be
    parsed twice per validation (for the files to read, then for the checks)."""
    files = captures.files(VIEWS, W, H)
    doc = captures.transforms(VIEWS, W, H)
    doc["notes"] = "x" * 2_000_000  # a large document that is still valid
    files["transforms.json"] = json.dumps(doc).encode()
    captures.upload(stack.minio_client(), bucket, "parsed-once/", files)
    parsed: list[int] = []
    parse = validation.parse_transforms

    def counting_parse(data: bytes) -> tuple[dict[str, Any] | None, Problem | None]:
        parsed.append(len(data))
        return parse(data)

    monkeypatch.setattr(validation, "parse_transforms", counting_parse)
    assert check(access, bucket, "parsed-once/") == []
    assert parsed == [len(files["transforms.json"])]
