"""Watching a queue drain from the outside: consistent snapshots of every ReconJob in a
namespace (one LIST each, so one etcd revision), checked as they come in.

What is checked, from the snapshots alone:
  - no two Queued jobs show the same exact queuePosition (1 to `queue.EXACT`; further back
    a position is an upper bound, which two jobs may share);
  - never more jobs Running than run slots;
  - admission order: a job admitted between two snapshots must not have jumped a job that
    was Queued before and still is after, and comes first by priority, then creation
    time (creation timestamps have one-second resolution: jobs created in the same second
    are not ordered against each other here);
  - nothing lost: a job once seen never disappears, and no phase goes backwards.

Used by the load test and by `benchmarks/operator_scale.py load`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config
from recon_operator.queue import EXACT

TERMINAL = frozenset({"Succeeded", "Failed", "Cancelled"})
PHASE_RANK = {
    None: 0,
    "Pending": 1,
    "Validating": 2,
    "Queued": 3,
    "Running": 4,
    "Succeeded": 5,
    "Failed": 5,
    "Cancelled": 5,
}


@dataclass(frozen=True)
class Job:
    name: str
    priority: int
    created: str  # RFC 3339, UTC, one-second resolution: sorts as text
    phase: str | None
    position: int | None


@dataclass(frozen=True)
class Snapshot:
    at: float
    jobs: Mapping[str, Job]


def precedes(a: Job, b: Job) -> bool:
    """`a` must be admitted before `b` (strictly: same-second creations are not ordered)."""
    if a.priority != b.priority:
        return a.priority > b.priority
    return a.created < b.created


def parse(items: Sequence[Mapping[str, Any]], at: float) -> Snapshot:
    jobs = {}
    for item in items:
        status = item.get("status") or {}
        meta = item["metadata"]
        jobs[meta["name"]] = Job(
            name=meta["name"],
            priority=int((item.get("spec") or {}).get("priority", 0)),
            created=meta["creationTimestamp"],
            phase=status.get("phase"),
            position=status.get("queuePosition"),
        )
    return Snapshot(at, jobs)


@dataclass
class Findings:
    snapshots: int = 0
    max_running: int = 0
    max_queued: int = 0
    queued_seen: int = 0  # queued jobs, summed over the snapshots
    positions_seen: int = 0
    admissions_checked: int = 0
    duplicate_positions: list[str] = field(default_factory=list)
    over_capacity: list[str] = field(default_factory=list)
    order_violations: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    went_back: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return [
            *self.duplicate_positions,
            *self.over_capacity,
            *self.order_violations,
            *self.lost,
            *self.went_back,
        ]


class QueueChecker:
    """Feed snapshots in time order; findings accumulate (only three snapshots are kept)."""

    def __init__(self, max_running: int) -> None:
        self.max_running = max_running
        self.findings = Findings()
        self._recent: list[Snapshot] = []

    def add(self, snap: Snapshot) -> None:
        f = self.findings
        f.snapshots += 1
        queued = [j for j in snap.jobs.values() if j.phase == "Queued"]
        running = sum(1 for j in snap.jobs.values() if j.phase == "Running")
        f.max_running = max(f.max_running, running)
        f.max_queued = max(f.max_queued, len(queued))
        f.queued_seen += len(queued)
        if running > self.max_running:
            f.over_capacity.append(f"{running} Running at t={snap.at:.1f}")
        holders: dict[int, str] = {}
        for job in queued:
            if job.position is None:
                continue
            f.positions_seen += 1
            if job.position > EXACT:
                continue
            other = holders.setdefault(job.position, job.name)
            if other != job.name:
                f.duplicate_positions.append(
                    f"{other} and {job.name} both at queuePosition {job.position} "
                    f"at t={snap.at:.1f}"
                )
        if self._recent:
            self._compare(self._recent[-1], snap)
        self._recent = [*self._recent[-2:], snap]
        if len(self._recent) == 3:
            self._check_admissions(*self._recent)

    def _compare(self, before: Snapshot, after: Snapshot) -> None:
        for name, old in before.jobs.items():
            new = after.jobs.get(name)
            if new is None:
                self.findings.lost.append(f"{name} ({old.phase}) gone at t={after.at:.1f}")
            elif PHASE_RANK[new.phase] < PHASE_RANK[old.phase]:
                self.findings.went_back.append(
                    f"{name}: {old.phase} -> {new.phase} at t={after.at:.1f}"
                )

    def _check_admissions(self, earlier: Snapshot, before: Snapshot, after: Snapshot) -> None:
        """Jobs admitted between `before` and `after`, against jobs Queued in all three
        (so Queued well before the admission was decided, and still waiting after it)."""
        admitted = [
            j
            for name, j in before.jobs.items()
            if j.phase == "Queued"
            and (after.jobs.get(name) and after.jobs[name].phase in ("Running", "Succeeded"))
        ]
        waiting = [
            j
            for name, j in before.jobs.items()
            if j.phase == "Queued"
            and getattr(earlier.jobs.get(name), "phase", None) == "Queued"
            and getattr(after.jobs.get(name), "phase", None) == "Queued"
        ]
        for job in admitted:
            self.findings.admissions_checked += 1
            jumped = [w.name for w in waiting if precedes(w, job)]
            if jumped:
                self.findings.order_violations.append(
                    f"{job.name} (priority {job.priority}, created {job.created}) admitted "
                    f"at t={after.at:.1f} ahead of waiting {', '.join(sorted(jumped)[:5])}"
                )


def api_client(kubeconfig: Path) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(str(kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


def snapshot(api: client.ApiClient, namespace: str) -> Snapshot:
    response: Any = client.CustomObjectsApi(api).list_namespaced_custom_object(
        "recon.dev", "v1alpha1", namespace, "reconjobs", _preload_content=False
    )
    return parse(json.loads(response.data)["items"], time.monotonic())


class QueueObserver:
    """Snapshots every `interval` seconds in a thread, checked as they arrive."""

    def __init__(
        self, kubeconfig: Path, namespace: str, max_running: int, interval: float = 0.5
    ) -> None:
        self.api = api_client(kubeconfig)
        self.namespace = namespace
        self.interval = interval
        self.checker = QueueChecker(max_running)
        self.latest: Snapshot | None = None
        # Failed snapshots, kept: a run whose snapshots failed checked nothing in between.
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                snap = snapshot(self.api, self.namespace)
            except Exception as e:
                self.errors.append(f"{type(e).__name__}: {e}"[:300])
            else:
                self.checker.add(snap)
                self.latest = snap
            self._stop.wait(self.interval)

    def __enter__(self) -> QueueObserver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def findings(self) -> Findings:
        return self.checker.findings

    def phases(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for job in (self.latest.jobs if self.latest else {}).values():
            counts[job.phase or "-"] = counts.get(job.phase or "-", 0) + 1
        return counts

    def all_terminal(self, expected: int) -> bool:
        snap = self.latest
        return (
            snap is not None
            and len(snap.jobs) == expected
            and all(j.phase in TERMINAL for j in snap.jobs.values())
        )


class QueueWatch:
    """Every change of every ReconJob in a namespace, in the API server's order, from one
    watch: each state in between is one the API server really held, so checks on it see
    every moment, not samples. Wait on it for a state (`wait`) instead of polling."""

    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        self.api = api_client(kubeconfig)
        self.namespace = namespace
        self.jobs: dict[str, Job] = {}
        self.states = 0
        self.max_running = 0
        # every position each job showed, in order (repeats left out)
        self.positions: dict[str, list[int]] = {}
        self.duplicate_positions: list[str] = []
        self.errors: list[str] = []
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from kubernetes import watch

        objects = client.CustomObjectsApi(self.api)
        version = ""
        while not self._stop.is_set():
            try:
                if not version:
                    listed: Any = objects.list_namespaced_custom_object(
                        "recon.dev", "v1alpha1", self.namespace, "reconjobs"
                    )
                    version = listed["metadata"]["resourceVersion"]
                    for item in listed["items"]:
                        self._see("ADDED", item)
                for event in watch.Watch().stream(
                    objects.list_namespaced_custom_object,
                    "recon.dev",
                    "v1alpha1",
                    self.namespace,
                    "reconjobs",
                    resource_version=version,
                    timeout_seconds=5,
                ):
                    version = event["object"]["metadata"]["resourceVersion"]
                    self._see(event["type"], event["object"])
                    if self._stop.is_set():
                        return
            except Exception as e:
                # An expired watch (410) starts over from a fresh listing; recorded, so a
                # test can tell a gap from a quiet queue.
                self.errors.append(f"{type(e).__name__}: {e}"[:300])
                version = ""

    def _see(self, kind: str, item: Mapping[str, Any]) -> None:
        (job,) = parse([item], time.monotonic()).jobs.values()
        with self._changed:
            if kind == "DELETED":
                self.jobs.pop(job.name, None)
            else:
                self.jobs[job.name] = job
            self.states += 1
            queued = [j for j in self.jobs.values() if j.phase == "Queued"]
            running = sum(1 for j in self.jobs.values() if j.phase == "Running")
            self.max_running = max(self.max_running, running)
            if job.phase == "Queued" and job.position is not None:
                seen = self.positions.setdefault(job.name, [])
                if not seen or seen[-1] != job.position:
                    seen.append(job.position)
            exact = [j.position for j in queued if j.position is not None and j.position <= EXACT]
            if len(exact) != len(set(exact)):
                self.duplicate_positions.append(f"{sorted(exact)} after {job.name} changed")
            self._changed.notify_all()

    def restart_positions(self) -> None:
        """From now on: each job's positions begin with the one it shows now."""
        with self._changed:
            self.positions = {
                j.name: [j.position]
                for j in self.jobs.values()
                if j.phase == "Queued" and j.position is not None
            }

    def wait(self, predicate: Any, timeout: float, what: str) -> dict[str, Job]:
        """The first state (a copy) for which ``predicate(jobs)`` holds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.jobs):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
                self._changed.wait(left)
            return dict(self.jobs)

    def __enter__(self) -> QueueWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
