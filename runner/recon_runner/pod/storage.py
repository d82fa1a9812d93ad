"""Moving the capture in and the outputs out of MinIO/S3, from inside the runner's pod.

Only the files transforms.json references are downloaded: the output prefix may lie under
the input prefix, and earlier runs' meshes are none of this run's business. Outputs are
uploaded to temporary keys and copied into place only when all of them are up, so the
output prefix never holds a partial result; on failure or SIGTERM the temporaries (and any
final key this attempt already wrote) are deleted. Storage that stays unreachable after a
bounded number of retries is a TransientError (exit 75): the Job's retry may find it back.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TypeVar

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, S3Error, ServerError
from recon_api.runner_params import RunnerParams
from recon_api.storage_errors import describe

from recon_runner.control import StopToken
from recon_runner.errors import InvalidInputError, RunnerError, TransientError
from recon_runner.stages.capture import read_layout_bytes

log = logging.getLogger(__name__)

TRANSFORMS = "transforms.json"
RETRIES_ENV = "RECON_STORAGE_RETRIES"
BACKOFF_ENV = "RECON_STORAGE_BACKOFF_SECONDS"
TIMEOUT_ENV = "RECON_STORAGE_TIMEOUT_SECONDS"

_NOT_FOUND = {"NoSuchKey", "NoSuchBucket", "NoSuchObject"}
# Error codes a later attempt may not see again.
_RETRYABLE_CODES = {
    "InternalError",
    "ServiceUnavailable",
    "SlowDown",
    "RequestTimeout",
    "XMinioServerNotInitialized",
    "XMinioStorageFull",
}
_CONTENT_TYPES = {
    ".glb": "model/gltf-binary",
    ".obj": "model/obj",
    ".mtl": "model/mtl",
    ".ply": "application/octet-stream",
    ".png": "image/png",
    ".json": "application/json",
}

T = TypeVar("T")
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before calling storage unreachable: `attempts` tries per request,
    waiting `backoff`, 2x`backoff`, ... (capped at `max_backoff`) in between."""

    attempts: int = 5
    backoff: float = 1.0
    max_backoff: float = 15.0
    timeout: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RetryPolicy:
        env = os.environ if environ is None else environ
        default = cls()
        try:
            return cls(
                attempts=max(1, int(env.get(RETRIES_ENV, default.attempts))),
                backoff=max(0.0, float(env.get(BACKOFF_ENV, default.backoff))),
                timeout=max(0.1, float(env.get(TIMEOUT_ENV, default.timeout))),
            )
        except ValueError as e:
            raise RunnerError(f"bad storage retry setting: {e}") from None


def s3_url(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def as_prefix(prefix: str) -> str:
    """A key prefix that names a folder: empty (the bucket root) or ending in '/'."""
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def make_client(
    params: RunnerParams, access_key: str, secret_key: str, policy: RetryPolicy
) -> Minio:
    """A client whose HTTP layer fails fast (short timeouts, no retries of its own), so
    `Storage` alone decides how long storage may stay unreachable."""
    endpoint, secure = params.storage_endpoint, params.storage_secure
    for scheme, is_secure in (("https://", True), ("http://", False)):
        if endpoint.startswith(scheme):
            endpoint, secure = endpoint[len(scheme) :], is_secure
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=policy.timeout, read=max(policy.timeout, 30.0)),
        retries=False,
        maxsize=4,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
    )
    return Minio(
        endpoint.rstrip("/"),
        access_key=access_key,
        secret_key=secret_key,
        secure=secure,
        # A fixed region spares a bucket-location request before the first real one.
        region="us-east-1",
        http_client=http,
    )


def referenced_files(transforms: bytes) -> list[str]:
    """The capture files transforms.json names (colour, depth, masks, confidence), as
    normalised paths relative to the capture root, in frame order, each once. Read through
    the capture contract: a document it refuses (a path that could reach outside the
    capture among its faults) is bad input before anything is downloaded."""
    layout = read_layout_bytes(transforms)
    return layout.paths()


def _content_type(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    return _CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def _retryable(error: Exception) -> bool:
    if isinstance(error, S3Error):
        status = getattr(error.response, "status", 0) or 0
        return error.code in _RETRYABLE_CODES or status >= 500
    # Connection trouble only: a local OSError (a missing file to upload) is a bug, not an
    # outage, and retrying it would only delay the report.
    return isinstance(
        error,
        ServerError
        | InvalidResponseError
        | urllib3.exceptions.HTTPError
        | ConnectionError
        | TimeoutError,
    )


def _describe(error: Exception, endpoint: str) -> str:
    """The operator's closed vocabulary (recon_api.storage_errors): what the runner writes
    into its ReconJob's status and its log never carries the server's own text."""
    if isinstance(error, urllib3.exceptions.MaxRetryError) and error.reason is not None:
        return describe(error.reason, endpoint or "the storage endpoint")
    return describe(error, endpoint or "the storage endpoint")


class Storage:
    """S3 operations with bounded retries; `stop` cuts backoff waits short on SIGTERM."""

    def __init__(
        self,
        client: Minio,
        policy: RetryPolicy | None = None,
        stop: StopToken | None = None,
        endpoint: str = "",
    ) -> None:
        self._client = client
        self._policy = policy or RetryPolicy()
        self._stop = stop or StopToken()
        self._endpoint = endpoint

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        policy = self._policy
        for attempt in range(1, policy.attempts + 1):
            try:
                return operation()
            except Exception as e:
                if not _retryable(e):
                    raise
                if attempt == policy.attempts:
                    where = f" at {self._endpoint}" if self._endpoint else ""
                    raise TransientError(
                        f"storage{where} unreachable while {what} "
                        f"({attempt} attempts): {_describe(e, self._endpoint)}"
                    ) from None
                delay = min(policy.max_backoff, policy.backoff * 2 ** (attempt - 1))
                log.warning(
                    "storage error while %s (attempt %d/%d, next in %.1fs): %s",
                    what,
                    attempt,
                    policy.attempts,
                    delay,
                    _describe(e, self._endpoint),
                )
                self._sleep(delay)
                self._stop.check()
        raise AssertionError("unreachable")

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stop.requested and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    def _refused(self, error: S3Error, what: str) -> RunnerError:
        return RunnerError(f"storage refused {what}: {_describe(error, self._endpoint)}")

    def get_bytes(self, bucket: str, key: str) -> bytes:
        def get() -> bytes:
            response = self._client.get_object(bucket, key)
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

        try:
            return self._call(f"reading {s3_url(bucket, key)}", get)
        except S3Error as e:
            if e.code in _NOT_FOUND:
                raise InvalidInputError(s3_url(bucket, key), "not found in storage") from None
            raise self._refused(e, f"reading {s3_url(bucket, key)}") from None

    def download(self, bucket: str, key: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._call(
                f"downloading {s3_url(bucket, key)}",
                lambda: self._client.fget_object(bucket, key, str(dest)),
            )
        except S3Error as e:
            if e.code in _NOT_FOUND:
                raise InvalidInputError(s3_url(bucket, key), "not found in storage") from None
            raise self._refused(e, f"reading {s3_url(bucket, key)}") from None

    def _write(self, what: str, operation: Callable[[], object], bucket: str) -> None:
        try:
            self._call(what, operation)
        except S3Error as e:
            if e.code == "NoSuchBucket":
                raise InvalidInputError(
                    s3_url(bucket, ""), "output bucket does not exist"
                ) from None
            raise self._refused(e, what) from None

    def upload(self, bucket: str, key: str, path: Path) -> None:
        self._write(
            f"uploading {s3_url(bucket, key)}",
            lambda: self._client.fput_object(
                bucket, key, str(path), content_type=_content_type(path.name)
            ),
            bucket,
        )

    def copy(self, bucket: str, key: str, source_key: str) -> None:
        self._write(
            f"moving {s3_url(bucket, source_key)} into place",
            lambda: self._client.copy_object(bucket, key, CopySource(bucket, source_key)),
            bucket,
        )

    def delete_quietly(self, bucket: str, keys: Sequence[str]) -> None:
        """Best-effort cleanup in one request: it runs on the way out after a failure or
        SIGTERM, where a retry loop would eat the grace period."""
        if not keys:
            return
        try:
            errors = list(self._client.remove_objects(bucket, [DeleteObject(k) for k in keys]))
        except Exception as e:
            log.warning(
                "could not delete %d temporary objects: %s", len(keys), _describe(e, self._endpoint)
            )
            return
        for error in errors:
            log.warning("could not delete %s: %s", error.name, error.message)

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        return self._call(
            f"listing {s3_url(bucket, prefix)}",
            lambda: [
                o.object_name
                for o in self._client.list_objects(bucket, prefix=prefix, recursive=True)
                if o.object_name is not None
            ],
        )


def download_capture(
    storage: Storage,
    bucket: str,
    prefix: str,
    dest: Path,
    progress: Progress,
    stop: StopToken,
) -> list[str]:
    """transforms.json, then every file it references, into `dest` (same relative paths).
    Returns the relative paths downloaded."""
    prefix = as_prefix(prefix)
    raw = storage.get_bytes(bucket, prefix + TRANSFORMS)
    files = referenced_files(raw)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / TRANSFORMS).write_bytes(raw)
    for index, name in enumerate(files):
        stop.check()
        progress(index / len(files), f"downloading {name} ({index + 1}/{len(files)})")
        storage.download(bucket, prefix + name, dest / name)
    progress(1.0, f"downloaded {len(files) + 1} files")
    return [TRANSFORMS, *files]


def upload_outputs(
    storage: Storage,
    bucket: str,
    prefix: str,
    files: Mapping[str, Path],
    progress: Progress,
    stop: StopToken,
    staging_name: str | None = None,
) -> dict[str, str]:
    """Upload `files` (final name -> local path) under `prefix`; return name -> s3:// URL.

    Each file goes first to `<prefix>.partial-<id>/<name>`; only when all are up are they
    copied to their final keys, metrics.json last, and the temporaries deleted. The copy
    phase takes no stop requests: it is a few quick server-side copies, and finishing it is
    what keeps the prefix whole. Any failure deletes the temporaries and whatever final
    keys this call had already written.
    """
    prefix = as_prefix(prefix)
    staging = f"{prefix}.partial-{staging_name or uuid.uuid4().hex[:12]}/"
    names = sorted(files, key=lambda n: (n == "metrics.json", n))
    staged: list[str] = []
    committed: list[str] = []
    try:
        for index, name in enumerate(names):
            stop.check()
            progress(index / (len(names) + 1), f"uploading {name} ({index + 1}/{len(names)})")
            staged.append(staging + name)
            storage.upload(bucket, staging + name, files[name])
        stop.check()
        progress(len(names) / (len(names) + 1), "moving outputs into place")
        for name in names:
            committed.append(prefix + name)
            storage.copy(bucket, prefix + name, staging + name)
    except BaseException:
        storage.delete_quietly(bucket, committed + staged)
        raise
    storage.delete_quietly(bucket, staged)
    progress(1.0, f"uploaded {len(names)} files to {s3_url(bucket, prefix)}")
    return {name: s3_url(bucket, prefix + name) for name in names}
