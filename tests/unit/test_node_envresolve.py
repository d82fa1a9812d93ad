"""A container's env is resolved from its pod spec as a kubelet resolves it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from recon_stack.node.envresolve import EnvConfigError, expand, resolve_env

POD: dict[str, Any] = {
    "metadata": {
        "name": "chair-001-recon-x7k2p",
        "namespace": "studio",
        "uid": "1234-abcd",
        "labels": {"app": "recon"},
        "annotations": {"recon.dev/attempt": "2"},
    },
    "spec": {"nodeName": "local-gpu-0", "serviceAccountName": "chair-001-runner"},
}

SECRETS = {("studio", "minio-credentials"): {"accessKey": "AK", "secretKey": "SK"}}
CONFIG_MAPS = {("studio", "settings"): {"MODE": "fast", "LEVEL": "3"}}


def secrets(namespace: str, name: str) -> Mapping[str, str] | None:
    return SECRETS.get((namespace, name))


def config_maps(namespace: str, name: str) -> Mapping[str, str] | None:
    return CONFIG_MAPS.get((namespace, name))


def key_ref(kind: str, name: str, key: str, optional: bool = False) -> dict[str, Any]:
    return {kind: {"name": name, "key": key, "optional": optional}}


def env_of(*entries: dict[str, Any], env_from: list[Any] | None = None) -> dict[str, str]:
    container = {"name": "c", "env": list(entries), "envFrom": env_from or []}
    return resolve_env(POD, container, secrets, config_maps)


def test_plain_values_secret_and_config_map_keys() -> None:
    env = env_of(
        {"name": "A", "value": "plain"},
        {"name": "KEY", "valueFrom": key_ref("secretKeyRef", "minio-credentials", "accessKey")},
        {"name": "MODE", "valueFrom": key_ref("configMapKeyRef", "settings", "MODE")},
        {"name": "EMPTY"},
    )
    assert env == {"A": "plain", "KEY": "AK", "MODE": "fast", "EMPTY": ""}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("metadata.name", "chair-001-recon-x7k2p"),
        ("metadata.namespace", "studio"),
        ("metadata.uid", "1234-abcd"),
        ("metadata.labels['app']", "recon"),
        ("metadata.annotations['recon.dev/attempt']", "2"),
        ("spec.nodeName", "local-gpu-0"),
        ("spec.serviceAccountName", "chair-001-runner"),
        ("status.podIP", "127.0.0.1"),
        ("status.hostIP", "127.0.0.1"),
    ],
)
def test_downward_api_field_refs(path: str, value: str) -> None:
    env = env_of({"name": "V", "valueFrom": {"fieldRef": {"fieldPath": path}}})
    assert env == {"V": value}


def test_env_from_comes_first_and_explicit_env_overrides_it() -> None:
    env = env_of(
        {"name": "CFG_MODE", "value": "override"},
        env_from=[
            {"configMapRef": {"name": "settings"}, "prefix": "CFG_"},
            {"secretRef": {"name": "minio-credentials"}},
        ],
    )
    assert env == {"CFG_MODE": "override", "CFG_LEVEL": "3", "accessKey": "AK", "secretKey": "SK"}


def test_missing_secret_or_key_stops_the_container_with_the_kubelets_message() -> None:
    with pytest.raises(EnvConfigError, match='secret "nope" not found'):
        env_of({"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}})
    with pytest.raises(EnvConfigError, match="couldn't find key other in Secret studio/minio"):
        env_of({"name": "X", "valueFrom": key_ref("secretKeyRef", "minio-credentials", "other")})
    with pytest.raises(EnvConfigError, match='configmap "gone" not found'):
        env_of(env_from=[{"configMapRef": {"name": "gone"}}])


def test_optional_references_to_missing_things_are_left_out() -> None:
    env = env_of(
        {"name": "X", "valueFrom": key_ref("secretKeyRef", "nope", "k", optional=True)},
        {"name": "Y", "valueFrom": key_ref("configMapKeyRef", "settings", "zz", optional=True)},
        env_from=[{"secretRef": {"name": "nope", "optional": True}}],
    )
    assert env == {}


def test_values_refer_to_variables_defined_before_them() -> None:
    env = env_of(
        {"name": "BASE", "value": "/data"},
        {"name": "OUT", "value": "$(BASE)/out"},
        {"name": "LATER", "value": "$(NEXT)-x"},
        {"name": "NEXT", "value": "n"},
    )
    assert env["OUT"] == "/data/out"
    assert env["LATER"] == "$(NEXT)-x"


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("$(A)", "1"),
        ("x$(A)y$(B)z", "x1y2z"),
        ("$$(A)", "$(A)"),
        ("$(UNDEFINED)", "$(UNDEFINED)"),
        ("$(A", "$(A"),
        ("cost: $5", "cost: $5"),
        ("trailing $", "trailing $"),
        ("$$$(A)", "$1"),
    ],
)
def test_expansion_follows_the_kubernetes_rules(text: str, expanded: str) -> None:
    assert expand(text, {"A": "1", "B": "2"}) == expanded
