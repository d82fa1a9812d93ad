"""What the operator and the runner say about a storage failure: our words, not the server's.

A storage server chooses every byte of its answer: the XML error's Message, Resource and
RequestId, a non-XML body, even a broken status line that the HTTP client repeats in its
exception text. Any of it copied into a condition, an Event or a log line would let
whoever runs that server write into the cluster's status (or read back what it learnt
there). So the description is built from a closed vocabulary: the S3 error code when it
is one S3 or MinIO defines, the HTTP status number, and a fixed phrase for the kind of
transport failure; each description is bounded by construction.
"""

from __future__ import annotations

import errno
import http.client
import socket
import ssl
from collections.abc import Iterator

import urllib3
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError

# Error codes of the Amazon S3 API reference and the ones MinIO and its client add. Only
# these are repeated: a code outside the list is the server's free text.
S3_ERROR_CODES = frozenset(
    {
        "AccessDenied",
        "AccountProblem",
        "AllAccessDisabled",
        "AmbiguousGrantByEmailAddress",
        "AuthorizationHeaderMalformed",
        "BadDigest",
        "BucketAlreadyExists",
        "BucketAlreadyOwnedByYou",
        "BucketNotEmpty",
        "CredentialsNotSupported",
        "CrossLocationLoggingProhibited",
        "EntityTooSmall",
        "EntityTooLarge",
        "ExpiredToken",
        "IllegalLocationConstraintException",
        "IllegalVersioningConfigurationException",
        "IncompleteBody",
        "IncorrectNumberOfFilesInPostRequest",
        "InlineDataTooLarge",
        "InternalError",
        "InvalidAccessKeyId",
        "InvalidAccessPoint",
        "InvalidArgument",
        "InvalidBucketName",
        "InvalidBucketState",
        "InvalidDigest",
        "InvalidEncryptionAlgorithmError",
        "InvalidLocationConstraint",
        "InvalidObjectState",
        "InvalidPart",
        "InvalidPartOrder",
        "InvalidPayer",
        "InvalidPolicyDocument",
        "InvalidRange",
        "InvalidRegion",
        "InvalidRequest",
        "InvalidSecurity",
        "InvalidStorageClass",
        "InvalidTargetBucketForLogging",
        "InvalidToken",
        "InvalidURI",
        "KeyTooLongError",
        "MalformedACLError",
        "MalformedPOSTRequest",
        "MalformedXML",
        "MaxMessageLengthExceeded",
        "MaxPostPreDataLengthExceededError",
        "MetadataTooLarge",
        "MethodNotAllowed",
        "MissingContentLength",
        "MissingRequestBodyError",
        "MissingSecurityElement",
        "MissingSecurityHeader",
        "NoLoggingStatusForKey",
        "NoSuchBucket",
        "NoSuchBucketPolicy",
        "NoSuchKey",
        "NoSuchLifecycleConfiguration",
        "NoSuchObject",
        "NoSuchUpload",
        "NoSuchVersion",
        "NotImplemented",
        "NotSignedUp",
        "OperationAborted",
        "PermanentRedirect",
        "PreconditionFailed",
        "Redirect",
        "RequestIsNotMultiPartContent",
        "RequestTimeTooSkewed",
        "RequestTimeout",
        "RequestTorrentOfBucketError",
        "ResourceConflict",
        "ResourceNotFound",
        "ServiceUnavailable",
        "SignatureDoesNotMatch",
        "SlowDown",
        "TemporaryRedirect",
        "TokenRefreshRequired",
        "TooManyBuckets",
        "UnexpectedContent",
        "UnresolvableGrantByEmailAddress",
        "UserKeyMustBeSpecified",
        "XAmzContentSHA256Mismatch",
        "XMinioServerNotInitialized",
        "XMinioStorageFull",
    }
)
UNKNOWN_CODE = "an error code that is not S3's"


def s3_code(code: str | None) -> str:
    """The code if S3 defines it; otherwise a fixed phrase, never the server's text."""
    return code if code in S3_ERROR_CODES else UNKNOWN_CODE


def _status(error: S3Error) -> str:
    status = getattr(error.response, "status", None)
    return f" (HTTP {status})" if isinstance(status, int) else ""


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, its causes, and the errors urllib3 wraps (MaxRetryError.reason,
    ProtocolError's arguments), each once."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        nested += [a for a in current.args if isinstance(a, BaseException)]
        todo += [e for e in nested if isinstance(e, BaseException)]


# Most telling first: a ProtocolError wrapping BadStatusLine is "not HTTP".
_TRANSPORT_KINDS: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
    ((ConnectionRefusedError,), "connection refused"),
    ((urllib3.exceptions.NameResolutionError, socket.gaierror), "the host name does not resolve"),
    ((ssl.SSLError, urllib3.exceptions.SSLError), "the TLS handshake failed"),
    ((http.client.BadStatusLine,), "the answer was not HTTP"),
    ((TimeoutError, urllib3.exceptions.TimeoutError), "timed out"),
    (
        (ConnectionResetError, http.client.RemoteDisconnected),
        "the connection was closed without an answer",
    ),
    ((urllib3.exceptions.ProtocolError,), "the connection broke off"),
)


def transport_failure(error: BaseException) -> str:
    """A fixed phrase for why no HTTP answer came (refused, timed out, TLS, ...)."""
    chain = list(_chain(error))
    for kinds, phrase in _TRANSPORT_KINDS:
        if any(isinstance(e, kinds) for e in chain):
            return phrase
    for e in chain:
        if isinstance(e, OSError) and e.errno is not None and e.errno in errno.errorcode:
            return f"{errno.errorcode[e.errno]} from the operating system"
    return "the connection failed"


def describe(error: BaseException, endpoint: str) -> str:
    """One bounded line about any failure of a storage call at `endpoint`.

    `endpoint` comes from the ReconJob (checked against the allowlist), not the server."""
    if isinstance(error, S3Error):
        return f"{endpoint} answered {s3_code(error.code)}{_status(error)}"
    if isinstance(error, ServerError):
        return f"{endpoint} answered HTTP {error.status_code}"
    if isinstance(error, InvalidResponseError):
        code = getattr(error, "_code", None)
        status = f"HTTP {code} " if isinstance(code, int) else ""
        return f"{endpoint} did not answer like S3 ({status}without an S3 error document)"
    if isinstance(error, MinioException):
        return f"{endpoint}: the S3 client failed ({type(error).__name__})"
    if isinstance(error, (urllib3.exceptions.HTTPError, OSError)):
        return f"cannot reach {endpoint}: {transport_failure(error)}"
    return f"storage at {endpoint}: {type(error).__name__}"
