"""Operator settings, read once from the environment the Helm chart sets.

A bad value stops the operator at start-up with a message naming the variable: an operator
that silently falls back to a default would run jobs with limits nobody asked for.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import TypeVar

from recon_api.models import DNS_SUBDOMAIN_PATTERN

from recon_operator.endpoint_patterns import EndpointPattern, parse_allowlist, parse_endpoint

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_BYTE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "ki": 1024,
    "kib": 1024,
    "mi": 1024**2,
    "mib": 1024**2,
    "gi": 1024**3,
    "gib": 1024**3,
}
_BYTES_RE = re.compile(r"^\s*([0-9]+)\s*([a-zA-Z]*)\s*$")
_NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

T = TypeVar("T")


class SettingsError(ValueError):
    """An environment variable holds a value the operator cannot use."""


def _package_version() -> str:
    try:
        return metadata.version("recon-operator")
    except metadata.PackageNotFoundError:
        return "latest"


def default_runner_image() -> str:
    """The runner image released together with this operator, so the two always match."""
    return f"ghcr.io/recon-operator/recon-runner:{_package_version()}"


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{text!r} is not a boolean (true/false)")


def parse_bytes(text: str) -> int:
    """Byte counts as Helm users write them: 20971520, 20MB, 20Mi, 20MiB."""
    match = _BYTES_RE.match(text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _BYTE_UNITS:
        raise ValueError(f"{text!r} is not a byte size (e.g. 20971520, 20MB, 20Mi)")
    return int(match.group(1)) * _BYTE_UNITS[unit]


def parse_namespaces(text: str) -> tuple[str, ...]:
    names = tuple(sorted({n.strip() for n in text.split(",") if n.strip()}))
    for name in names:
        if not _NAMESPACE_RE.match(name) or len(name) > 63:
            raise ValueError(f"{name!r} is not a namespace name")
    return names


@dataclass(frozen=True)
class Settings:
    max_running_jobs: int = 4
    stale_after_seconds: int = 600
    cancel_ttl_seconds: int = 600
    storage_endpoint: str = "minio.minio.svc:9000"
    storage_secure: bool = False
    storage_secret: str = "minio-credentials"
    # Endpoints a ReconJob may name besides `storage_endpoint` (always allowed).
    storage_allowed_endpoints: tuple[EndpointPattern, ...] = ()
    # Refusals then name where the list is set, not what it holds.
    storage_allowed_endpoints_private: bool = False
    # False: a ReconJob asking for plain HTTP (`secure: false`) is refused.
    storage_allow_insecure: bool = True
    gpu_resource: str = "nvidia.com/gpu"
    runner_image: str = ""
    max_file_bytes: int = 20 * 1024**2
    max_total_bytes: int = 200 * 1024**2
    # Empty: every namespace (cluster-wide watch).
    namespaces: tuple[str, ...] = ()
    # A Kueue LocalQueue for every ReconJob without its own `kueue.x-k8s.io/queue-name`
    # label (empty: only labelled ReconJobs go to Kueue).
    kueue_default_queue: str = ""
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if not self.runner_image:
            object.__setattr__(self, "runner_image", default_runner_image())

    @property
    def cluster_wide(self) -> bool:
        return not self.namespaces

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        defaults = cls()

        def read(name: str, parse: Callable[[str], T], default: T) -> T:
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                return default
            try:
                return parse(raw.strip())
            except ValueError as e:
                raise SettingsError(f"{name}: {e}") from None

        def positive_int(text: str) -> int:
            value = _int(text)
            if value < 1:
                raise ValueError(f"{text!r} must be at least 1")
            return value

        def endpoint(text: str) -> str:
            if "/" in text or any(c.isspace() for c in text):
                raise ValueError(f"{text!r} must be host:port, without scheme or path")
            parse_endpoint(text, secure=True, where=repr(text))
            return text

        def secret_name(text: str) -> str:
            if not re.match(DNS_SUBDOMAIN_PATTERN, text) or len(text) > 253:
                raise ValueError(f"{text!r} is not a Secret name")
            return text

        def resource_name(text: str) -> str:
            if not re.match(r"^([a-z0-9.-]+/)?[A-Za-z0-9][-A-Za-z0-9_.]*$", text):
                raise ValueError(f"{text!r} is not an extended resource name")
            return text

        def queue_name(text: str) -> str:
            # A label value (the Job carries it) that names a LocalQueue (a DNS subdomain).
            if not re.match(DNS_SUBDOMAIN_PATTERN, text) or len(text) > 63:
                raise ValueError(f"{text!r} is not a LocalQueue name")
            return text

        def log_level(text: str) -> str:
            level = text.upper()
            if level not in LOG_LEVELS:
                raise ValueError(f"{text!r} is not one of {', '.join(LOG_LEVELS)}")
            return level

        settings = cls(
            max_running_jobs=read(
                "RECON_MAX_RUNNING_JOBS", positive_int, defaults.max_running_jobs
            ),
            stale_after_seconds=read(
                "RECON_STALE_AFTER_SECONDS", positive_int, defaults.stale_after_seconds
            ),
            cancel_ttl_seconds=read(
                "RECON_CANCEL_TTL_SECONDS", positive_int, defaults.cancel_ttl_seconds
            ),
            storage_endpoint=read("RECON_STORAGE_ENDPOINT", endpoint, defaults.storage_endpoint),
            storage_secure=read("RECON_STORAGE_SECURE", parse_bool, defaults.storage_secure),
            storage_secret=read("RECON_STORAGE_SECRET", secret_name, defaults.storage_secret),
            storage_allowed_endpoints=read(
                "RECON_STORAGE_ALLOWED_ENDPOINTS",
                parse_allowlist,
                defaults.storage_allowed_endpoints,
            ),
            storage_allowed_endpoints_private=read(
                "RECON_STORAGE_ALLOWED_ENDPOINTS_PRIVATE",
                parse_bool,
                defaults.storage_allowed_endpoints_private,
            ),
            storage_allow_insecure=read(
                "RECON_STORAGE_ALLOW_INSECURE", parse_bool, defaults.storage_allow_insecure
            ),
            gpu_resource=read("RECON_GPU_RESOURCE", resource_name, defaults.gpu_resource),
            runner_image=read("RECON_RUNNER_IMAGE", str, defaults.runner_image),
            max_file_bytes=read("RECON_MAX_FILE_BYTES", parse_bytes, defaults.max_file_bytes),
            max_total_bytes=read("RECON_MAX_TOTAL_BYTES", parse_bytes, defaults.max_total_bytes),
            namespaces=read("RECON_NAMESPACES", parse_namespaces, defaults.namespaces),
            kueue_default_queue=read(
                "RECON_KUEUE_DEFAULT_QUEUE_NAME", queue_name, defaults.kueue_default_queue
            ),
            log_level=read("RECON_LOG_LEVEL", log_level, defaults.log_level),
        )
        if not settings.storage_allow_insecure and not settings.storage_secure:
            raise SettingsError(
                "RECON_STORAGE_SECURE: the default endpoint uses plain HTTP, which "
                "RECON_STORAGE_ALLOW_INSECURE=false refuses; set RECON_STORAGE_SECURE=true"
            )
        if settings.max_file_bytes < 1:
            raise SettingsError("RECON_MAX_FILE_BYTES: must be at least 1 byte")
        if settings.max_total_bytes < settings.max_file_bytes:
            raise SettingsError(
                f"RECON_MAX_TOTAL_BYTES: {settings.max_total_bytes} is less than "
                f"RECON_MAX_FILE_BYTES ({settings.max_file_bytes})"
            )
        return settings


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an integer") from None
