"""Following a ReconJob as `kubectl get reconjobs -w` does: phase, progress and stage from
every version of the object the API server sends, until a condition holds."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from recon_cli.cluster_demo.stream import ObjectStream
from recon_cli.cluster_demo.tools import Tools

FINISHED = frozenset({"Succeeded", "Failed", "Cancelled"})


class WatchTools(Tools, Protocol):
    """kubectl that can also be run as a long-lived process."""

    @property
    def kubectl_path(self) -> Path: ...

    def env(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class Snapshot:
    phase: str
    percent: int | None
    stage: str
    message: str
    elapsed: float  # seconds since the watch began


def snapshot(job: dict[str, Any], started: float) -> Snapshot:
    status = job.get("status") or {}
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
    tools: WatchTools,
    namespace: str,
    name: str,
    timeout: float,
    show: Callable[[str], None] | None = None,
    until: Callable[[Snapshot], bool] = lambda s: s.phase in FINISHED,
) -> list[Snapshot]:
    """Watch until ``until(snapshot)``; returns every distinct (phase, percent, stage) in
    the order they happened. With ``show``, passes the `kubectl get reconjobs` line each
    time one changes."""
    started = time.monotonic()
    argv = [str(tools.kubectl_path), "get", "reconjob", name, "-n", namespace, "-w", "-o", "json"]
    seen: list[Snapshot] = []
    while True:  # a watch the server closes is opened again
        stream = ObjectStream(argv, tools.env())
        try:
            while True:
                remaining = timeout - (time.monotonic() - started)
                try:
                    job = stream.next(remaining)
                except queue.Empty:
                    raise TimeoutError(_stuck(namespace, name, seen, timeout)) from None
                if job is None:
                    break
                now = snapshot(job, started)
                key = (now.phase, now.percent, now.stage)
                if not seen or key != (seen[-1].phase, seen[-1].percent, seen[-1].stage):
                    seen.append(now)
                    if show is not None:
                        show(table_row(tools, namespace, name, header=len(seen) == 1))
                if until(now):
                    return seen
        finally:
            stream.close()
        if time.monotonic() - started > timeout:
            raise TimeoutError(_stuck(namespace, name, seen, timeout))
        time.sleep(0.5)


def _stuck(namespace: str, name: str, seen: list[Snapshot], timeout: float) -> str:
    last = (
        f"{seen[-1].phase or 'no phase'} ({seen[-1].stage} {seen[-1].percent}%)"
        if seen
        else "unseen"
    )
    return f"reconjob {namespace}/{name} still {last} after {timeout:.0f} s"
