"""Validation's one call to storage: the job's capture read and checked, as a verdict.

The edge between `handlers.validate` and storage: open the job's storage the one way
(`storage_client.open_storage`: policy, Secret, client), read the capture's headers
(`capture_reader`, checked by the pure `validation`), and turn every way that can end into
a `Verdict` that `lifecycle.validated` maps to the next status without further I/O.
"""

from __future__ import annotations

from typing import Any

from recon_api.models import ReconJob

from recon_operator import credentials, storage_client
from recon_operator.capture_reader import StorageUnavailable, read_capture
from recon_operator.runtime import Runtime
from recon_operator.validation import Limits, Outcome, Verdict


async def check(rt: Runtime, job: ReconJob) -> Verdict:
    limits = Limits(rt.settings.max_file_bytes, rt.settings.max_total_bytes)
    try:
        storage = await storage_client.open_storage(rt, job)

        def read() -> list[Any]:
            return read_capture(
                storage.client,
                job.spec.input.bucket,
                job.spec.input.prefix,
                expected_views=job.spec.input.expected_views,
                limits=limits,
                endpoint=storage.access.endpoint,
                secrets=(storage.access.secret_key,),
            )

        problems = await rt.call(read)
    except storage_client.StorageRefused as e:
        return Verdict(Outcome.REFUSED, reason=e.reason, message=e.message)
    except (credentials.CredentialsUnavailable, StorageUnavailable) as e:
        return Verdict(Outcome.UNAVAILABLE, reason=e.reason, message=e.message)
    if problems:
        return Verdict(Outcome.INVALID, problems=[str(p) for p in problems])
    return Verdict(Outcome.VALID)
