"""One pod's life on the node: start its containers, follow them, report, stop, remove.

Each pod gets one thread that owns its state and is the only writer of its status, fed
through an inbox: new versions of the pod from the watch, process exits from one small
waiter thread per process, and restart timers. Nothing polls. Once the pod has ended and
its final status is posted the thread exits; removing the object after a later deletion
is done by whoever delivers that deletion.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import shutil
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from recon_stack import kubeconfig
from recon_stack.node.envresolve import EnvConfigError
from recon_stack.node.images import ImageTableError, ImageTableSource, NoCommandError
from recon_stack.node.kubeapi import NodeApi
from recon_stack.node.launch import PodDirs, launch_spec
from recon_stack.node.podrun import ContainerProcess, StartError, stop_all
from recon_stack.node.status import (
    START_ERROR_EXIT_CODE,
    START_ERROR_REASON,
    ContainerState,
    Termination,
    exit_code_of,
    pod_phase,
    pod_status,
    terminated,
)
from recon_stack.node.timestamps import rfc3339, utcnow

log = logging.getLogger(__name__)

Json = dict[str, Any]

TERMINAL_PHASES = ("Succeeded", "Failed")
# Restart and config-retry back-off: short, because pods here are tests and demos.
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
STATUS_RETRIES = 12
# How long a killed process may take to be reaped after SIGKILL before it is given up on.
KILL_REAP_SECONDS = 5.0


@dataclass(frozen=True)
class PodChanged:
    """The watch delivered a newer version of the pod (``PodWorker.pod``)."""


@dataclass(frozen=True)
class ObjectGone:
    """The pod object was removed from the API."""


@dataclass(frozen=True)
class Exited:
    name: str
    process: ContainerProcess
    returncode: int


@dataclass(frozen=True)
class StartDue:
    """A container's restart or config-retry back-off is over."""

    name: str


Message = PodChanged | ObjectGone | Exited | StartDue


@dataclass(frozen=True)
class NodeContext:
    """What every pod worker shares: the API, the image table, where files go."""

    api: NodeApi
    images: ImageTableSource
    pods_root: Path
    parent_env: Mapping[str, str]
    venv_bin: str
    node_ip: str = "127.0.0.1"
    gpu_resource: str = "nvidia.com/gpu"


def is_deleting(pod: Mapping[str, Any]) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def grace_seconds(pod: Mapping[str, Any]) -> float:
    """The grace period of a deletion: the one the delete asked for, else the spec's."""
    meta = pod.get("metadata") or {}
    grace = meta.get("deletionGracePeriodSeconds")
    if grace is None:
        grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
    return float(30 if grace is None else grace)


def backoff(attempt: int) -> float:
    return min(BACKOFF_FIRST_SECONDS * 2**attempt, BACKOFF_MAX_SECONDS)


def remove_pod_files(dirs: PodDirs) -> None:
    """Free a deleted pod's scratch space; its container logs are kept for inspection."""
    for path in (dirs.volumes, dirs.work):
        shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        dirs.kubeconfig.unlink()


class PodWorker:
    def __init__(self, pod: Json, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.pod = pod
        meta = pod["metadata"]
        self.namespace = str(meta["namespace"])
        self.name = str(meta["name"])
        self.uid = str(meta["uid"])
        self.dirs = PodDirs.for_pod(ctx.pods_root, pod)
        spec = pod.get("spec") or {}
        self.restart_policy = str(spec.get("restartPolicy") or "Always")
        self.init_specs: list[Json] = list(spec.get("initContainers") or [])
        self.main_specs: list[Json] = list(spec.get("containers") or [])
        self.init_names = [str(c["name"]) for c in self.init_specs]
        self.states: dict[str, ContainerState] = {}
        for c in self.init_specs:
            self.states[c["name"]] = ContainerState(c["name"], str(c.get("image") or ""))
        waiting = "PodInitializing" if self.init_specs else "ContainerCreating"
        for c in self.main_specs:
            self.states[c["name"]] = ContainerState(
                c["name"], str(c.get("image") or ""), waiting_reason=waiting
            )
        self.processes: dict[str, ContainerProcess] = {}
        self.config_attempts: dict[str, int] = {}
        self.init_index = 0
        self.start_time = str((pod.get("status") or {}).get("startTime") or rfc3339(utcnow()))
        self.inbox: queue.Queue[Message] = queue.Queue()
        self._lock = threading.Lock()
        self.finished = False
        self.removed = False
        self.gone = False
        self.thread = threading.Thread(
            target=self._run, name=f"pod {self.namespace}/{self.name}", daemon=True
        )

    # Called from other threads

    def start(self) -> None:
        self.thread.start()

    def update(self, pod: Json) -> None:
        """A newer version of the pod from the watch."""
        with self._lock:
            self.pod = pod
            if not self.finished:
                self.inbox.put(PodChanged())
                return
        if is_deleting(pod):
            self.remove()

    def object_deleted(self) -> None:
        """The pod object is gone from the API: stop at once, nothing left to report to."""
        with self._lock:
            self.gone = True
            finished = self.finished
        if finished:
            self.remove()
        else:
            self.inbox.put(ObjectGone())

    def may_write_log(self, container: str) -> bool:
        """True while the container runs or may (re)start, so its log may still grow."""
        if self.finished or self.gone:
            return False
        state = self.states.get(container)
        return state is not None and state.termination is None

    def running_processes(self) -> list[ContainerProcess]:
        return list(self.processes.values())

    def remove(self) -> None:
        """Delete the pod object (its containers are gone) and free its files; idempotent."""
        with self._lock:
            if self.removed:
                return
            self.removed = True
        if not self.gone:
            try:
                self.ctx.api.delete_pod_now(self.namespace, self.name, self.uid)
            except (ApiException, HTTPError, OSError) as e:
                log.warning("deleting pod %s/%s failed: %s", self.namespace, self.name, e)
        remove_pod_files(self.dirs)

    # The pod's own thread

    def _run(self) -> None:
        try:
            self._lifecycle()
        except Exception:
            log.exception("pod %s/%s: worker failed", self.namespace, self.name)
            stop_all(self.running_processes(), 0)
        with self._lock:
            self.finished = True
            deleting = is_deleting(self.pod)
        if deleting or self.gone:
            self.remove()

    def _lifecycle(self) -> None:
        self._report()
        if self._stopping():
            self._terminate()
            return
        self._start_next()
        self._report()
        while not self._ended():
            message = self.inbox.get()
            if self._handle(message):
                self._report()
            if self._stopping():
                self._terminate()
                return

    def _stopping(self) -> bool:
        return self.gone or is_deleting(self.pod)

    def _ended(self) -> bool:
        init = [self.states[n] for n in self.init_names]
        main = [self.states[str(c["name"])] for c in self.main_specs]
        return pod_phase(init, main, self.restart_policy) in TERMINAL_PHASES

    def _handle(self, message: Message) -> bool:
        """Apply one inbox message; True when a container's state changed."""
        if isinstance(message, Exited):
            if self.processes.get(message.name) is not message.process:
                return False
            del self.processes[message.name]
            code = exit_code_of(message.returncode)
            started = rfc3339(message.process.started_at)
            self._on_exit(message.name, terminated(code, started, rfc3339(utcnow())))
            return True
        if isinstance(message, StartDue):
            if message.name in self.processes or self._stopping():
                return False
            self._start(self._spec(message.name))
            return True
        return False

    def _spec(self, name: str) -> Json:
        return next(c for c in (*self.init_specs, *self.main_specs) if c["name"] == name)

    def _start_next(self) -> None:
        if self.init_index < len(self.init_specs):
            self._start(self.init_specs[self.init_index])
            return
        for c in self.main_specs:
            if self.states[c["name"]].waiting_reason in ("PodInitializing", "ContainerCreating"):
                self._start(c)

    def _start(self, container: Json) -> None:
        name = str(container["name"])
        state = self.states[name]
        try:
            self._ensure_kubeconfig()
            spec = launch_spec(
                self.pod,
                container,
                table=self.ctx.images.current(),
                secrets=self.ctx.api.secret_data,
                config_maps=self.ctx.api.config_map_data,
                dirs=self.dirs,
                parent_env=self.ctx.parent_env,
                venv_bin=self.ctx.venv_bin,
                node_ip=self.ctx.node_ip,
                gpu_resource=self.ctx.gpu_resource,
            )
        except (EnvConfigError, ApiException, HTTPError, OSError) as e:
            # Missing Secrets or ConfigMaps may appear later: wait and retry, as a kubelet.
            attempt = self.config_attempts.get(name, 0)
            self.config_attempts[name] = attempt + 1
            message = str(e) if isinstance(e, EnvConfigError) else f"preparing container: {e}"
            self.states[name] = replace(
                state, waiting_reason=EnvConfigError.reason, waiting_message=message
            )
            self._later(backoff(attempt), StartDue(name))
            return
        except (NoCommandError, ImageTableError) as e:
            self._on_exit(name, self._start_failure(str(e)))
            return
        try:
            proc = ContainerProcess.start(spec)
        except StartError as e:
            self._on_exit(name, self._start_failure(str(e)))
            return
        self.config_attempts.pop(name, None)
        restarts = state.restart_count + (1 if state.last_termination is not None else 0)
        self.states[name] = ContainerState(
            name,
            state.image,
            running_since=rfc3339(proc.started_at),
            restart_count=restarts,
            last_termination=state.last_termination,
            container_id=f"process://{proc.pid}",
        )
        self.processes[name] = proc
        threading.Thread(
            target=self._await_exit, args=(name, proc), name=f"wait {proc.pid}", daemon=True
        ).start()

    def _start_failure(self, message: str) -> Termination:
        now = rfc3339(utcnow())
        return Termination(START_ERROR_EXIT_CODE, START_ERROR_REASON, now, now, message)

    def _await_exit(self, name: str, proc: ContainerProcess) -> None:
        self.inbox.put(Exited(name, proc, proc.wait()))

    def _later(self, delay: float, message: Message) -> None:
        timer = threading.Timer(delay, self.inbox.put, args=(message,))
        timer.daemon = True
        timer.start()

    def _on_exit(self, name: str, termination: Termination) -> None:
        state = self.states[name]
        is_init = name in self.init_names
        failed = termination.exit_code != 0
        restart = not self._stopping() and (
            (self.restart_policy == "Always" and not is_init)
            or (self.restart_policy != "Never" and failed)
        )
        if restart:
            attempt = state.restart_count
            self.states[name] = replace(
                state,
                running_since=None,
                termination=None,
                waiting_reason="CrashLoopBackOff",
                waiting_message=f"back-off restarting failed container {name}",
                last_termination=termination,
                container_id="",
            )
            self._later(backoff(attempt), StartDue(name))
            return
        self.states[name] = replace(state, running_since=None, termination=termination)
        if is_init and not failed:
            self.init_index += 1
            self._start_next()

    def _ensure_kubeconfig(self) -> None:
        if not self.dirs.kubeconfig.exists():
            config = self.ctx.api.pod_kubeconfig(self.pod)
            kubeconfig.write(self.dirs.kubeconfig, config)

    def _terminate(self) -> None:
        """Stop the pod's processes as a deletion asks, report, and remove the object."""
        grace = 0.0 if self.gone else grace_seconds(self.pod)
        for proc in self.processes.values():
            proc.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        killed = False
        while self.processes:
            remaining = deadline - time.monotonic()
            if remaining <= 0 and not killed:
                for proc in self.processes.values():
                    proc.signal_group(signal.SIGKILL)
                killed = True
                deadline = time.monotonic() + KILL_REAP_SECONDS
                continue
            if remaining <= 0:
                log.error("pod %s/%s: processes survived SIGKILL", self.namespace, self.name)
                break
            try:
                message = self.inbox.get(timeout=remaining)
            except queue.Empty:
                continue
            if isinstance(message, Exited):
                self._handle(message)
        for name, state in self.states.items():
            if state.is_waiting and state.last_termination is not None:
                # Backing off before a restart: it ends as its last run ended.
                self.states[name] = replace(state, termination=state.last_termination)
        if not self.gone:
            self._report(restart_policy="Never")

    def _report(self, restart_policy: str | None = None) -> None:
        if self.gone:
            return
        init = [self.states[n] for n in self.init_names]
        main = [self.states[str(c["name"])] for c in self.main_specs]
        now = rfc3339(utcnow())
        with self._lock:
            pod = self.pod
        status = pod_status(pod, init, main, self.start_time, now, self.ctx.node_ip, restart_policy)
        updated = self._patch_status(status)
        if updated is not None and updated.get("metadata", {}).get("uid") == self.uid:
            with self._lock:
                self.pod = updated

    def _patch_status(self, status: Json) -> Json | None:
        """Post a status, retrying while the API server is unreachable or overloaded.

        A lost final status would leave a finished pod Running for good, so transient
        failures are retried (for a few minutes); a rejected status is logged, not retried.
        """
        for attempt in range(STATUS_RETRIES):
            try:
                return self.ctx.api.patch_pod_status(self.namespace, self.name, status)
            except ApiException as e:
                if e.status == 404:
                    self.gone = True
                    return None
                if e.status is not None and e.status < 500 and e.status != 429:
                    log.error("pod %s/%s: status rejected: %s", self.namespace, self.name, e)
                    return None
                error: Exception = e
            except (HTTPError, OSError) as e:
                error = e
            log.warning("pod %s/%s: status update failed: %s", self.namespace, self.name, error)
            time.sleep(backoff(attempt))
        return None
