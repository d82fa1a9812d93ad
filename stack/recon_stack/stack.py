"""Bring a local stack up, tear it down, and say what runs: the edge that starts processes.

`up` either finishes with every component healthy or stops everything it started and
raises a `StackError` naming the component and its log; a half-started stack is never left
behind. The command lines themselves come from `components`, the certificates from `pki`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from recon_stack import (
    components,
    image_build,
    kubeconfig,
    minio_credentials,
    pki,
    ports,
    probes,
)
from recon_stack.binaries import resolve_binaries
from recon_stack.components import (
    APISERVER,
    COMPONENT_NAMES,
    CONTROLLER_MANAGER,
    ETCD,
    MINIO,
    NODE,
    NODE_NAME,
    SCHEDULER,
    Component,
)
from recon_stack.layout import StateLayout
from recon_stack.processes import ProcessRecord, is_alive, read_pidfile, spawn, stop
from recon_stack.realnode import node as realnode
from recon_stack.shell_env import env_lines

DEFAULT_TIMEOUT = 120.0
# The node stops its pods first, each within its grace period, before it exits itself.
NODE_STOP_GRACE = 40.0
# `process`: the stack's own kubelet that runs pods as host processes (the default);
# `real`: kubelet, containerd and runc in a network namespace of the stack, running the
# project's images (see recon_stack.realnode).
NODE_KINDS = ("process", "real")
# Every name a PID file may carry, whichever node a stack ran last.
ALL_COMPONENTS = (*COMPONENT_NAMES, *realnode.COMPONENTS)
COMPONENT_STOP_GRACE = 10.0
LOG_TAIL_LINES = 15
# Processes started on a running stack by other modules, stopped with it.
ADDONS = ("kueue",)


class StackError(RuntimeError):
    """A stack could not be brought up (or is not up); the message says which part and why."""


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int | None
    alive: bool
    port: int | None
    log: Path


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join("  " + line for line in text.splitlines()[-lines:])


def _parse_time(value: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None


def node_ready_since(node: object, since: dt.datetime) -> bool:
    """Ready=True with a heartbeat at or after ``since``.

    A restarted stack finds its Node object from the last run still marked Ready in etcd;
    only a heartbeat from the new node process counts.
    """
    if not probes.node_is_ready(node):
        return False
    assert isinstance(node, dict)
    for cond in node.get("status", {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            beat = _parse_time(cond.get("lastHeartbeatTime", ""))
            return beat is not None and beat >= since
    return False


class Stack:
    """One local stack, identified by its state directory."""

    def __init__(
        self,
        state_dir: Path,
        *,
        start_node: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        log: Callable[[str], None] = _stderr,
        node: str = "process",
        images: tuple[str, ...] = ("operator",),
    ) -> None:
        if node not in NODE_KINDS:
            raise StackError(f"node must be one of {', '.join(NODE_KINDS)}, not {node!r}")
        self.layout = StateLayout(Path(state_dir).absolute())
        self.start_node = start_node
        self.node = node
        # The images the real node imports at start (the runner's is 3 GB: on request).
        self.images = images
        self.timeout = timeout
        self._log = log

    # -- what a running stack offers ------------------------------------------------------

    @property
    def component_names(self) -> tuple[str, ...]:
        control_plane = tuple(n for n in COMPONENT_NAMES if n != NODE)
        if not self.start_node:
            return control_plane
        if self.node == "real":
            return (*control_plane, *realnode.COMPONENTS)
        return (*control_plane, NODE)

    def ports(self) -> dict[str, int]:
        try:
            data = json.loads(self.layout.ports_file.read_text())
        except FileNotFoundError:
            return {}
        return {str(k): int(v) for k, v in data.items()}

    @property
    def kubeconfig(self) -> Path:
        return self.layout.admin_kubeconfig

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self._port(APISERVER)}"

    @property
    def minio_endpoint(self) -> str:
        return f"127.0.0.1:{self._port(MINIO)}"

    @property
    def minio_credentials(self) -> minio_credentials.MinioCredentials:
        creds = minio_credentials.load(self.layout.minio_credentials)
        if creds is None:
            raise StackError(f"no stack has been started in {self.layout.root}")
        return creds

    def _port(self, name: str) -> int:
        port = self.ports().get(name)
        if port is None:
            raise StackError(f"no stack has been started in {self.layout.root}")
        return port

    def status(self) -> list[ComponentStatus]:
        known = self.ports()
        result = []
        shown = ALL_COMPONENTS if self.node == "real" else COMPONENT_NAMES
        for name in shown:
            record = read_pidfile(self.layout.pidfile(name))
            result.append(
                ComponentStatus(
                    name=name,
                    pid=record.pid if record else None,
                    alive=bool(record and is_alive(record)),
                    port=known.get(name),
                    log=self.layout.log(name),
                )
            )
        return result

    def is_running(self) -> bool:
        alive = {s.name for s in self.status() if s.alive}
        return all(n in alive for n in self.component_names)

    def env_lines(self) -> list[str]:
        creds = self.minio_credentials
        return env_lines(
            self.kubeconfig,
            self.layout.bin,
            self.minio_endpoint,
            creds.access_key,
            creds.secret_key,
        )

    # -- up and down ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One `up` or `down` at a time per state directory (two shells, parallel tests)."""
        self.layout.root.mkdir(parents=True, exist_ok=True)
        with self.layout.lock.open("w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def up(self) -> None:
        """Start every component and wait until all are healthy; a no-op when they are."""
        with self._locked():
            statuses = {s.name: s for s in self.status()}
            alive = [n for n in self.component_names if statuses[n].alive]
            if len(alive) == len(self.component_names):
                self._log(f"stack already running in {self.layout.root}")
                return
            if any(s.alive for s in statuses.values()):
                dead = [n for n in self.component_names if not statuses[n].alive]
                self._log(f"stack partly running (not running: {', '.join(dead)}); restarting")
            # Also clears PID files a crash or reboot left behind, which would otherwise
            # read as components that died during this start.
            self._stop_all()
            self._start()

    def down(self) -> list[str]:
        """Stop every process this state directory started; returns their names."""
        with self._locked():
            return self._stop_all()

    def _records(self) -> dict[str, ProcessRecord]:
        records = {}
        for name in ALL_COMPONENTS:
            record = read_pidfile(self.layout.pidfile(name))
            if record is not None:
                records[name] = record
        return records

    def _stop_all(self) -> list[str]:
        records = self._records()
        running = [n for n, r in records.items() if is_alive(r)]
        # An add-on started on this stack (Kueue, see recon_stack.kueue) goes first.
        for name in ADDONS:
            addon = read_pidfile(self.layout.pidfile(name))
            if addon is not None:
                if is_alive(addon):
                    running.append(name)
                stop([addon], COMPONENT_STOP_GRACE)
                self.layout.pidfile(name).unlink(missing_ok=True)
        # The real node next, whether or not this stack was started with it: a crashed
        # one's namespace, cgroups and sysctls are found from the machine.
        realnode.stop_node(self.layout, self._log)
        for name in realnode.COMPONENTS:
            records.pop(name, None)
        if NODE in records:
            stop([records.pop(NODE)], NODE_STOP_GRACE)
        stop([records[n] for n in reversed(COMPONENT_NAMES) if n in records], COMPONENT_STOP_GRACE)
        for name in ALL_COMPONENTS:
            self.layout.pidfile(name).unlink(missing_ok=True)
        return running

    def _start(self) -> None:
        started_at = time.monotonic()
        try:
            self._start_components()
        except BaseException as e:
            self._log("stopping what was started")
            self._stop_all()
            if isinstance(e, StackError | KeyboardInterrupt):
                raise
            raise StackError(f"starting the stack failed: {e}") from e
        self._log(f"stack up in {time.monotonic() - started_at:.1f}s ({self.layout.root})")

    def _start_components(self) -> None:
        layout = self.layout
        binaries = resolve_binaries(build=True, log=self._log)
        paths = pki.ensure_pki(layout.pki)
        minio_credentials.ensure(layout.minio_credentials)
        chosen = ports.pick_ports(components.PORT_NAMES, preferred=self.ports())
        layout.ports_file.write_text(json.dumps(chosen, indent=1) + "\n")
        self._write_kubeconfigs(paths, chosen[APISERVER])
        self._link_tools(binaries)
        images: list[image_build.BuiltImage] = []
        if self.start_node and self.node == "real":
            # Before the start-up deadline runs: a stale image takes minutes to rebuild.
            images.append(image_build.ensure_pause_image(self._log))
            specs = [spec for spec in image_build.IMAGES if spec.name in self.images]
            images += image_build.ensure_images(specs, self._log)
            # Before the API server: its egress selector file is among the node's configs.
            realnode.write_configs(layout, paths, images[0].ref)
        layout.etcd_data.mkdir(parents=True, exist_ok=True, mode=0o700)
        layout.minio_data.mkdir(parents=True, exist_ok=True)

        deadline = time.monotonic() + self.timeout
        node_since = dt.datetime.fromtimestamp(math.floor(time.time()), dt.UTC)

        def start(names: tuple[str, ...], wait_for: tuple[str, ...]) -> None:
            for name in names:
                self._spawn(self._component(name, binaries, paths, chosen))
            ready = {n: self._readiness(n, paths, chosen, node_since) for n in wait_for}
            self._wait(ready, deadline)

        start((ETCD, MINIO), (ETCD,))
        start((APISERVER,), (APISERVER,))
        if self.start_node and self.node == "real":
            start((CONTROLLER_MANAGER, SCHEDULER), (MINIO, CONTROLLER_MANAGER, SCHEDULER))
            self._start_real_node(binaries, paths, chosen, node_since, deadline, images)
            return
        rest = (CONTROLLER_MANAGER, SCHEDULER) + ((NODE,) if self.start_node else ())
        start(rest, (MINIO, *rest))

    def _start_real_node(
        self,
        binaries: Mapping[str, Path],
        paths: pki.PkiPaths,
        chosen: Mapping[str, int],
        node_since: dt.datetime,
        deadline: float,
        images: list[image_build.BuiltImage],
    ) -> None:

        layout = self.layout
        netns = realnode.prepare_host(layout)
        self._spawn(realnode.holder(layout, netns))
        holder_log = layout.log(realnode.HOLDER)
        self._wait(
            {realnode.HOLDER: lambda: realnode.log_says(holder_log, "holder ready")}, deadline
        )
        self._spawn(realnode.bridge(layout, Path(sys.executable), netns, chosen, APISERVER, MINIO))
        bridge_log = layout.log(realnode.BRIDGE)
        self._wait(
            {realnode.BRIDGE: lambda: realnode.log_says(bridge_log, "bridge ready")}, deadline
        )
        self._spawn(realnode.containerd(layout))
        self._wait({realnode.CONTAINERD: lambda: realnode.containerd_ready(layout)}, deadline)
        imported = time.monotonic()
        realnode.import_images(layout, images)
        self._log(f"imported {len(images)} images in {time.monotonic() - imported:.1f}s")
        self._spawn(realnode.kubelet(layout, binaries["kubelet"]))
        self._spawn(realnode.kube_proxy(layout, binaries["kube-proxy"]))
        self._wait({realnode.KUBELET: self._readiness(NODE, paths, chosen, node_since)}, deadline)
        admin = probes.client_context(paths.ca_cert, paths.cert("admin"), paths.key("admin"))
        realnode.publish(f"https://127.0.0.1:{chosen[APISERVER]}", admin, chosen[MINIO])

    def _component(
        self,
        name: str,
        binaries: Mapping[str, Path],
        paths: pki.PkiPaths,
        chosen: Mapping[str, int],
    ) -> Component:
        layout = self.layout
        if name == ETCD:
            return components.etcd(binaries["etcd"], layout, chosen)
        if name == MINIO:
            creds = self.minio_credentials
            return components.minio(
                binaries["minio"], layout, chosen, creds.access_key, creds.secret_key
            )
        real = self.start_node and self.node == "real"
        if name == APISERVER:
            flags = realnode.apiserver_flags(layout, paths) if real else ()
            return components.kube_apiserver(
                binaries["kube-apiserver"], layout, paths, chosen, flags
            )
        if name == CONTROLLER_MANAGER:
            binary = binaries["kube-controller-manager"]
            extra = realnode.CONTROLLERS if real else ()
            return components.kube_controller_manager(binary, layout, paths, chosen, extra)
        if name == SCHEDULER:
            return components.kube_scheduler(binaries["kube-scheduler"], layout, chosen)
        if name == NODE:
            return components.process_node(Path(sys.executable), layout)
        raise StackError(f"unknown component {name!r}; known: {', '.join(COMPONENT_NAMES)}")

    def _readiness(
        self, name: str, paths: pki.PkiPaths, chosen: Mapping[str, int], since: dt.datetime
    ) -> Callable[[], bool]:
        """The check that says ``name`` is ready; the node counts only with a heartbeat at or
        after ``since``."""
        server = f"https://127.0.0.1:{chosen[APISERVER]}"
        admin = probes.client_context(paths.ca_cert, paths.cert("admin"), paths.key("admin"))
        insecure = probes.self_signed_context()

        def controller_manager_ready() -> bool:
            # Healthy, and its serviceaccount controller has done its first job: pods can
            # be created in the default namespace.
            return probes.http_ok(
                f"https://127.0.0.1:{chosen[CONTROLLER_MANAGER]}/healthz", insecure
            ) and (
                probes.get_json(
                    f"{server}/api/v1/namespaces/default/serviceaccounts/default", admin
                )
                is not None
            )

        checks: dict[str, Callable[[], bool]] = {
            ETCD: lambda: probes.http_ok(f"http://127.0.0.1:{chosen[ETCD]}/health"),
            MINIO: lambda: probes.http_ok(f"http://127.0.0.1:{chosen[MINIO]}/minio/health/live"),
            APISERVER: lambda: probes.http_ok(f"{server}/readyz", admin),
            CONTROLLER_MANAGER: controller_manager_ready,
            SCHEDULER: lambda: probes.http_ok(
                f"https://127.0.0.1:{chosen[SCHEDULER]}/healthz", insecure
            ),
            NODE: lambda: node_ready_since(
                probes.get_json(f"{server}/api/v1/nodes/{NODE_NAME}", admin), since
            ),
        }
        return checks[name]

    # -- one component at a time: outages, for fault tests ---------------------------------

    def stop_component(self, name: str) -> bool:
        """Stop one component of the stack (SIGTERM, SIGKILL after the grace period), as an
        outage would; the others keep running. Returns whether it was running."""
        if name not in COMPONENT_NAMES:
            raise StackError(f"unknown component {name!r}; known: {', '.join(COMPONENT_NAMES)}")
        with self._locked():
            record = read_pidfile(self.layout.pidfile(name))
            running = record is not None and is_alive(record)
            self._stop_one(name)
            return running

    def start_component(self, name: str) -> None:
        """Start one stopped component again, on the ports and with the certificates and data
        the stack already has, and wait until it is ready; a no-op when it runs."""
        with self._locked():
            record = read_pidfile(self.layout.pidfile(name))
            if record is not None and is_alive(record):
                return
            chosen = self.ports()
            if not chosen:
                raise StackError(f"no stack has been started in {self.layout.root}")
            binaries = resolve_binaries(build=False, log=self._log)
            paths = pki.ensure_pki(self.layout.pki)
            since = dt.datetime.fromtimestamp(math.floor(time.time()), dt.UTC)
            component = self._component(name, binaries, paths, chosen)
            self._spawn(component)
            try:
                self._wait(
                    {name: self._readiness(name, paths, chosen, since)},
                    time.monotonic() + self.timeout,
                )
            except BaseException:
                self._stop_one(name)
                raise

    def _stop_one(self, name: str) -> None:
        record = read_pidfile(self.layout.pidfile(name))
        if record is not None:
            stop([record], NODE_STOP_GRACE if name == NODE else COMPONENT_STOP_GRACE)
        self.layout.pidfile(name).unlink(missing_ok=True)

    def _spawn(self, component: Component) -> None:
        self._log(f"starting {component.name}")
        env: Mapping[str, str] | None = component.env or None
        spawn(
            component.argv,
            self.layout.log(component.name),
            self.layout.pidfile(component.name),
            env=env,
            cwd=self.layout.root,
        )

    def _wait(self, checks: Mapping[str, Callable[[], bool]], deadline: float) -> None:
        """Poll until every check passes; fail fast when any started process has exited."""
        pending = dict(checks)
        while pending:
            for name, record in self._records().items():
                if not is_alive(record):
                    raise StackError(
                        f"{name} exited during start-up. Its log, "
                        f"{self.layout.log(name)}, ends with:\n{log_tail(self.layout.log(name))}"
                    )
            for name, check in list(pending.items()):
                if check():
                    del pending[name]
            if not pending:
                return
            if time.monotonic() > deadline:
                name = next(iter(pending))
                raise StackError(
                    f"{name} did not become ready within {self.timeout:.0f}s. Its log, "
                    f"{self.layout.log(name)}, ends with:\n{log_tail(self.layout.log(name))}"
                )
            time.sleep(0.1)

    def _write_kubeconfigs(self, paths: pki.PkiPaths, apiserver_port: int) -> None:
        server = f"https://127.0.0.1:{apiserver_port}"
        ca = paths.ca_cert.read_bytes()
        targets = {
            "admin": self.layout.admin_kubeconfig,
            "controller-manager": self.layout.component_kubeconfig("controller-manager"),
            "scheduler": self.layout.component_kubeconfig("scheduler"),
            "kubelet": self.layout.component_kubeconfig("kubelet"),
            "kube-proxy": self.layout.component_kubeconfig("kube-proxy"),
        }
        in_netns = f"https://{realnode.addresses.NODE_IP}:{apiserver_port}"
        for ident in pki.CLIENT_IDENTITIES:
            if ident.file_stem not in targets:
                continue  # a certificate only, no kubeconfig
            config = kubeconfig.cert_kubeconfig(
                in_netns if ident.file_stem in ("kubelet", "kube-proxy") else server,
                ca,
                ident.user,
                paths.cert(ident.file_stem).read_bytes(),
                paths.key(ident.file_stem).read_bytes(),
            )
            kubeconfig.write(targets[ident.file_stem], config)

    def _link_tools(self, binaries: Mapping[str, Path]) -> None:
        """Put the stack's kubectl and helm in one directory for the user's PATH."""
        self.layout.bin.mkdir(parents=True, exist_ok=True)
        for tool in ("kubectl", "helm"):
            link = self.layout.bin / tool
            tmp = link.with_name(f".{tool}.tmp")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(binaries[tool].absolute())
            os.replace(tmp, link)

    def purge(self) -> None:
        """Remove the state directory of a stopped stack (data, certificates, logs)."""
        if any(s.alive for s in self.status()):
            raise StackError(f"the stack in {self.layout.root} is running; run down first")
        shutil.rmtree(self.layout.root, ignore_errors=True)
