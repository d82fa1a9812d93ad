"""Which storage a ReconJob may reach: allowlist patterns (case, ports, IPv6 brackets,
suffixes), the refusal a user reads, the plain-HTTP setting and the Secret's opt-in label."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st
from recon_api.constants import STORAGE_CREDENTIALS_LABEL
from recon_operator import credentials, lifecycle, storage_policy
from recon_operator.cluster import StoredSecret
from recon_operator.endpoint_patterns import (
    Endpoint,
    parse_allowlist,
    parse_endpoint,
    parse_pattern,
)
from recon_operator.settings import Settings

from tests.support.reconjobs import T0, reconjob

DEFAULT = "minio.minio.svc:9000"


def settings(allowed: str = "", **kwargs: object) -> Settings:
    return Settings(
        storage_endpoint=DEFAULT,
        storage_allowed_endpoints=parse_allowlist(allowed),
        **kwargs,  # type: ignore[arg-type]
    )


def job(**storage: object):
    return reconjob(spec={"input": {"bucket": "scans"}, "storage": storage})


def matches(pattern: str, endpoint: str, secure: bool = False) -> bool:
    return parse_pattern(pattern).matches(parse_endpoint(endpoint, secure))


# ------------------------------------------------------------------ endpoints and patterns


def test_endpoints_normalise_case_trailing_dot_and_address_spelling() -> None:
    assert parse_endpoint("MinIO.Example.COM.:9000", False) == Endpoint("minio.example.com", 9000)
    assert parse_endpoint("[0:0:0::1]:9000", False) == Endpoint("::1", 9000)
    assert parse_endpoint("[FD00::A]:9000", False) == Endpoint("fd00::a", 9000)
    assert str(parse_endpoint("[::1]:9000", False)) == "[::1]:9000"


def test_an_endpoint_without_port_has_the_clients_default_port() -> None:
    assert parse_endpoint("s3.example.com", True).port == 443
    assert parse_endpoint("s3.example.com", False).port == 80
    assert parse_endpoint("[::1]", True) == Endpoint("::1", 443)


@pytest.mark.parametrize(
    "text",
    [
        "::1:9000",  # IPv6 without brackets
        "[::1:9000",  # unclosed bracket
        "[::1]x:9000",
        "[not-ip]:9000",
        "host:0",
        "host:65536",
        "host:90a",
        "host:",
        ":9000",
        "-host:9000",
        "ho_st:9000",
        "127.1:9000",  # resolvers read it as 127.0.0.1
        "a..b:9000",
    ],
)
def test_malformed_endpoints_are_errors_naming_the_text(text: str) -> None:
    with pytest.raises(ValueError, match=r"spec\.storage\.endpoint"):
        parse_endpoint(text, False, where="spec.storage.endpoint")


def test_exact_patterns_match_host_and_port_only() -> None:
    assert matches("minio.minio.svc:9000", "MINIO.minio.svc:9000")
    assert matches("minio.minio.svc:9000", "minio.minio.svc.:9000")
    assert not matches("minio.minio.svc:9000", "minio.minio.svc:9001")
    assert not matches("minio.minio.svc:9000", "minio.minio.svc.evil.com:9000")
    assert not matches("minio.minio.svc:9000", "evilminio.minio.svc:9000")
    assert matches("s3.example.com:443", "s3.example.com", secure=True)
    assert not matches("s3.example.com:443", "s3.example.com", secure=False)


def test_ip_patterns_compare_addresses_not_text() -> None:
    assert matches("[::1]:9000", "[0::1]:9000")
    assert matches("[fd00::a]:9000", "[FD00:0::A]:9000")
    assert not matches("[::1]:9000", "[::2]:9000")
    assert matches("10.0.0.7:9000", "10.0.0.7:9000")
    assert not matches("10.0.0.7:9000", "10.0.0.70:9000")


def test_suffix_patterns_match_hosts_under_the_suffix_not_the_suffix_or_lookalikes() -> None:
    assert matches("*.s3.example.com", "bucket.s3.example.com:443")
    assert matches("*.s3.example.com", "a.b.S3.Example.com:9000")
    assert not matches("*.s3.example.com", "s3.example.com:443")
    assert not matches("*.s3.example.com", "evils3.example.com:443")
    assert not matches("*.s3.example.com", "s3.example.com.evil.net:443")
    assert matches("*.svc:9000", "minio.team.svc:9000")
    assert not matches("*.svc:9000", "minio.team.svc:9001")


def test_suffix_patterns_never_match_ip_addresses() -> None:
    assert not matches("*.local", "[::1]:9000")
    with pytest.raises(ValueError, match="IP"):
        parse_pattern("*.0.0.1")
    with pytest.raises(ValueError, match="IP address"):
        parse_pattern("*.10.0.0.1")
    with pytest.raises(ValueError, match="IP address"):
        parse_pattern("*.[::1]:9000")


@pytest.mark.parametrize(
    "pattern", ["minio.svc", "*minio.svc:9000", "minio.*.svc:9000", "*:9000", "*.", "[::1]"]
)
def test_malformed_patterns_are_errors(pattern: str) -> None:
    with pytest.raises(ValueError):
        parse_pattern(pattern)


def test_an_allowlist_is_comma_separated_with_blanks_and_duplicates_ignored() -> None:
    patterns = parse_allowlist(" a.svc:9000, ,*.example.com ,a.svc:9000,")
    assert [str(p) for p in patterns] == ["a.svc:9000", "*.example.com"]


@given(
    st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True),
    st.integers(min_value=1, max_value=65535),
)
def test_an_exact_pattern_matches_its_own_endpoint_in_any_case(host: str, port: int) -> None:
    name = f"{host}.example"
    assert matches(f"{name}:{port}", f"{name.upper()}:{port}")
    assert not matches(f"{name}:{port}", f"{name}:{port % 65535 + 1}")


# ------------------------------------------------------------------ the decision


def test_the_default_endpoint_is_always_allowed() -> None:
    decided = storage_policy.target(job(), settings())
    assert decided == storage_policy.StorageTarget(DEFAULT, False, "minio-credentials")
    spelled = storage_policy.target(job(endpoint="MINIO.minio.svc:9000"), settings())
    assert isinstance(spelled, storage_policy.StorageTarget)


def test_an_unlisted_endpoint_is_refused_naming_field_value_and_list() -> None:
    refused = storage_policy.target(job(endpoint="10.1.2.3:9000"), settings())
    assert isinstance(refused, storage_policy.Refusal)
    assert refused.reason == "EndpointNotAllowed"
    assert "spec.storage.endpoint '10.1.2.3:9000'" in refused.message
    assert "RECON_STORAGE_ENDPOINT" in refused.message and DEFAULT in refused.message
    listed = storage_policy.target(job(endpoint="10.1.2.3:9000"), settings("*.example.com"))
    assert isinstance(listed, storage_policy.Refusal)
    assert "RECON_STORAGE_ALLOWED_ENDPOINTS" in listed.message
    assert "storage.allowedEndpoints" in listed.message and "*.example.com" in listed.message


def test_a_private_list_is_named_but_not_shown() -> None:
    private = settings("*.internal.example.com", storage_allowed_endpoints_private=True)
    refused = storage_policy.target(job(endpoint="10.1.2.3:9000"), private)
    assert isinstance(refused, storage_policy.Refusal)
    assert "RECON_STORAGE_ALLOWED_ENDPOINTS" in refused.message
    assert "internal.example.com" not in refused.message and DEFAULT not in refused.message


def test_listed_endpoints_are_allowed_with_their_secret() -> None:
    decided = storage_policy.target(
        job(endpoint="b.s3.example.com", secure=True, credentialsSecret="team"),
        settings("*.s3.example.com:443"),
    )
    assert decided == storage_policy.StorageTarget("b.s3.example.com", True, "team")


def test_a_malformed_endpoint_is_refused_with_the_reason() -> None:
    refused = storage_policy.target(job(endpoint="::1:9000"), settings("[::1]:9000"))
    assert isinstance(refused, storage_policy.Refusal)
    assert refused.reason == "EndpointNotAllowed" and "brackets" in refused.message


def test_plain_http_is_refused_when_the_platform_requires_https() -> None:
    https_only = Settings(
        storage_endpoint="s3.example.com:443", storage_secure=True, storage_allow_insecure=False
    )
    refused = storage_policy.target(job(secure=False), https_only)
    assert isinstance(refused, storage_policy.Refusal)
    assert refused.reason == "InsecureStorageNotAllowed"
    assert "spec.storage.secure" in refused.message
    assert "RECON_STORAGE_ALLOW_INSECURE" in refused.message
    assert isinstance(storage_policy.target(job(), https_only), storage_policy.StorageTarget)


# ------------------------------------------------------------------ the Secret's label


def encoded(**values: str) -> dict[str, str]:
    return {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}


KEYS = encoded(accessKey="AK", secretKey="SK-value")


def test_only_a_labelled_secret_is_used() -> None:
    unlabelled = StoredSecret(labels={"team": "a"}, data=KEYS)
    with pytest.raises(credentials.CredentialsUnavailable) as caught:
        credentials.labelled_storage_access("team-s3", "studio", unlabelled, DEFAULT, False)
    assert caught.value.reason == "CredentialsNotLabelled"
    message = caught.value.message
    assert "studio/team-s3" in message and STORAGE_CREDENTIALS_LABEL in message
    assert f"kubectl -n studio label secret team-s3 {STORAGE_CREDENTIALS_LABEL}=true" in message
    assert "SK-value" not in message
    labelled = StoredSecret(labels={STORAGE_CREDENTIALS_LABEL: "true"}, data=KEYS)
    access = credentials.labelled_storage_access("team-s3", "studio", labelled, DEFAULT, False)
    assert (access.access_key, access.secret_key) == ("AK", "SK-value")


@pytest.mark.parametrize("value", ["false", "True", "yes", ""])
def test_the_label_must_say_true(value: str) -> None:
    assert not credentials.opted_in({STORAGE_CREDENTIALS_LABEL: value})


def test_a_missing_secret_is_still_reported_as_missing() -> None:
    with pytest.raises(credentials.CredentialsUnavailable) as caught:
        credentials.labelled_storage_access("gone", "studio", None, DEFAULT, False)
    assert caught.value.reason == "CredentialsMissing" and "not found" in caught.value.message
    half = StoredSecret(labels={STORAGE_CREDENTIALS_LABEL: "true"}, data=encoded(accessKey="AK"))
    with pytest.raises(credentials.CredentialsUnavailable, match="has no key secretKey"):
        credentials.labelled_storage_access("half", "studio", half, DEFAULT, False)


def test_a_refusal_fails_the_job_at_once_with_its_reason() -> None:
    refused = storage_policy.target(job(endpoint="10.1.2.3:9000"), settings())
    assert isinstance(refused, storage_policy.Refusal)
    t = lifecycle.storage_refused(
        job(endpoint="10.1.2.3:9000"), refused.reason, refused.message, T0
    )
    assert t.patch["phase"] == "Failed"
    by_type = {c["type"]: c for c in t.patch["conditions"]}
    assert by_type["InputsValid"]["status"] == "False"
    assert by_type["InputsValid"]["reason"] == "EndpointNotAllowed"
    assert by_type["Failed"]["message"] == refused.message
    assert [(n.reason, n.warning) for n in t.notes] == [("EndpointNotAllowed", True)]
