"""Operator settings from the environment: documented defaults, and errors that name the
variable at fault."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st
from recon_operator.endpoint_patterns import parse_allowlist
from recon_operator.settings import Settings, SettingsError, parse_bytes


def test_defaults_match_the_design() -> None:
    s = Settings.from_env({})
    assert s.max_running_jobs == 4
    assert s.stale_after_seconds == 600
    assert s.cancel_ttl_seconds == 600
    assert s.gpu_resource == "nvidia.com/gpu"
    assert s.max_file_bytes == 20 * 1024**2
    assert s.max_total_bytes == 200 * 1024**2
    assert s.namespaces == () and s.cluster_wide
    assert s.storage_secure is False
    # Storage access (DESIGN.md, "Who may reach what storage"): the default endpoint only.
    assert s.storage_allowed_endpoints == ()
    assert s.storage_allowed_endpoints_private is False
    assert s.storage_allow_insecure is True
    assert s.log_level == "INFO"
    assert s.runner_image.startswith("ghcr.io/recon-operator/recon-runner:")
    assert s.runner_image.rsplit(":", 1)[1]  # tagged with the package version


def test_every_variable_is_read() -> None:
    s = Settings.from_env(
        {
            "RECON_MAX_RUNNING_JOBS": "2",
            "RECON_STALE_AFTER_SECONDS": "30",
            "RECON_CANCEL_TTL_SECONDS": "5",
            "RECON_STORAGE_ENDPOINT": "127.0.0.1:9000",
            "RECON_STORAGE_SECURE": "true",
            "RECON_STORAGE_SECRET": "s3-creds",
            "RECON_STORAGE_ALLOWED_ENDPOINTS": "*.s3.example.com:443, [fd00::7]:9000",
            "RECON_STORAGE_ALLOWED_ENDPOINTS_PRIVATE": "true",
            "RECON_STORAGE_ALLOW_INSECURE": "false",
            "RECON_GPU_RESOURCE": "amd.com/gpu",
            "RECON_RUNNER_IMAGE": "registry.local/runner:dev",
            "RECON_MAX_FILE_BYTES": "1Mi",
            "RECON_MAX_TOTAL_BYTES": "10MB",
            "RECON_NAMESPACES": "studio, lab ,studio",
            "RECON_LOG_LEVEL": "debug",
        }
    )
    assert s == Settings(
        max_running_jobs=2,
        stale_after_seconds=30,
        cancel_ttl_seconds=5,
        storage_endpoint="127.0.0.1:9000",
        storage_secure=True,
        storage_secret="s3-creds",
        storage_allowed_endpoints=parse_allowlist("*.s3.example.com:443,[fd00::7]:9000"),
        storage_allowed_endpoints_private=True,
        storage_allow_insecure=False,
        gpu_resource="amd.com/gpu",
        runner_image="registry.local/runner:dev",
        max_file_bytes=1024**2,
        max_total_bytes=10_000_000,
        namespaces=("lab", "studio"),
        log_level="DEBUG",
    )
    assert not s.cluster_wide


def test_settings_are_frozen() -> None:
    s = Settings.from_env({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.max_running_jobs = 9  # type: ignore[misc]


def test_empty_values_mean_the_default() -> None:
    assert Settings.from_env({"RECON_MAX_RUNNING_JOBS": "", "RECON_NAMESPACES": " "}) == (
        Settings.from_env({})
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RECON_MAX_RUNNING_JOBS", "four"),
        ("RECON_MAX_RUNNING_JOBS", "0"),
        ("RECON_STALE_AFTER_SECONDS", "-5"),
        ("RECON_CANCEL_TTL_SECONDS", "1.5"),
        ("RECON_STORAGE_ENDPOINT", "http://minio:9000"),
        ("RECON_STORAGE_ENDPOINT", "::1:9000"),
        ("RECON_STORAGE_SECURE", "maybe"),
        ("RECON_STORAGE_ALLOWED_ENDPOINTS", "minio.svc"),
        ("RECON_STORAGE_ALLOWED_ENDPOINTS", "ok.svc:9000,*bad"),
        ("RECON_STORAGE_ALLOWED_ENDPOINTS_PRIVATE", "secret"),
        ("RECON_STORAGE_ALLOW_INSECURE", "sometimes"),
        ("RECON_STORAGE_SECRET", "Bad_Name"),
        ("RECON_GPU_RESOURCE", "nvidia.com/ gpu"),
        ("RECON_MAX_FILE_BYTES", "20 parsecs"),
        ("RECON_MAX_TOTAL_BYTES", "1"),
        ("RECON_NAMESPACES", "ok,NOT OK"),
        ("RECON_LOG_LEVEL", "loud"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["", "k", "MB", "Mi", "GiB"]))
def test_byte_sizes_scale_by_their_unit(n: int, unit: str) -> None:
    factor = {"": 1, "k": 1000, "MB": 1000**2, "Mi": 1024**2, "GiB": 1024**3}[unit]
    assert parse_bytes(f"{n}{unit}") == n * factor


def test_refusing_plain_http_with_a_plain_http_default_endpoint_is_an_error() -> None:
    with pytest.raises(SettingsError, match="RECON_STORAGE_SECURE") as caught:
        Settings.from_env({"RECON_STORAGE_ALLOW_INSECURE": "false"})
    assert "RECON_STORAGE_ALLOW_INSECURE" in str(caught.value)


def test_a_bad_allowlist_entry_is_named() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"RECON_STORAGE_ALLOWED_ENDPOINTS": "a.svc:9000, b.svc:99999"})
    assert "RECON_STORAGE_ALLOWED_ENDPOINTS" in str(caught.value)
    assert "b.svc:99999" in str(caught.value) and "65535" in str(caught.value)
