"""A standby replica keeps its liveness endpoint answered until it becomes active, then
frees the port for kopf's own."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest
from recon_operator.leadership import LeaseSettings, standby_health


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_standby_answers_the_liveness_url_then_frees_its_port() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/healthz"
    with standby_health(url), urllib.request.urlopen(url, timeout=5) as r:
        assert r.status == 200 and json.loads(r.read()) == {"standby": True}
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))  # kopf can take it now
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=2)


def test_the_holder_gives_up_before_a_successor_may_start() -> None:
    """Past renew_deadline the holder exits; a successor waits the longer lease_duration."""
    lease = LeaseSettings("recon-operator", "recon-system", "pod-0")
    assert lease.renew_deadline < lease.lease_duration
    assert lease.retry_period * 1.2 < lease.renew_deadline  # the library's own bound
