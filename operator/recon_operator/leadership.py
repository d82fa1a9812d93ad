"""One active operator among replicas: a coordination.k8s.io Lease, held while running.

kopf's peering only pauses operators of lower (or equal) priority; it does not hand work
over, and an operator killed without a goodbye stays in the peering object for its whole
lifetime, freezing an equal-priority successor. So a standby replica waits for the Lease
before it starts kopf at all, and the active one exits the moment it cannot renew (its
pod restarts as the new standby), as controller-runtime's leader election does. While a
replica waits it answers its health endpoint, so the kubelet keeps it.

The election is the Kubernetes Python client's own (`kubernetes.leaderelection`, the
port of client-go's), not a second implementation here.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

from kubernetes import client
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

log = logging.getLogger(__name__)

# Exit status of an operator that lost its Lease: the pod restarts and waits as standby.
EXIT_LOST_LEASE = 1


@dataclass(frozen=True)
class LeaseSettings:
    name: str
    namespace: str
    identity: str
    # client-go's defaults: a successor waits lease_duration after the last renewal it saw;
    # the holder gives up after failing to renew for renew_deadline (shorter, so it has
    # stopped before anyone else may start).
    lease_duration: int = 15
    renew_deadline: int = 10
    retry_period: int = 2


def lost_lease() -> None:
    """Stop at once: past the renew deadline another replica may take over, and nothing
    may be written by two operators."""
    log.critical("lost the operator Lease; exiting so that the standby takes over")
    logging.shutdown()
    os._exit(EXIT_LOST_LEASE)


def acquire(
    settings: LeaseSettings,
    api: client.ApiClient,
    *,
    on_lost: Callable[[], None] = lost_lease,
) -> None:
    """Block until this replica holds the Lease; it is renewed in the background after."""
    leading = threading.Event()
    lock = LeaseLock(settings.name, settings.namespace, settings.identity)
    lock.api_instance = client.CoordinationV1Api(api)
    config = electionconfig.Config(
        lock,
        settings.lease_duration,
        settings.renew_deadline,
        settings.retry_period,
        leading.set,
        on_lost,
    )
    election = leaderelection.LeaderElection(config)
    threading.Thread(target=election.run, name="operator-lease", daemon=True).start()
    log.info(
        "waiting for the operator Lease %s/%s as %s",
        settings.namespace,
        settings.name,
        settings.identity,
    )
    leading.wait()
    log.info("holding the operator Lease %s/%s", settings.namespace, settings.name)


class _StandbyHealth(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"standby": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def standby_health(liveness_url: str | None) -> Iterator[None]:
    """Answer the liveness endpoint kopf will serve once active, until then."""
    if not liveness_url:
        yield
        return
    url = urlparse(liveness_url)
    server = ThreadingHTTPServer((url.hostname or "0.0.0.0", url.port or 80), _StandbyHealth)
    thread = threading.Thread(target=server.serve_forever, name="standby-health", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
