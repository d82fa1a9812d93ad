"""What the operator says about a failed storage call: S3's code and the HTTP status,
never the server's own words, and a bounded line whatever the server sent."""

from __future__ import annotations

import http.client

import urllib3
from hypothesis import given
from hypothesis import strategies as st
from minio.error import InvalidResponseError, S3Error, ServerError
from recon_api.storage_errors import S3_ERROR_CODES, UNKNOWN_CODE, describe, s3_code

TOKEN = "PLANTED-7c1e0b"
ENDPOINT = "s3.example.com:443"


class Response:
    status = 400


def s3_error(code: str, text: str = TOKEN) -> S3Error:
    return S3Error(Response(), code, text, text, text, text)  # type: ignore[arg-type]


def test_a_known_code_is_repeated_with_the_status_and_nothing_else() -> None:
    message = describe(s3_error("SlowDown"), ENDPOINT)
    assert message == f"{ENDPOINT} answered SlowDown (HTTP 400)"


def test_a_code_s3_does_not_define_is_not_repeated() -> None:
    assert s3_code(TOKEN) == UNKNOWN_CODE
    assert TOKEN not in describe(s3_error(TOKEN), ENDPOINT)


def test_non_xml_bodies_and_server_errors_are_not_repeated() -> None:
    body = InvalidResponseError(418, "text/html", f"<p>{TOKEN}</p>")
    assert describe(body, ENDPOINT) == (
        f"{ENDPOINT} did not answer like S3 (HTTP 418 without an S3 error document)"
    )
    assert describe(ServerError(TOKEN, 503), ENDPOINT) == f"{ENDPOINT} answered HTTP 503"


def test_transport_failures_are_named_by_kind_not_by_the_text_they_carry() -> None:
    broken = urllib3.exceptions.ProtocolError(
        "Connection aborted.", http.client.BadStatusLine(TOKEN)
    )
    retried = urllib3.exceptions.MaxRetryError(None, "/bucket", broken)  # type: ignore[arg-type]
    assert describe(retried, ENDPOINT) == f"cannot reach {ENDPOINT}: the answer was not HTTP"
    refused = urllib3.exceptions.NewConnectionError(None, f"{TOKEN}: refused")  # type: ignore[arg-type]
    refused.__cause__ = ConnectionRefusedError(111, "Connection refused")
    assert describe(refused, ENDPOINT) == f"cannot reach {ENDPOINT}: connection refused"
    assert describe(TimeoutError(TOKEN), ENDPOINT) == f"cannot reach {ENDPOINT}: timed out"


@given(st.text(max_size=5000), st.integers(min_value=100, max_value=599))
def test_the_servers_text_never_changes_the_line_which_stays_bounded(
    text: str, status: int
) -> None:
    pairs = (
        (s3_error("NoSuchKey", text), s3_error("NoSuchKey", "")),
        (s3_error(text[:64], text), s3_error("", "")),
        (InvalidResponseError(status, text, text), InvalidResponseError(status, None, None)),
        (ServerError(text, status), ServerError("", status)),
    )
    for sent, silent in pairs:
        message = describe(sent, ENDPOINT)
        assert message == describe(silent, ENDPOINT) or text in S3_ERROR_CODES
        assert len(message) < 200
