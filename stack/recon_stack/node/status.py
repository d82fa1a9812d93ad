"""Pod status as a kubelet reports it, built from what the node knows about its processes.

Pure: container states in, the ``status`` body of a pods/status patch out. The Job
controller, ``kubectl wait`` and pod failure policies read exactly these fields (phase,
``state.terminated.exitCode``, reasons, conditions), so they follow the kubelet's rules:
a process killed by signal N exits 128+N, exit 0 is ``Completed`` and anything else
``Error``, and the phase comes from the containers' states and the restart policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Json = Mapping[str, Any]

# Exit code and reason a container runtime reports when the process could not be started.
START_ERROR_EXIT_CODE = 128
START_ERROR_REASON = "StartError"


def exit_code_of(returncode: int) -> int:
    """A process's wait status as a container's exit code: killed by signal N -> 128+N."""
    return 128 - returncode if returncode < 0 else returncode


def termination_reason(exit_code: int) -> str:
    return "Completed" if exit_code == 0 else "Error"


@dataclass(frozen=True)
class Termination:
    exit_code: int
    reason: str
    started_at: str
    finished_at: str
    message: str = ""

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "exitCode": self.exit_code,
            "reason": self.reason,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
        }
        if self.message:
            body["message"] = self.message
        return body


def terminated(exit_code: int, started_at: str, finished_at: str, message: str = "") -> Termination:
    return Termination(exit_code, termination_reason(exit_code), started_at, finished_at, message)


@dataclass(frozen=True)
class ContainerState:
    """One container as the node sees it: waiting, running since a time, or terminated."""

    name: str
    image: str
    running_since: str | None = None
    termination: Termination | None = None
    waiting_reason: str = "ContainerCreating"
    waiting_message: str = ""
    restart_count: int = 0
    last_termination: Termination | None = None
    container_id: str = ""

    @property
    def is_running(self) -> bool:
        return self.termination is None and self.running_since is not None

    @property
    def is_waiting(self) -> bool:
        return self.termination is None and self.running_since is None

    @property
    def succeeded(self) -> bool:
        return self.termination is not None and self.termination.exit_code == 0

    def as_json(self) -> dict[str, Any]:
        if self.termination is not None:
            state: dict[str, Any] = {"terminated": self.termination.as_json()}
        elif self.running_since is not None:
            state = {"running": {"startedAt": self.running_since}}
        else:
            waiting: dict[str, Any] = {"reason": self.waiting_reason}
            if self.waiting_message:
                waiting["message"] = self.waiting_message
            state = {"waiting": waiting}
        last = {"terminated": self.last_termination.as_json()} if self.last_termination else {}
        body: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "state": state,
            "lastState": last,
            "ready": self.is_running,
            "started": self.is_running,
            "restartCount": self.restart_count,
        }
        if self.container_id:
            body["containerID"] = self.container_id
        return body


def pod_phase(
    init: Sequence[ContainerState], main: Sequence[ContainerState], restart_policy: str
) -> str:
    """The pod phase by the kubelet's rules (``getPhase``), without unknown states."""
    for c in init:
        if c.succeeded:
            continue
        if c.termination is not None and restart_policy == "Never":
            return "Failed"
        return "Pending"
    running = sum(c.is_running for c in main)
    waiting = sum(c.is_waiting and c.last_termination is None for c in main)
    stopped = sum(c.termination is not None or c.last_termination is not None for c in main)
    succeeded = sum(c.succeeded for c in main)
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _condition(
    kind: str,
    ok: bool,
    now: str,
    previous: Mapping[str, Json],
    reason: str = "",
    message: str = "",
) -> dict[str, Any]:
    status = "True" if ok else "False"
    before = previous.get(kind)
    changed = before is None or before.get("status") != status
    since = now if changed or before is None else before.get("lastTransitionTime") or now
    # Reason and message are always present, null when cleared: the patch merges
    # conditions by type, so an omitted key would keep a stale reason from before.
    return {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": since,
        "reason": reason if reason and not ok else None,
        "message": message if message and not ok else None,
    }


def pod_conditions(
    phase: str,
    init: Sequence[ContainerState],
    main: Sequence[ContainerState],
    previous: Sequence[Json],
    now: str,
) -> list[dict[str, Any]]:
    """Initialized, ContainersReady, Ready and PodReadyToStartContainers.

    PodScheduled belongs to the scheduler and is left alone (the patch merges conditions
    by type); a transition time moves only when a condition's status changes.
    """
    before = {str(c.get("type")): c for c in previous}
    terminal = phase in ("Succeeded", "Failed")
    incomplete = [c.name for c in init if not c.succeeded]
    unready = [c.name for c in main if not c.is_running]
    ready = not terminal and not incomplete and not unready
    if terminal:
        ready_reason, ready_message = "PodCompleted", ""
    else:
        ready_reason = "ContainersNotReady"
        ready_message = f"containers with unready status: [{' '.join(unready)}]"
    return [
        _condition("PodReadyToStartContainers", not terminal, now, before),
        _condition(
            "Initialized",
            not incomplete,
            now,
            before,
            "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(incomplete)}]",
        ),
        _condition("ContainersReady", ready, now, before, ready_reason, ready_message),
        _condition("Ready", ready, now, before, ready_reason, ready_message),
    ]


def pod_status(
    pod: Json,
    init: Sequence[ContainerState],
    main: Sequence[ContainerState],
    start_time: str,
    now: str,
    node_ip: str = "127.0.0.1",
    restart_policy: str | None = None,
) -> dict[str, Any]:
    """The ``status`` body of a pods/status patch for this pod's current states.

    ``restart_policy`` overrides the spec's: a pod stopped for deletion will not restart,
    so its phase is final whatever its policy says.
    """
    spec = pod.get("spec") or {}
    previous = (pod.get("status") or {}).get("conditions") or []
    policy = restart_policy or str(spec.get("restartPolicy") or "Always")
    phase = pod_phase(init, main, policy)
    status: dict[str, Any] = {
        "phase": phase,
        "hostIP": node_ip,
        "hostIPs": [{"ip": node_ip}],
        "podIP": node_ip,
        "podIPs": [{"ip": node_ip}],
        "startTime": start_time,
        "conditions": pod_conditions(phase, init, main, previous, now),
        "containerStatuses": [c.as_json() for c in main],
    }
    if init:
        status["initContainerStatuses"] = [c.as_json() for c in init]
    return status


LOST_EXIT_CODE = 137
LOST_REASON = "ContainerStatusUnknown"


def lost_states(pod: Json, now: str) -> tuple[list[ContainerState], list[ContainerState]]:
    """Container states of a pod whose processes vanished with an earlier run of the node.

    The node kills its processes when it stops, so a container recorded as running has no
    process any more. It is reported terminated the way a kubelet reports a container it
    cannot find (exit code 137, ``ContainerStatusUnknown``); finished ones keep their
    recorded termination.
    """
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}

    def states(specs_key: str, statuses_key: str) -> list[ContainerState]:
        recorded = {str(s.get("name")): s for s in status.get(statuses_key) or []}
        out = []
        for container in spec.get(specs_key) or []:
            name = str(container["name"])
            image = str(container.get("image") or "")
            state = (recorded.get(name) or {}).get("state") or {}
            if "terminated" in state:
                t = state["terminated"]
                termination = Termination(
                    int(t.get("exitCode", 0)),
                    str(t.get("reason") or termination_reason(int(t.get("exitCode", 0)))),
                    str(t.get("startedAt") or now),
                    str(t.get("finishedAt") or now),
                    str(t.get("message") or ""),
                )
                out.append(ContainerState(name, image, termination=termination))
            elif "running" in state:
                started = str(state["running"].get("startedAt") or now)
                message = "The container could not be located: the process node restarted"
                termination = Termination(LOST_EXIT_CODE, LOST_REASON, started, now, message)
                out.append(ContainerState(name, image, termination=termination))
            else:
                out.append(ContainerState(name, image))
        return out

    return states("initContainers", "initContainerStatuses"), states(
        "containers", "containerStatuses"
    )


def has_started(pod: Json) -> bool:
    """True when the node reported any container of the pod as started."""
    status = pod.get("status") or {}
    for key in ("initContainerStatuses", "containerStatuses"):
        for s in status.get(key) or []:
            state = s.get("state") or {}
            if "running" in state or "terminated" in state:
                return True
    return False
