"""The load scenario: ReconJobs of mixed priority submitted in small batches over a period,
behind `maxRunningJobs`, on the quick stand-in runner, watched from outside while the queue
drains (see queue_observer), then read back once everything has finished.

Shared by tests/reliability/test_load.py (a small run that asserts) and
`benchmarks/operator_scale.py load` (the full 500 jobs over 5 minutes, which reports).
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

from tests.support.operator_process import BUCKET, apply
from tests.support.queue_observer import Findings, QueueObserver
from tests.support.rss import RssSampler

# Priorities drawn for the jobs, with their weights: mostly default, some urgent.
PRIORITIES = (0, 5, 9)
WEIGHTS = (6, 3, 1)


def manifest(name: str, prefix: str, priority: int = 0, views: int = 6) -> dict[str, Any]:
    """A ReconJob for the stand-in runner. No GPU: the process node has two, and the point
    is `maxRunningJobs` runners at once."""
    return {
        "apiVersion": "recon.dev/v1alpha1",
        "kind": "ReconJob",
        "metadata": {"name": name},
        "spec": {
            "input": {"bucket": BUCKET, "prefix": prefix, "expectedViews": views},
            "resources": {"gpus": 0, "cpu": "50m", "memory": "32Mi"},
            "priority": priority,
        },
    }


@dataclass
class LoadResult:
    submitted: int
    submit_seconds: float
    seconds: float  # first submission to every job terminal (or the timeout)
    timed_out: bool
    phases: dict[str, int]
    findings: Findings
    rss_first: int
    rss_peak: int
    load_averages: list[float]
    # read back at the end
    admitted_events: dict[str, int] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    without_mesh: list[str] = field(default_factory=list)
    # LISTs that failed while watching: the checks saw nothing in those moments
    snapshot_errors: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def twice_admitted(self) -> list[str]:
        """Jobs not admitted exactly once: twice, or never (no Admitted Event at all)."""
        return sorted(n for n in self.names if self.admitted_events.get(n, 0) != 1)


def run_load(
    stack: Any,
    namespace: str,
    *,
    prefix: str,
    count: int,
    seconds: float,
    batch: int,
    max_running: int,
    operator_pid: int,
    timeout: float,
    seed: int = 7,
    interval: float = 0.5,
) -> LoadResult:
    rng = random.Random(seed)
    priorities = rng.choices(PRIORITIES, WEIGHTS, k=count)
    batches = math.ceil(count / batch)
    gap = seconds / max(1, batches - 1) if batches > 1 else 0.0
    loads: list[float] = []
    with (
        RssSampler(operator_pid) as rss,
        QueueObserver(stack.kubeconfig, namespace, max_running, interval) as observer,
    ):
        start = time.monotonic()
        for b in range(batches):
            time.sleep(max(0.0, start + b * gap - time.monotonic()))
            first = b * batch
            items = [
                manifest(f"load-{i:04d}", prefix, priorities[i])
                for i in range(first, min(count, first + batch))
            ]
            apply(stack, namespace, *items)
            if b % 5 == 0:
                loads.append(os.getloadavg()[0])
        submitted_at = time.monotonic()
        deadline = submitted_at + timeout
        timed_out = False
        while not observer.all_terminal(count):
            if time.monotonic() > deadline:
                timed_out = True
                break
            time.sleep(1)
            loads.append(os.getloadavg()[0])
        finished_at = time.monotonic()
    result = LoadResult(
        submitted=count,
        submit_seconds=submitted_at - start,
        seconds=finished_at - start,
        timed_out=timed_out,
        phases=observer.phases(),
        findings=observer.findings,
        rss_first=rss.first,
        rss_peak=rss.peak,
        load_averages=loads,
        snapshot_errors=list(observer.errors),
        names=[f"load-{i:04d}" for i in range(count)],
    )
    read_back(stack, namespace, result)
    return result


def read_back(stack: Any, namespace: str, result: LoadResult) -> None:
    """Admitted Events per job (one each: no job started twice), attempts and outputs."""
    out = stack.kubectl(
        "get", "events", "-n", namespace, "--field-selector", "reason=Admitted", "-o", "json"
    ).stdout
    for event in json.loads(out)["items"]:
        name = event["involvedObject"]["name"]
        result.admitted_events[name] = result.admitted_events.get(name, 0) + int(
            event.get("count") or 1
        )
    out = stack.kubectl("get", "reconjobs", "-n", namespace, "-o", "json").stdout
    for item in json.loads(out)["items"]:
        name = item["metadata"]["name"]
        status = item.get("status") or {}
        result.attempts[name] = int(status.get("attempts") or 0)
        if status.get("phase") == "Succeeded" and not (status.get("outputs") or {}).get("mesh"):
            result.without_mesh.append(name)
