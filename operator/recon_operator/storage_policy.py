"""Whether the platform lets a ReconJob's storage be reached: the decision, with no I/O.

The ReconJob's author names an endpoint ; the platform decides whether the operator and its
runners may reach it (DESIGN.md, "Who may reach what storage"). Without
that check, anyone allowed to create a ReconJob could point the operator at any address
its pod reaches and have it sign requests there with some other team's credentials.
Asked before any connection, by the one edge that reaches storage (`storage_client`),
and so before a runner's Job exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from recon_api.models import ReconJob

from recon_operator.endpoint_patterns import allowed, parse_endpoint
from recon_operator.settings import Settings

ENDPOINT_NOT_ALLOWED = "EndpointNotAllowed"
INSECURE_NOT_ALLOWED = "InsecureStorageNotAllowed"

ENDPOINT_FIELD = "spec.storage.endpoint"
SECURE_FIELD = "spec.storage.secure"
ALLOWED_SOURCE = "RECON_STORAGE_ALLOWED_ENDPOINTS (chart value storage.allowedEndpoints)"
DEFAULT_SOURCE = "RECON_STORAGE_ENDPOINT (chart value storage.endpoint)"
INSECURE_SOURCE = "RECON_STORAGE_ALLOW_INSECURE=false (chart value storage.allowInsecure)"


@dataclass(frozen=True)
class StorageTarget:
    """Where the job's storage is and which Secret holds its credentials: allowed."""

    endpoint: str
    secure: bool
    secret_name: str


@dataclass(frozen=True)
class Refusal:
    """The platform does not allow this storage; final, since only the spec can change it."""

    reason: str
    message: str


def target(job: ReconJob, settings: Settings) -> StorageTarget | Refusal:
    """The job's storage after defaults, or why the platform refuses it."""
    storage = job.spec.storage
    secure = settings.storage_secure if storage.secure is None else storage.secure
    endpoint = storage.endpoint or settings.storage_endpoint
    secret = storage.credentials_secret or settings.storage_secret
    if not secure and not settings.storage_allow_insecure:
        return Refusal(
            INSECURE_NOT_ALLOWED,
            f"{SECURE_FIELD} is false, but the platform requires HTTPS for storage "
            f"({INSECURE_SOURCE})",
        )
    if storage.endpoint is not None and not endpoint_allowed(storage.endpoint, secure, settings):
        return Refusal(ENDPOINT_NOT_ALLOWED, not_allowed_message(storage.endpoint, settings))
    return StorageTarget(endpoint, secure, secret)


def endpoint_allowed(text: str, secure: bool, settings: Settings) -> bool:
    """The operator's default endpoint, and whatever the allowlist matches."""
    try:
        wanted = parse_endpoint(text, secure)
    except ValueError:
        return False
    default = parse_endpoint(settings.storage_endpoint, settings.storage_secure)
    if wanted == default:
        return True
    return allowed(wanted, settings.storage_allowed_endpoints)


def not_allowed_message(text: str, settings: Settings) -> str:
    """Names the field, the value and where the list is set; its contents unless private."""
    head = f"{ENDPOINT_FIELD} {text!r} is not a storage endpoint the platform allows"
    try:
        parse_endpoint(text, True)
    except ValueError as e:
        head += f" ({e})"
    if not settings.storage_allowed_endpoints:
        source = f"only the operator's default endpoint, {DEFAULT_SOURCE}"
    else:
        source = f"the operator's default endpoint, {DEFAULT_SOURCE}, and {ALLOWED_SOURCE}"
    if settings.storage_allowed_endpoints_private:
        return f"{head}; allowed: {source} (the list is private: ask the platform team)"
    listed = [settings.storage_endpoint, *(str(p) for p in settings.storage_allowed_endpoints)]
    return f"{head}; allowed: {source}: {', '.join(listed)}"
