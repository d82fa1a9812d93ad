"""What one container runs: argv, environment and working directory, from its pod spec.

Pure: it combines the image table, env resolution and volume path rewriting into one
launch description, so what a pod would run is testable without starting anything. The
process gets a clean environment, as in a container: only a few host settings the
toolchain needs pass through (locale, home, caches, CUDA), never the caller's kubeconfig
or storage credentials. GPUs are not partitioned: a pod that requests any sees the
host's GPUs, a pod that requests none sees none.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recon_stack.node.envresolve import Lookup, expand, resolve_env
from recon_stack.node.images import ImageTable, split_argv
from recon_stack.node.volumes import mount_dirs, rewrite_all, rewrite_path, volume_dirs

Json = Mapping[str, Any]

PASSED_THROUGH = frozenset(
    {
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "TZ",
        "XDG_CACHE_HOME",
        "LD_LIBRARY_PATH",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
    }
)
PASSED_THROUGH_PREFIXES = ("LC_", "CUDA_", "NVIDIA_", "TORCH_")


@dataclass(frozen=True)
class PodDirs:
    """A pod's files on this node: logs, emptyDir volumes, working dir, kubeconfig."""

    root: Path

    @classmethod
    def for_pod(cls, pods_root: Path, pod: Json) -> PodDirs:
        meta = pod.get("metadata") or {}
        return cls(pods_root / f"{meta.get('namespace')}_{meta.get('name')}_{meta.get('uid')}")

    def log(self, container: str) -> Path:
        return self.root / f"{container}.log"

    @property
    def volumes(self) -> Path:
        return self.root / "volumes"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"


@dataclass(frozen=True)
class LaunchSpec:
    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: Path
    log_path: Path
    volume_dirs: tuple[Path, ...]


def host_env(parent: Mapping[str, str], venv_bin: str) -> dict[str, str]:
    """The part of the node's own environment a pod inherits, with the venv first on PATH.

    ``python`` and ``recon`` must be this checkout's, whatever shell started the stack.
    """
    env = {
        k: v
        for k, v in parent.items()
        if k in PASSED_THROUGH or k.startswith(PASSED_THROUGH_PREFIXES)
    }
    env["PATH"] = _venv_first(parent.get("PATH", os.defpath), venv_bin)
    return env


def _venv_first(path: str, venv_bin: str) -> str:
    rest = [p for p in path.split(os.pathsep) if p and p != venv_bin]
    return os.pathsep.join([venv_bin, *rest])


def gpus_requested(container: Json, resource: str) -> int:
    """GPUs the container asks for; extended resources are set as limits (requests match)."""
    resources = container.get("resources") or {}
    for kind in ("limits", "requests"):
        value = (resources.get(kind) or {}).get(resource)
        if value is not None:
            return int(str(value))
    return 0


def launch_spec(
    pod: Json,
    container: Json,
    *,
    table: ImageTable,
    secrets: Lookup,
    config_maps: Lookup,
    dirs: PodDirs,
    parent_env: Mapping[str, str],
    venv_bin: str,
    node_ip: str = "127.0.0.1",
    gpu_resource: str = "nvidia.com/gpu",
) -> LaunchSpec:
    """How to run ``container``; raises EnvConfigError or NoCommandError when it cannot."""
    name = str(container["name"])
    mounts = mount_dirs(container, volume_dirs(pod, dirs.volumes))
    own_env = resolve_env(pod, container, secrets, config_maps, node_ip)
    entrypoint, from_spec = split_argv(container, table)
    spec_argv = [expand(a, own_env) for a in from_spec]
    env = host_env(parent_env, venv_bin)
    env["HOSTNAME"] = str((pod.get("metadata") or {}).get("name") or "")
    if gpus_requested(container, gpu_resource) == 0:
        # As on a node with the GPU device plugin: a pod that asked for no GPU sees none.
        env["CUDA_VISIBLE_DEVICES"] = ""
    env.update({k: rewrite_path(v, mounts) for k, v in own_env.items()})
    if "PATH" in own_env:
        env["PATH"] = _venv_first(env["PATH"], venv_bin)
    env["KUBECONFIG"] = str(dirs.kubeconfig)
    working_dir = str(container.get("workingDir") or "")
    cwd = rewrite_path(working_dir, mounts) if working_dir else ""
    return LaunchSpec(
        argv=(*entrypoint, *rewrite_all(spec_argv, mounts)),
        env=env,
        cwd=Path(cwd) if cwd and cwd != working_dir else dirs.work,
        log_path=dirs.log(name),
        volume_dirs=tuple(sorted(set(mounts.values()))),
    )
