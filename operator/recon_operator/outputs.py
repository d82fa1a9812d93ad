"""Removing a stopped job's partial outputs, and nothing else.

Under the default output prefix (keyed by the ReconJob's uid) everything is this job's.
An explicit prefix may be shared with earlier runs, so there only objects written since
this job was admitted go: finished outputs of other jobs are never touched.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from minio import Minio
from minio.deleteobjects import DeleteObject
from recon_api.models import ReconJob


@dataclass(frozen=True)
class StoredObject:
    key: str
    modified: datetime | None


def own_prefix(job: ReconJob) -> bool:
    return job.spec.output.prefix is None


def partial_outputs(job: ReconJob, objects: Iterable[StoredObject]) -> list[str]:
    """Keys of this job's partial outputs among the objects under its output prefix."""
    if own_prefix(job):
        return [o.key for o in objects]
    since = job.status.started_at
    if since is None:
        return []  # never admitted: nothing can have been written
    return [o.key for o in objects if o.modified is not None and o.modified >= since]


def delete_partial_outputs(client: Minio, job: ReconJob) -> int:
    bucket, prefix = job.output_bucket(), job.output_prefix()
    listed = [
        StoredObject(str(o.object_name), o.last_modified)
        for o in client.list_objects(bucket, prefix=prefix, recursive=True)
        if o.object_name
    ]
    keys = partial_outputs(job, listed)
    if not keys:
        return 0
    errors = list(client.remove_objects(bucket, (DeleteObject(k) for k in keys)))
    if errors:
        raise RuntimeError(f"could not delete {len(errors)} object(s) under {bucket}/{prefix}")
    return len(keys)
