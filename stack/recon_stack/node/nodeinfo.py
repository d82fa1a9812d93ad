"""The Node and Lease objects the process node keeps in the API, as plain bodies.

Pure, so what the scheduler sees (capacity, allocatable, labels, the Ready condition) can
be read and tested without a cluster. Capacity is declared, not measured: the point is to
let the real scheduler place pods and check their GPU requests, and a ReconJob asking for
``cpu: 4`` must fit on a 2-core development machine.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from recon_stack.binaries import KUBERNETES_VERSION

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40
# How often the Lease is renewed and the Ready heartbeat written; a kubelet renews every
# 10 s and posts unchanged status far less often.
LEASE_RENEW_SECONDS = 10
STATUS_REPORT_SECONDS = 60

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}

_PRESSURE_CONDITIONS = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "node has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "node has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "node has sufficient PID available"),
)


@dataclass(frozen=True)
class NodeShape:
    """What the node advertises to the scheduler."""

    name: str
    cpu: str = "16"
    memory: str = "64Gi"
    pods: int = 110
    gpus: int = 2
    gpu_resource: str = "nvidia.com/gpu"
    ephemeral_storage: str = "100Gi"
    address: str = "127.0.0.1"
    # Where the API server reaches the node for `kubectl logs` (0: nowhere).
    kubelet_port: int = 0

    def capacity(self) -> dict[str, str]:
        return {
            "cpu": self.cpu,
            "memory": self.memory,
            "pods": str(self.pods),
            "ephemeral-storage": self.ephemeral_storage,
            self.gpu_resource: str(self.gpus),
        }


def architecture() -> str:
    machine = platform.machine().lower()
    return _ARCH.get(machine, machine)


def node_labels(shape: NodeShape) -> dict[str, str]:
    return {
        "kubernetes.io/hostname": shape.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": architecture(),
        "node.kubernetes.io/instance-type": "process-node",
    }


def node_conditions(now: str, previous: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Ready plus the pressure conditions, heartbeat ``now``, transitions kept when unchanged."""
    wanted = [(kind, "False", reason, message) for kind, reason, message in _PRESSURE_CONDITIONS]
    wanted.append(("Ready", "True", "KubeletReady", "process node is posting ready status"))
    conditions = []
    for kind, status, reason, message in wanted:
        before = previous.get(kind) or {}
        same = before.get("status") == status
        conditions.append(
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": now,
                "lastTransitionTime": before.get("lastTransitionTime") if same else now,
            }
        )
    return conditions


def node_status(
    shape: NodeShape, now: str, previous: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "capacity": shape.capacity(),
        "allocatable": shape.capacity(),
        "conditions": node_conditions(now, previous or {}),
        # No Hostname address: the API server dials the first address type it prefers,
        # Hostname before InternalIP, and the node's name resolves nowhere.
        "addresses": [{"type": "InternalIP", "address": shape.address}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": shape.kubelet_port}},
        "nodeInfo": {
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
            "kernelVersion": platform.release(),
            "osImage": "process node (pods run as local processes)",
            "containerRuntimeVersion": "process://0.1.0",
            "kubeletVersion": KUBERNETES_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": architecture(),
        },
    }


# Taints the API server puts on a new Node (and the node lifecycle controller on an
# unhealthy one) until that controller sees it Ready. The stack runs without that
# controller, so the node clears them itself once it reports Ready.
HEALTH_TAINT_KEYS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def taints_without_health(taints: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for t in taints if t.get("key") not in HEALTH_TAINT_KEYS]


def node_body(shape: NodeShape, now: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": shape.name, "labels": node_labels(shape)},
        "spec": {},
        "status": node_status(shape, now),
    }


def lease_body(node_name: str, node_uid: str, now_micro: str) -> dict[str, Any]:
    """The node's Lease, owned by its Node so deleting the Node removes it, as kubelets do."""
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": node_name,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid}
            ],
        },
        "spec": {
            "holderIdentity": node_name,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": now_micro,
        },
    }
