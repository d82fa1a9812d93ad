"""The one way the operator reaches a ReconJob's storage.

Capture validation and the removal of partial outputs (on cancel, on delete and after a
Kueue eviction: `remove_partial_outputs`) all open their client here, so each follows the
same order: the platform's policy first (a refused endpoint is never connected to), then
the job's Secret, its opt-in label and its keys, and only then a client. The decisions are
the pure `storage_policy` and `credentials`; this module holds the calls between them.
"""

from __future__ import annotations

from dataclasses import dataclass

from minio import Minio
from recon_api import storage_errors
from recon_api.models import ReconJob

from recon_operator import credentials, jobspec, outputs, storage_policy
from recon_operator.capture_reader import StorageAccess, open_client
from recon_operator.logs import REDACTOR
from recon_operator.runtime import Runtime


class StorageRefused(Exception):
    """The platform does not let this job's storage be reached: final for the spec."""

    def __init__(self, refusal: storage_policy.Refusal) -> None:
        super().__init__(refusal.message)
        self.reason = refusal.reason
        self.message = refusal.message


class CleanupFailed(Exception):
    """Partial outputs could not be removed; `message` is in the operator's own words (the
    storage server's text never reaches an Event or a log line: `storage_errors`)."""

    def __init__(self, message: str, refused: bool = False) -> None:
        super().__init__(message)
        self.message = message
        # The platform refused the storage: never connected to, so nothing was written.
        self.refused = refused


@dataclass(frozen=True)
class OpenedStorage:
    client: Minio
    access: StorageAccess


async def open_storage(rt: Runtime, job: ReconJob) -> OpenedStorage:
    """A client for the job's storage; raises StorageRefused or CredentialsUnavailable."""
    decision = storage_policy.target(job, rt.settings)
    if isinstance(decision, storage_policy.Refusal):
        raise StorageRefused(decision)
    namespace = job.metadata["namespace"]
    secret = await rt.call(rt.cluster.read_secret, namespace, decision.secret_name)
    access = credentials.labelled_storage_access(
        decision.secret_name, namespace, secret, decision.endpoint, decision.secure
    )
    REDACTOR.add(access.secret_key)
    return OpenedStorage(open_client(access), access)


async def remove_partial_outputs(rt: Runtime, job: ReconJob) -> int:
    """Delete the job's partial outputs (`outputs.partial_outputs`); how many went. Raises
    CleanupFailed, whose message names the prefix and what went wrong."""
    where = f"could not remove partial outputs under {job.output_prefix()}"
    try:
        storage = await open_storage(rt, job)
        return await rt.call(outputs.delete_partial_outputs, storage.client, job)
    except StorageRefused as e:
        raise CleanupFailed(f"{where}: {e.message}", refused=True) from None
    except credentials.CredentialsUnavailable as e:
        raise CleanupFailed(f"{where}: {e.message}") from None
    except Exception as e:
        endpoint, _ = jobspec.storage_endpoint(job, rt.settings)
        raise CleanupFailed(f"{where}: {storage_errors.describe(e, endpoint)}") from None
