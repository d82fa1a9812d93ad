"""Kubeconfig files for the stack's users: the admin, the components, and pods.

The CA is embedded rather than referenced by path, so a kubeconfig keeps working when it
is copied (into a pod's working directory, to another shell) away from the state dir.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

Kubeconfig = dict[str, Any]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _config(server: str, ca_pem: bytes, user: str, credentials: dict[str, str]) -> Kubeconfig:
    cluster = "recon-stack"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)},
            }
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        "current-context": cluster,
    }


def cert_kubeconfig(
    server: str, ca_pem: bytes, user: str, cert_pem: bytes, key_pem: bytes
) -> Kubeconfig:
    """A kubeconfig that authenticates with an x509 client certificate."""
    creds = {"client-certificate-data": _b64(cert_pem), "client-key-data": _b64(key_pem)}
    return _config(server, ca_pem, user, creds)


def token_kubeconfig(
    server: str, ca: bytes | Path, token: str, namespace: str | None = None
) -> Kubeconfig:
    """A kubeconfig that authenticates with a bearer token (a pod's ServiceAccount token).

    ``ca`` is the CA certificate as PEM bytes or a path to it; ``namespace`` becomes the
    context's default namespace, as a pod's in-cluster config would have it.
    """
    ca_pem = ca.read_bytes() if isinstance(ca, Path) else ca
    config = _config(server, ca_pem, "service-account", {"token": token})
    if namespace:
        config["contexts"][0]["context"]["namespace"] = namespace
    return config


def dump(config: Kubeconfig) -> str:
    return yaml.safe_dump(config, sort_keys=False)


def write(path: Path, config: Kubeconfig) -> Path:
    """Write a kubeconfig readable only by its owner (it holds credentials), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(dump(config))
    tmp.replace(path)
    return path
