"""Kubeconfigs the stack writes: self-contained, private, and right for the pod's namespace."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import yaml
from recon_stack.kubeconfig import token_kubeconfig, write

CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_token_kubeconfig_is_self_contained_and_private(tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(CA)
    path = write(
        tmp_path / "pod" / "kubeconfig",
        token_kubeconfig("https://127.0.0.1:6443", ca_file, "tok", namespace="studio"),
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = yaml.safe_load(path.read_text())
    context = next(c for c in loaded["contexts"] if c["name"] == loaded["current-context"])
    cluster = next(c for c in loaded["clusters"] if c["name"] == context["context"]["cluster"])
    user = next(u for u in loaded["users"] if u["name"] == context["context"]["user"])
    assert cluster["cluster"]["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["cluster"]["certificate-authority-data"]) == CA
    assert user["user"] == {"token": "tok"}
    assert context["context"]["namespace"] == "studio"


def test_ca_may_be_given_as_pem_bytes() -> None:
    config = token_kubeconfig("https://127.0.0.1:1", CA, "t")
    data = config["clusters"][0]["cluster"]["certificate-authority-data"]
    assert base64.b64decode(data) == CA
    assert "namespace" not in config["contexts"][0]["context"]
