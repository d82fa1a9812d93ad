"""ReconJob bodies as the API server would return them, for tests of the pure logic."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from recon_api.models import ReconJob

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def body(
    name: str = "chair-001",
    *,
    namespace: str = "studio",
    uid: str = "uid-chair-001",
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    generation: int = 1,
    created: str = "2025-01-01T12:00:00Z",
) -> dict[str, Any]:
    return {
        "apiVersion": "recon.dev/v1alpha1",
        "kind": "ReconJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid,
            "generation": generation,
            "creationTimestamp": created,
        },
        "spec": spec or {"input": {"bucket": "scans", "prefix": f"{name}/"}},
        "status": status or {},
    }


def reconjob(name: str = "chair-001", **kwargs: Any) -> ReconJob:
    return ReconJob.model_validate(body(name, **kwargs))


def apply_status(job: ReconJob, patch: dict[str, Any]) -> ReconJob:
    """The job after a JSON merge patch of its status, as the API server applies it."""
    status = job.status.to_api()
    for key, value in patch.items():
        if value is None:
            status.pop(key, None)
        else:
            status[key] = value
    data = job.model_dump(mode="json", by_alias=True)
    data["status"] = status
    return ReconJob.model_validate(data)
