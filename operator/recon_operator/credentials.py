"""Storage credentials from the job's Secret, and what to say when they are unusable.

A Secret is used only when it carries the opt-in label (DESIGN.md, "Who may reach what
storage"): otherwise anyone who may create a ReconJob could have the operator sign
requests with any Secret of the namespace that happens to hold the two keys. A missing
Secret, key or label is a setup problem that a user fixes without touching the ReconJob,
so it keeps the job waiting in Validating rather than failing it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from recon_api.constants import STORAGE_CREDENTIALS_LABEL

from recon_operator.capture_reader import StorageAccess
from recon_operator.cluster import StoredSecret

ACCESS_KEY = "accessKey"
SECRET_KEY = "secretKey"
LABEL_VALUE = "true"
MISSING = "CredentialsMissing"
NOT_LABELLED = "CredentialsNotLabelled"


class CredentialsUnavailable(Exception):
    """`reason` is the condition reason: CredentialsMissing (no Secret, or a key missing)
    or CredentialsNotLabelled (the Secret has not been opted in)."""

    def __init__(self, message: str, reason: str = MISSING) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


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


def opted_in(labels: Mapping[str, str] | None) -> bool:
    return (labels or {}).get(STORAGE_CREDENTIALS_LABEL) == LABEL_VALUE


def not_labelled_message(namespace: str, secret_name: str) -> str:
    """Names the Secret and the missing label, and the one command that adds it."""
    return (
        f"credentials Secret {namespace}/{secret_name} lacks the label "
        f"{STORAGE_CREDENTIALS_LABEL}={LABEL_VALUE}, so it is not used as storage "
        f"credentials; to opt it in: kubectl -n {namespace} label secret {secret_name} "
        f"{STORAGE_CREDENTIALS_LABEL}={LABEL_VALUE}"
    )


def labelled_storage_access(
    secret_name: str,
    namespace: str,
    secret: StoredSecret | None,
    endpoint: str,
    secure: bool,
) -> StorageAccess:
    """`storage_access` for a Secret that opted in; its keys are not read otherwise."""
    if secret is not None and not opted_in(secret.labels):
        raise CredentialsUnavailable(not_labelled_message(namespace, secret_name), NOT_LABELLED)
    return storage_access(
        secret_name, namespace, None if secret is None else secret.data, endpoint, secure
    )
