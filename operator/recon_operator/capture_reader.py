"""Read what capture validation needs from S3/MinIO, and nothing more.

One bounded read of transforms.json, then one ranged GET of the first 33 bytes of each image
it references (the first `expectedViews` frames only): a PNG's header is all there. A JPEG
keeps its size in the SOF segment after its metadata segments, so for a JPEG the reader
reads on, a ranged GET at a time, until the SOF is in (`imageheader.bytes_needed`, at most
`imageheader.MAX_JPEG_HEADER_BYTES`); a phone's JPEG takes one or two more. The ranged
response's Content-Range carries the object's full size, so existence, size and header
come from a single request per file; the prefix itself is never listed, because outputs of
earlier runs accumulate under it (the default output prefix lies inside the input prefix)
and a listing would grow with them. Images are never downloaded.

Storage that cannot be asked (unreachable, refused credentials, missing bucket) raises
`StorageUnavailable`: that is not bad input, and the operator retries it later. Its
messages never contain the secret key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import certifi
import urllib3
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError
from recon_api.storage_errors import describe

from recon_operator.imageheader import HEADER_BYTES, bytes_needed
from recon_operator.validation import (
    TRANSFORMS,
    Limits,
    Problem,
    colour_files,
    files_to_read,
    load_transforms,
    validate_capture,
)

# Parallel header reads per capture: enough to hide round trips, few enough that 200
# captures validated at once do not open thousands of connections.
READ_WORKERS = 8
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 20.0

_MISSING_OBJECT = {"NoSuchKey", "NoSuchObject"}
_AUTH_FAILED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "AllAccessDisabled",
}
_CONTENT_RANGE = re.compile(r"^bytes \d+-\d+/(\d+)$")

T = TypeVar("T")


class StorageUnavailable(RuntimeError):
    """The storage could not be asked; says nothing about the capture itself.

    `reason` is a CamelCase condition reason: StorageUnreachable, StorageAuthFailed,
    BucketNotFound or StorageError."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class StorageAccess:
    """Where the capture lives and the credentials to read it (from the job's Secret)."""

    endpoint: str
    secure: bool
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)


@dataclass(frozen=True)
class RemoteObject:
    size: int
    data: bytes


def open_client(access: StorageAccess) -> Minio:
    """A client with short timeouts and few retries: validation must fail fast and leave
    retrying to the operator's backoff, not hang a handler for minutes."""
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=READ_TIMEOUT_SECONDS),
        maxsize=READ_WORKERS,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        # No retry after a broken answer (read=0): urllib3 logs the error it retries on,
        # and that text is the server's.
        retries=urllib3.Retry(
            total=2, read=0, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)
        ),
    )
    return Minio(
        access.endpoint,
        access_key=access.access_key,
        secret_key=access.secret_key,
        secure=access.secure,
        http_client=http,
    )


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _storage_call(
    fn: Callable[[], T], *, bucket: str, endpoint: str, secrets: tuple[str, ...]
) -> T:
    """Run one S3 call, turning the ways storage can fail into StorageUnavailable.

    S3Error codes that concern the object (NoSuchKey, InvalidRange) pass through: those
    are facts about the capture, for the caller to interpret."""
    try:
        return fn()
    except S3Error as e:
        if e.code == "NoSuchBucket":
            raise StorageUnavailable(
                "BucketNotFound", f"bucket {bucket!r} does not exist at {endpoint}"
            ) from None
        if e.code in _AUTH_FAILED:
            raise StorageUnavailable(
                "StorageAuthFailed",
                f"{endpoint} refused the credentials for bucket {bucket!r} ({e.code}): "
                "check the storage credentials Secret",
            ) from None
        if e.code in _MISSING_OBJECT or e.code == "InvalidRange":
            raise
        raise StorageUnavailable("StorageError", _scrub(describe(e, endpoint), secrets)) from None
    except (ServerError, InvalidResponseError, urllib3.exceptions.HTTPError, OSError) as e:
        # The server's own words (its message, a non-XML body, a broken status line)
        # never reach status, Events or logs: `describe` says what happened in ours.
        message = _scrub(describe(e, endpoint), secrets)
        raise StorageUnavailable("StorageUnreachable", message) from None


# Read past what a JPEG's next marker needs, so the segment after it comes in the same GET.
JPEG_READ_SLACK = 1024


def _ranged_get(
    client: Minio, bucket: str, key: str, length: int, offset: int = 0
) -> RemoteObject | None:
    """`length` bytes from `offset` and the full size of an object; None when it is absent."""
    try:
        response = client.get_object(bucket, key, offset=offset, length=length)
    except S3Error as e:
        if e.code in _MISSING_OBJECT:
            return None
        if e.code == "InvalidRange":  # an empty object has no byte 0
            return RemoteObject(size=0, data=b"")
        raise
    try:
        data = response.read(length)
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        size = int(match.group(1)) if match else len(data)
    finally:
        response.close()
        response.release_conn()
    return RemoteObject(size=size, data=data)


def _read_on(read: Callable[[int, int], RemoteObject | None], data: bytes, size: int) -> bytes:
    """A JPEG's first bytes, extended by ranged reads until its SOF segment is in, the
    file ends, or the bound is reached (then the header parser names what is missing)."""
    while (needed := bytes_needed(data)) is not None and len(data) < size:
        obj = read(len(data), min(needed + JPEG_READ_SLACK, size) - len(data))
        if obj is None or not obj.data:
            break
        data += obj.data
    return data


def read_capture(
    client: Minio,
    bucket: str,
    prefix: str,
    *,
    expected_views: int,
    limits: Limits,
    endpoint: str = "",
    secrets: tuple[str, ...] = (),
) -> list[Problem]:
    """Every problem with the capture at `bucket`/`prefix`; empty when it is valid.

    Raises StorageUnavailable when the storage itself is the problem. `endpoint` and
    `secrets` only shape error messages (the latter are scrubbed from them)."""
    where = endpoint or "storage"

    def call(fn: Callable[[], T]) -> T:
        return _storage_call(fn, bucket=bucket, endpoint=where, secrets=secrets)

    obj = call(lambda: _ranged_get(client, bucket, prefix + TRANSFORMS, limits.max_file_bytes + 1))
    if obj is None:
        transforms = load_transforms(None, 0, limits)
        return validate_capture(transforms, {}, {}, expected_views=expected_views, limits=limits)
    found: dict[str, int] = {TRANSFORMS: obj.size}
    # Parsed once, here; an oversized transforms.json is one problem and is not parsed.
    transforms = load_transforms(obj.data, obj.size, limits)
    del obj  # only the document is needed now: its bytes are not kept during header reads
    wanted = files_to_read(transforms, expected_views)
    headers: dict[str, bytes] = {}
    with ThreadPoolExecutor(max_workers=READ_WORKERS) as pool:
        results = list(
            pool.map(
                lambda path: call(lambda: _ranged_get(client, bucket, prefix + path, HEADER_BYTES)),
                wanted,
            )
        )
    for path, obj in zip(wanted, results, strict=True):
        if obj is not None:
            found[path] = obj.size
            headers[path] = obj.data
    colour = colour_files(transforms, expected_views)
    jpegs = [p for p in headers if p in colour and bytes_needed(headers[p]) is not None]
    if jpegs:
        with ThreadPoolExecutor(max_workers=READ_WORKERS) as pool:
            grown = list(
                pool.map(
                    lambda path: _read_on(
                        lambda offset, length: call(
                            lambda: _ranged_get(client, bucket, prefix + path, length, offset)
                        ),
                        headers[path],
                        found[path],
                    ),
                    jpegs,
                )
            )
        headers.update(zip(jpegs, grown, strict=True))
    return validate_capture(
        transforms, found, headers, expected_views=expected_views, limits=limits
    )
