"""A container's environment, resolved from its pod spec as a kubelet resolves it.

Pure: Secrets and ConfigMaps arrive through lookup callables, so the rules (ordering,
``optional``, ``$(VAR)`` expansion, downward-API fields) are tested without a cluster.
Messages match the kubelet's wording, so a pod stuck on a missing Secret reads the same
here as on a real node.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

# (namespace, name) -> the object's data as text, or None when the object does not exist.
Lookup = Callable[[str, str], Mapping[str, str] | None]

Json = Mapping[str, Any]


class EnvConfigError(ValueError):
    """The env refers to something missing; the container cannot start (yet).

    A kubelet keeps such a container waiting with this reason and retries, because the
    Secret or ConfigMap may simply not have been created yet.
    """

    reason = "CreateContainerConfigError"


_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['([^']*)'\]$")


def field_value(pod: Json, path: str, node_ip: str) -> str:
    """The value of a downward-API ``fieldRef`` path for this pod.

    Status addresses are this node's, known before the pod's status says so: the process
    starts before its Running status is written.
    """
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple: dict[str, Any] = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
        "status.podIP": node_ip,
        "status.podIPs": node_ip,
        "status.hostIP": node_ip,
        "status.hostIPs": node_ip,
    }
    if path in simple:
        return str(simple[path] or "")
    m = _SUBSCRIPT.match(path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    raise EnvConfigError(f"unsupported fieldRef fieldPath {path!r}")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: defined names are replaced, ``$$`` escapes a ``$``.

    An undefined reference is left as written, as the API documents.
    """
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            rest = text[cursor + 1 :]
            if rest[0] == "$":
                out.append("$")
            elif rest[0] == "(":
                close = rest.find(")")
                if close > 0:
                    name = rest[1:close]
                    out.append(env.get(name, f"$({name})"))
                    cursor += close
                else:
                    out.append("$(")
            else:
                out.append("$" + rest[0])
            cursor += 1
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)


def _source(ref: Json, kind: str, namespace: str, lookup: Lookup) -> Mapping[str, str] | None:
    name = str(ref.get("name") or "")
    data = lookup(namespace, name)
    if data is None and not ref.get("optional"):
        raise EnvConfigError(f'{kind.lower()} "{name}" not found')
    return data


def _key_ref(ref: Json, kind: str, namespace: str, lookup: Lookup, var: str) -> str | None:
    data = _source(ref, kind, namespace, lookup)
    key = str(ref.get("key") or "")
    if data is None:
        return None
    if key not in data:
        if ref.get("optional"):
            return None
        raise EnvConfigError(
            f"couldn't find key {key} in {kind} {namespace}/{ref.get('name')} (env var {var})"
        )
    return data[key]


def resolve_env(
    pod: Json,
    container: Json,
    secrets: Lookup,
    config_maps: Lookup,
    node_ip: str = "127.0.0.1",
) -> dict[str, str]:
    """The container's env: ``envFrom`` first, then ``env`` entries in order.

    Each ``env`` value may refer to variables defined before it with ``$(NAME)``; optional
    references to missing objects or keys are left out rather than set empty.
    """
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = str(source.get("prefix") or "")
        data: Mapping[str, str] | None = None
        if source.get("secretRef"):
            data = _source(source["secretRef"], "Secret", namespace, secrets)
        elif source.get("configMapRef"):
            data = _source(source["configMapRef"], "ConfigMap", namespace, config_maps)
        for key, text in (data or {}).items():
            env[prefix + key] = text
    for var in container.get("env") or []:
        name = str(var["name"])
        value: str | None
        if "value" in var and var["value"] is not None:
            value = expand(str(var["value"]), env)
        elif var.get("valueFrom"):
            value = _value_from(var["valueFrom"], pod, secrets, config_maps, name, node_ip)
        else:
            value = ""
        if value is not None:
            env[name] = value
    return env


def _value_from(
    source: Json, pod: Json, secrets: Lookup, config_maps: Lookup, var: str, node_ip: str
) -> str | None:
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    if source.get("secretKeyRef"):
        return _key_ref(source["secretKeyRef"], "Secret", namespace, secrets, var)
    if source.get("configMapKeyRef"):
        return _key_ref(source["configMapKeyRef"], "ConfigMap", namespace, config_maps, var)
    if source.get("fieldRef"):
        return field_value(pod, str(source["fieldRef"].get("fieldPath") or ""), node_ip)
    raise EnvConfigError(
        f"env var {var}: unsupported valueFrom {sorted(source)} on the process node"
    )
