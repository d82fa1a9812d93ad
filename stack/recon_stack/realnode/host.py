"""What the real node changes on the machine, made and unmade: the edge that touches the host.

A network namespace (`ip netns`), a mount namespace held by one small process (its /run a
tmpfs, the stack's folders mounted over /var/lib and /var/log, so the kubelet's and
containerd's fixed paths are the stack's own), a cgroup parent in every cgroup v1
hierarchy, and the global sysctls the kubelet rewrites. Each `make_*` has its `remove_*`,
and every `remove_*` works from what is on the machine, not from what this process
remembers, so `recon dev down` after a crash still leaves the machine as it was found.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from recon_stack.paths import cache_root
from recon_stack.realnode import addresses

CGROUP_ROOT = Path("/sys/fs/cgroup")
# The global (not per network namespace) sysctls the kubelet sets at start-up
# (pkg/kubelet/cm setupKernelTunables), restored on `down`.
KUBELET_SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
# Paths the node's mount namespace replaces; a state directory below one would vanish.
HIDDEN_PATHS = (Path("/run"), Path("/var/lib"), Path("/var/log"))


class HostError(RuntimeError):
    """The machine cannot host the real node; the message says what is missing."""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False)


def check_state_dir(state_dir: Path) -> None:
    resolved = state_dir.resolve()
    for hidden in HIDDEN_PATHS:
        if resolved == hidden or hidden in resolved.parents:
            raise HostError(
                f"--state-dir {state_dir}: the real node mounts its own {hidden} and would "
                "hide a state directory below it; choose another directory"
            )


# -- network namespace ---------------------------------------------------------------------


def netns_path(name: str) -> Path:
    return Path("/run/netns") / name


def make_netns(name: str) -> Path:
    """The stack's network namespace with its loopback up and the node's address on it."""
    if not netns_path(name).exists():
        proc = _run("ip", "netns", "add", name)
        if proc.returncode != 0:
            raise HostError(f"cannot create the network namespace {name}: {proc.stderr.strip()}")
    for args in (
        ("ip", "-n", name, "link", "set", "lo", "up"),
        ("ip", "-n", name, "addr", "replace", f"{addresses.NODE_IP}/32", "dev", "lo"),
    ):
        proc = _run(*args)
        if proc.returncode != 0:
            raise HostError(f"`{' '.join(args)}` failed: {proc.stderr.strip()}")
    return netns_path(name)


def netns_pids(name: str) -> list[int]:
    """Processes still inside the namespace (`ip netns pids`)."""
    if not netns_path(name).exists():
        return []
    proc = _run("ip", "netns", "pids", name)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def kill_until_gone(pids_of: Callable[[], list[int]], tries: int = 50) -> None:
    """SIGKILL every process `pids_of` lists, again and again (a dying process may still
    fork), until it lists none or `tries` rounds 0.1 s apart have passed."""
    for _ in range(tries):
        pids = pids_of()
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def remove_netns(name: str) -> None:
    """Kill what is left inside, then delete the namespace (its iptables rules, bridge and
    pod interfaces go with it)."""
    kill_until_gone(lambda: netns_pids(name))
    if netns_path(name).exists():
        _run("ip", "netns", "delete", name)


# -- mount namespace -------------------------------------------------------------------------


def holder_argv(netns: Path, var_lib: Path, var_log: Path) -> list[str]:
    """The process that owns the node's mount namespace, inside the network namespace.

    ``unshare --propagation private`` cuts the new namespace off from the machine's, so
    nothing mounted inside (the tmpfs, the binds, the kubelet's volumes, containerd's
    overlays) ever shows outside, and all of it is gone when the last process inside ends.
    """
    script = (
        "set -e; mount -t tmpfs -o mode=0755 recon-node-run /run; "
        f"mount --bind '{var_lib}' /var/lib; mount --bind '{var_log}' /var/log; "
        "mount --make-rshared /; echo holder ready; exec sleep infinity"
    )
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "nsenter",
        f"--net={netns}",
        "sh",
        "-c",
        script,
    ]


def inside_argv(holder_pid: int, argv: list[str]) -> list[str]:
    """``argv`` run inside the holder's mount and network namespaces."""
    return ["nsenter", f"--target={holder_pid}", "--mount", "--net", "--", *argv]


# -- cgroups -----------------------------------------------------------------------------------


def cgroup_hierarchies() -> list[Path]:
    """The mounted cgroup v1 hierarchies (cpu, memory, pids, ...), or the v2 root."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return [CGROUP_ROOT]
    return sorted(p for p in CGROUP_ROOT.iterdir() if p.is_dir() and not p.is_symlink())


def make_cgroups(name: str) -> None:
    """The pods' cgroup parent in every hierarchy (the kubelet requires it to exist)."""
    for hierarchy in cgroup_hierarchies():
        path = hierarchy / name
        path.mkdir(exist_ok=True)
        for knob in ("cpuset.cpus", "cpuset.mems"):
            if (path / knob).exists() and not (path / knob).read_text().strip():
                (path / knob).write_text((hierarchy / knob).read_text())


def _cgroup_dirs_bottom_up(top: Path) -> list[Path]:
    found = [Path(d) for d, _, _ in os.walk(top)]
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def cgroup_pids(name: str) -> list[int]:
    pids: set[int] = set()
    for hierarchy in cgroup_hierarchies():
        top = hierarchy / name
        if not top.is_dir():
            continue
        for d in _cgroup_dirs_bottom_up(top):
            procs = d / "cgroup.procs"
            with contextlib.suppress(OSError):
                pids |= {int(p) for p in procs.read_text().split()}
    return sorted(pids)


def remove_cgroups(name: str) -> None:
    """Kill what still runs in the node's cgroups (pods of a crashed node), remove them."""
    kill_until_gone(lambda: cgroup_pids(name))
    for hierarchy in cgroup_hierarchies():
        top = hierarchy / name
        if not top.is_dir():
            continue
        for _ in range(20):
            for d in _cgroup_dirs_bottom_up(top):
                with contextlib.suppress(OSError):
                    d.rmdir()
            if not top.exists():
                break
            time.sleep(0.1)


# -- processes found by what they serve ------------------------------------------------------


def pids_with_argument(argument: str) -> list[int]:
    """Processes whose command line holds ``argument`` exactly (containerd's shims name
    the node's own socket, which no other stack's shim does)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argument.encode() in args:
            found.append(int(entry.name))
    return found


def kill_pids(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# -- sysctls ------------------------------------------------------------------------------------


def _sysctl_record() -> Path:
    return cache_root() / "realnode-sysctls.json"


@contextlib.contextmanager
def _sysctl_lock() -> Iterator[None]:
    path = cache_root() / "locks" / "realnode-sysctls.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_sysctls() -> dict[str, str]:
    values = {}
    for key in KUBELET_SYSCTLS:
        with contextlib.suppress(OSError):
            values[key] = (Path("/proc/sys") / key).read_text().strip()
    return values


def save_sysctls(holder: Path) -> None:
    """Record the machine's values before the first node of any stack changes them.

    The record is machine-wide, with the stacks whose node holds it: a second stack that
    starts while the first runs must not take the first's changes for the originals.
    """
    with _sysctl_lock():
        record_path = _sysctl_record()
        if record_path.exists():
            record = json.loads(record_path.read_text())
        else:
            record = {"values": read_sysctls(), "holders": []}
        if str(holder) not in record["holders"]:
            record["holders"].append(str(holder))
        record_path.parent.mkdir(parents=True, exist_ok=True)
        record_path.write_text(json.dumps(record, indent=1) + "\n")


def restore_sysctls(holder: Path, still_running: Callable[[Path], bool]) -> dict[str, str]:
    """Drop ``holder``; when no running node holds the record any more, write the recorded
    values back and delete it. Returns what was restored."""
    with _sysctl_lock():
        record_path = _sysctl_record()
        if not record_path.exists():
            return {}
        record = json.loads(record_path.read_text())
        holders = [h for h in record["holders"] if h != str(holder) and still_running(Path(h))]
        if holders:
            record["holders"] = holders
            record_path.write_text(json.dumps(record, indent=1) + "\n")
            return {}
        values: dict[str, str] = record["values"]
        for key, value in values.items():
            with contextlib.suppress(OSError):
                (Path("/proc/sys") / key).write_text(value + "\n")
        record_path.unlink()
        return values
