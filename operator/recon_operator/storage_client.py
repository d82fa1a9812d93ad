"""The one way the operator reaches a ReconJob's storage.

Capture validation and the removal of partial outputs (on cancel and on delete) all open
their client here, so each follows the same order: the platform's policy first (a refused
endpoint is never connected to), then the job's Secret, its opt-in label and its keys,
and only then a client. The decisions are the pure `storage_policy` and `credentials`;
this module holds the two calls between them (read the Secret, open the client).
"""

from __future__ import annotations

from dataclasses import dataclass

from minio import Minio
from recon_api.models import ReconJob

from recon_operator import credentials, storage_policy
from recon_operator.capture_reader import StorageAccess, open_client
from recon_operator.logs import REDACTOR
from recon_operator.runtime import Runtime


class StorageRefused(Exception):
    """The platform does not let this job's storage be reached: final for the spec."""

    def __init__(self, refusal: storage_policy.Refusal) -> None:
        super().__init__(refusal.message)
        self.reason = refusal.reason
        self.message = refusal.message


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
