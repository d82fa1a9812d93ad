"""Following a ReconJob as `kubectl get reconjobs -w` would: phase, progress and stage,
recorded each time they change, until the job finishes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from recon_cli.cluster_demo.reconjob import get
from recon_cli.cluster_demo.tools import Tools

FINISHED = frozenset({"Succeeded", "Failed", "Cancelled"})


@dataclass(frozen=True)
class Snapshot:
    phase: str
    percent: int | None
    stage: str
    message: str
    elapsed: float  # seconds since the watch began


def snapshot(tools: Tools, namespace: str, name: str, started: float) -> Snapshot:
    status = get(tools, namespace, name).get("status") or {}
    progress = status.get("progress") or {}
    percent = progress.get("percent")
    return Snapshot(
        phase=str(status.get("phase") or ""),
        percent=int(percent) if percent is not None else None,
        stage=str(progress.get("stage") or ""),
        message=str(progress.get("message") or ""),
        elapsed=time.monotonic() - started,
    )


def table_row(tools: Tools, namespace: str, name: str, header: bool) -> str:
    """The job's line of `kubectl get reconjobs` (its printer columns)."""
    args = ["get", "reconjobs", name, "-n", namespace]
    if not header:
        args.append("--no-headers")
    return tools.kubectl(*args).stdout.rstrip("\n")


def follow(
    tools: Tools,
    namespace: str,
    name: str,
    timeout: float,
    show: Callable[[str], None] | None = None,
    until: Callable[[Snapshot], bool] = lambda s: s.phase in FINISHED,
    interval: float = 0.5,
) -> list[Snapshot]:
    """Poll until ``until(snapshot)``; returns every distinct (phase, percent, stage) seen.
    With ``show``, prints the `kubectl get reconjobs` line each time one changes."""
    started = time.monotonic()
    seen: list[Snapshot] = []
    while True:
        now = snapshot(tools, namespace, name, started)
        key = (now.phase, now.percent, now.stage)
        if not seen or key != (seen[-1].phase, seen[-1].percent, seen[-1].stage):
            seen.append(now)
            if show is not None:
                show(table_row(tools, namespace, name, header=len(seen) == 1))
        if until(now):
            return seen
        if now.elapsed > timeout:
            last = seen[-1]
            raise TimeoutError(
                f"reconjob {namespace}/{name} still {last.phase or 'without a phase'} "
                f"({last.stage} {last.percent}%) after {timeout:.0f} s"
            )
        time.sleep(interval)
