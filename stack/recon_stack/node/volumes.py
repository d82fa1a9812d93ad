"""Where a pod's volume mounts live on this machine, and paths rewritten to them.

Processes share the host's filesystem, so a mount cannot be made at the path the
container asks for. Each emptyDir volume is a per-pod directory instead, and any env value
or argument that names a mount path (``TMPDIR=/tmp`` with an emptyDir at ``/tmp``, or
``--out /work/out`` under a mount at ``/work``) is rewritten to point into that directory.
Pure: the caller creates the directories.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

Json = Mapping[str, Any]


def volume_dirs(pod: Json, volumes_root: Path) -> dict[str, Path]:
    """A directory under ``volumes_root`` for each emptyDir volume of the pod.

    Other volume kinds (the projected ServiceAccount token the API server adds to every
    pod, Secrets, host paths) get none: their mounts stay unmapped, and a pod reaches the
    API through the kubeconfig it is given instead.
    """
    dirs: dict[str, Path] = {}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        if "emptyDir" in volume:
            dirs[str(volume["name"])] = volumes_root / str(volume["name"])
    return dirs


def mount_dirs(container: Json, volumes: Mapping[str, Path]) -> dict[str, Path]:
    """Container mount path -> local directory, for mounts of volumes that have one."""
    mounts: dict[str, Path] = {}
    for mount in container.get("volumeMounts") or []:
        local = volumes.get(str(mount.get("name")))
        if local is None:
            continue
        sub = str(mount.get("subPath") or "").strip("/")
        mount_path = posixpath.normpath(str(mount["mountPath"]))
        mounts[mount_path] = local / sub if sub else local
    return mounts


def rewrite_path(value: str, mounts: Mapping[str, Path]) -> str:
    """``value`` pointed into the mount's directory when it is a mount path or under one.

    The longest matching mount wins, as nested mounts shadow their parents in a container.
    Anything else (relative paths, URLs, plain words) is returned unchanged.
    """
    if not value.startswith("/"):
        return value
    for mount_path in sorted(mounts, key=len, reverse=True):
        if value == mount_path or mount_path == "/":
            rest = value[len(mount_path) :].lstrip("/")
            return str(mounts[mount_path] / rest) if rest else str(mounts[mount_path])
        if value.startswith(mount_path + "/"):
            return str(mounts[mount_path] / value[len(mount_path) + 1 :])
    return value


def rewrite_all(values: Iterable[str], mounts: Mapping[str, Path]) -> list[str]:
    return [rewrite_path(v, mounts) for v in values]
