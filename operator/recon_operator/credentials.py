"""Storage credentials from the job's Secret, and what to say when they are unusable.

A missing Secret or key is a setup problem that a user fixes without touching the
ReconJob, so it keeps the job waiting in Validating rather than failing it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from recon_operator.capture_reader import StorageAccess

ACCESS_KEY = "accessKey"
SECRET_KEY = "secretKey"


class CredentialsUnavailable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def storage_access(
    secret_name: str,
    namespace: str,
    data: Mapping[str, str] | None,
    endpoint: str,
    secure: bool,
) -> StorageAccess:
    """The decoded credentials; the error message names the Secret and key, never a value."""
    if data is None:
        raise CredentialsUnavailable(
            f"credentials Secret {namespace}/{secret_name} not found "
            f"(it needs keys {ACCESS_KEY} and {SECRET_KEY})"
        )
    values: dict[str, str] = {}
    for key in (ACCESS_KEY, SECRET_KEY):
        raw = data.get(key)
        if not raw:
            raise CredentialsUnavailable(
                f"credentials Secret {namespace}/{secret_name} has no key {key}"
            )
        try:
            values[key] = base64.b64decode(raw, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialsUnavailable(
                f"credentials Secret {namespace}/{secret_name}: key {key} is not valid text"
            ) from None
    return StorageAccess(
        endpoint=endpoint,
        secure=secure,
        access_key=values[ACCESS_KEY],
        secret_key=values[SECRET_KEY],
    )
