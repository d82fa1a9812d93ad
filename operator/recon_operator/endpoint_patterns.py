"""Storage endpoints (`host:port`) and the allowlist patterns that match them.

Matching is on a normal form, so that two spellings of one address are one entry: host
names compare case-insensitively and without a trailing dot, IP addresses by value (so
`[0:0::1]:9000` is `[::1]:9000`), and an endpoint without a port has the port the S3
client would use (443 over HTTPS, 80 over HTTP). Nothing here resolves a name: a pattern
matches what the ReconJob wrote, and the platform decides what its names point at.

Pattern grammar (comma-separated in RECON_STORAGE_ALLOWED_ENDPOINTS):

    host:port          exactly that host and port (IPv6 in brackets: [fd00::1]:9000)
    *.suffix           any host under the suffix (not the suffix itself), any port
    *.suffix:port      any host under the suffix, that port only
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

HTTPS_PORT = 443
HTTP_PORT = 80
# A DNS label: letters, digits and hyphens, not starting or ending with a hyphen.
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_PORT = re.compile(r"^[0-9]{1,5}$")


@dataclass(frozen=True)
class Endpoint:
    """A normalised endpoint: `host` lower-case without trailing dot, IPv6 unbracketed."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _port(text: str, where: str) -> int:
    if not _PORT.match(text) or not 1 <= int(text) <= 65535:
        raise ValueError(f"{where}: port {text!r} is not a number from 1 to 65535")
    return int(text)


def _host(text: str, where: str) -> str:
    """A host name or IP address in normal form; ValueError naming `where` otherwise."""
    if text.startswith("[") and text.endswith("]"):
        try:
            return str(ipaddress.IPv6Address(text[1:-1]))
        except ValueError:
            raise ValueError(f"{where}: {text!r} is not an IPv6 address") from None
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        pass
    name = text.lower()
    if name.endswith("."):
        name = name[:-1]
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"{where}: {text!r} is not a host name or IP address")
    if labels[-1].isdigit():
        # Would be read as an IP address by some resolvers (127.1 is 127.0.0.1).
        raise ValueError(f"{where}: {text!r} is neither a host name nor a dotted IPv4 address")
    return name


def _split(text: str, where: str) -> tuple[str, str | None]:
    """`host` and `port` text; the port is None when absent."""
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ValueError(f"{where}: {text!r} opens a bracket it does not close")
        host, rest = text[: close + 1], text[close + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise ValueError(f"{where}: {text!r} has text after the IPv6 address")
        return host, rest[1:]
    if text.count(":") > 1:
        raise ValueError(f"{where}: {text!r}: an IPv6 address needs brackets, as [::1]:9000")
    host, sep, port = text.partition(":")
    return host, (port if sep else None)


def parse_endpoint(text: str, secure: bool, where: str = "endpoint") -> Endpoint:
    """The endpoint the S3 client would connect to for `text` (ValueError naming `where`)."""
    host, port = _split(text.strip(), where)
    if port is None:
        return Endpoint(_host(host, where), HTTPS_PORT if secure else HTTP_PORT)
    return Endpoint(_host(host, where), _port(port, where))


@dataclass(frozen=True)
class EndpointPattern:
    """One allowlist entry: an exact endpoint, or every host under a suffix."""

    text: str
    host: str | None = None
    suffix: str | None = None  # with its leading dot: ".s3.example.com"
    port: int | None = None  # None: any port (suffix patterns only)

    def matches(self, endpoint: Endpoint) -> bool:
        if self.port is not None and endpoint.port != self.port:
            return False
        if self.host is not None:
            return endpoint.host == self.host
        assert self.suffix is not None
        return endpoint.host.endswith(self.suffix) and ":" not in endpoint.host

    def __str__(self) -> str:
        return self.text


def parse_pattern(text: str, where: str = "pattern") -> EndpointPattern:
    entry = text.strip()
    if entry.startswith("*."):
        host, port = _split(entry[2:], where)
        if host.startswith("["):
            raise ValueError(f"{where}: {entry!r}: a suffix pattern cannot hold an IP address")
        suffix = _host(host, where)
        try:
            ipaddress.IPv4Address(suffix)
        except ValueError:
            pass
        else:
            raise ValueError(f"{where}: {entry!r}: a suffix pattern cannot hold an IP address")
        return EndpointPattern(
            entry, suffix="." + suffix, port=None if port is None else _port(port, where)
        )
    if "*" in entry:
        raise ValueError(f"{where}: {entry!r}: a wildcard may only open a pattern, as *.suffix")
    host, port = _split(entry, where)
    if port is None:
        raise ValueError(f"{where}: {entry!r} needs a port (host:port), or use *.suffix")
    return EndpointPattern(entry, host=_host(host, where), port=_port(port, where))


def parse_allowlist(text: str) -> tuple[EndpointPattern, ...]:
    """Comma-separated patterns; empty entries are ignored, duplicates kept once. An error
    names the entry at fault."""
    patterns: dict[str, EndpointPattern] = {}
    for entry in text.split(","):
        if entry.strip():
            pattern = parse_pattern(entry, f"entry {entry.strip()!r}")
            patterns.setdefault(pattern.text, pattern)
    return tuple(patterns.values())


def allowed(endpoint: Endpoint, patterns: tuple[EndpointPattern, ...]) -> bool:
    return any(p.matches(endpoint) for p in patterns)
