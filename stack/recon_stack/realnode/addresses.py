"""The addresses of the real node, all inside the stack's own network namespace.

Each stack has a namespace of its own, so two stacks side by side use the same numbers
without meeting. Nothing here is ever added to an interface of the machine's namespace.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

# The node's InternalIP, on the namespace's loopback interface (the kubelet refuses a
# loopback *address*, not the interface). The API server's serving certificate names it.
NODE_IP = "10.200.0.1"
POD_CIDR = "10.244.0.0/24"
POD_GATEWAY = "10.244.0.1"
CNI_BRIDGE = "recon0"
CNI_NETWORK = "recon-pods"
# The `kubernetes` Service is the range's first address (the API server's own choice).
KUBERNETES_SERVICE_IP = "10.0.0.1"
# A selector-less Service in front of the stack's MinIO, with a fixed cluster IP so pods
# reach it without cluster DNS.
MINIO_SERVICE_NAME = "minio"
MINIO_SERVICE_NAMESPACE = "default"
MINIO_SERVICE_IP = "10.0.0.9"
MINIO_SERVICE_PORT = 9000
KUBELET_PORT = 10250


def namespace_name(state_dir: Path) -> str:
    """The network namespace of the stack in ``state_dir``: one per state directory."""
    digest = hashlib.sha256(str(state_dir.absolute()).encode()).hexdigest()[:10]
    return f"recon-{digest}"


def cgroup_name(state_dir: Path) -> str:
    """The cgroup parent of the node's pods (under every cgroup v1 hierarchy)."""
    return namespace_name(state_dir)
