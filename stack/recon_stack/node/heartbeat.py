"""Keep the Node registered and alive: its object, its Ready heartbeat and its Lease.

The scheduler places pods only on a Ready node with room for their requests, and node
health is judged by the Lease's renew time (and, less often, the Ready condition's
heartbeat), so both are kept fresh on the kubelet's schedule.
"""

from __future__ import annotations

import logging
import threading
import time

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from recon_stack.node.kubeapi import NodeApi
from recon_stack.node.nodeinfo import (
    LEASE_NAMESPACE,
    LEASE_RENEW_SECONDS,
    STATUS_REPORT_SECONDS,
    NodeShape,
    lease_body,
    node_body,
    node_labels,
    node_status,
    taints_without_health,
)
from recon_stack.node.timestamps import rfc3339, rfc3339_micro, utcnow

log = logging.getLogger(__name__)


class NodeHeartbeat:
    def __init__(self, api: NodeApi, shape: NodeShape) -> None:
        self.api = api
        self.shape = shape
        self._node_uid = ""

    def register(self) -> None:
        """Create the Node, or bring an existing one (from an earlier run) up to date."""
        now = rfc3339(utcnow())
        existing = self.api.read_node(self.shape.name)
        if existing is None:
            try:
                node = self.api.create_node(node_body(self.shape, now))
            except ApiException as e:
                if e.status != 409:
                    raise
                node = self.api.patch_node(
                    self.shape.name, {"metadata": {"labels": node_labels(self.shape)}}
                )
        else:
            node = self.api.patch_node(
                self.shape.name, {"metadata": {"labels": node_labels(self.shape)}}
            )
        self._node_uid = str(node["metadata"]["uid"])
        self.report_status()
        self.renew_lease()
        self.clear_health_taints()

    def clear_health_taints(self) -> None:
        """Drop the not-ready taint the API server adds to a new Node, once it is Ready."""
        node = self.api.read_node(self.shape.name) or {}
        taints = (node.get("spec") or {}).get("taints") or []
        kept = taints_without_health(taints)
        if kept != taints:
            self.api.patch_node(self.shape.name, {"spec": {"taints": kept or None}})

    def report_status(self) -> None:
        """Post the full node status: capacity (the GPU count may have changed) and Ready."""
        node = self.api.read_node(self.shape.name) or {}
        previous = {
            str(c.get("type")): c for c in (node.get("status") or {}).get("conditions") or []
        }
        status = node_status(self.shape, rfc3339(utcnow()), previous)
        # Addresses merge by type; replace them so none left by an earlier run remains.
        status["addresses"] = [{"$patch": "replace"}, *status["addresses"]]
        self.api.patch_node_status(self.shape.name, {"status": status})

    def renew_lease(self) -> None:
        now = rfc3339_micro(utcnow())
        try:
            self.api.renew_lease(
                LEASE_NAMESPACE,
                self.shape.name,
                {"holderIdentity": self.shape.name, "renewTime": now},
            )
        except ApiException as e:
            if e.status != 404:
                raise
            self.api.create_lease(LEASE_NAMESPACE, lease_body(self.shape.name, self._node_uid, now))

    def run(self, stop: threading.Event) -> None:
        """Renew the Lease every few seconds and re-post status every minute until stopped.

        A failed renewal (API server restarting) is logged and retried on the next tick;
        the node is re-registered if its object was deleted meanwhile.
        """
        last_status = time.monotonic()
        while not stop.wait(LEASE_RENEW_SECONDS):
            try:
                if time.monotonic() - last_status >= STATUS_REPORT_SECONDS:
                    if self.api.read_node(self.shape.name) is None:
                        self.register()
                    else:
                        self.report_status()
                        self.clear_health_taints()
                    last_status = time.monotonic()
                self.renew_lease()
            except (ApiException, HTTPError, OSError) as e:
                log.warning("node heartbeat failed, retrying: %s", e)
