"""Health checks the stack waits on before it calls itself up.

Plain HTTP(S) with the standard library: importing a Kubernetes client costs more start-up
time than these few requests need.
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

PROBE_TIMEOUT = 2.0
# A server still starting may refuse, reset or half-answer a request: all of it means
# "not ready yet", never an error of the probe.
NOT_READY_ERRORS = (urllib.error.URLError, http.client.HTTPException, OSError, ValueError)


def client_context(ca: Path, cert: Path, key: Path) -> ssl.SSLContext:
    """TLS as the admin: verify the API server against the stack CA, present a client cert."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def self_signed_context() -> ssl.SSLContext:
    """For the controller-manager's and scheduler's own health ports.

    They serve /healthz with a certificate they generate themselves at start-up; the probe
    only asks whether the local process answers, so there is nothing to verify it against.
    """
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    """True when ``url`` answers 200; False on any connection error or other status."""
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT, context=context) as resp:
            return bool(resp.status == 200)
    except NOT_READY_ERRORS:
        return False


def get_json(url: str, context: ssl.SSLContext | None = None) -> Any | None:
    """The decoded JSON body of a 200 answer, or None."""
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT, context=context) as resp:
            if resp.status != 200:
                return None
            return json.loads(resp.read())
    except NOT_READY_ERRORS:
        return None


def node_is_ready(node: Any) -> bool:
    """Whether a Node object reports condition Ready=True, as the scheduler requires."""
    if not isinstance(node, dict):
        return False
    conditions = node.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
