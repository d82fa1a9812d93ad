"""What the operator benchmarks share.

A local stack of their own (in a temporary state directory) whose API server writes an
audit log of every request made by the operator's ServiceAccount; the operator as a
subprocess with the chart's RBAC alone (its own identity, so the audit log can tell its
requests from kubectl's, the node's and the runners'); ReconJobs on the quick stand-in
runner; a sampler of the operator's resident memory; the machine's load average, which
every figure is reported with (the machine is shared); and the polling and Markdown tables
every operator benchmark uses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kubernetes import client, config  # noqa: E402
from recon_stack.components import APISERVER, Component  # noqa: E402
from recon_stack.stack import Stack  # noqa: E402

from tests.support import captures  # noqa: E402
from tests.support.operator_process import (  # noqa: E402
    BUCKET,
    OperatorProcess,
    prepare_namespace,
)
from tests.support.rss import RssSampler  # noqa: E402
from tests.support.stack_handle import StackHandle, handle_for  # noqa: E402

__all__ = ["RssSampler"]

OPERATOR_NAMESPACE = "recon-system"
RELEASE = "recon-operator"
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


# ------------------------------------------------------------------ stack with audit log


def audit_policy(username: str) -> dict[str, Any]:
    """Metadata of every request the operator makes; nothing about anyone else's."""
    return {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [{"level": "Metadata", "users": [username]}, {"level": "None"}],
    }


def operator_username() -> str:
    return f"system:serviceaccount:{OPERATOR_NAMESPACE}:{RELEASE}"


class AuditedStack(Stack):
    """The project's stack, with the API server's audit log switched on."""

    @property
    def audit_log(self) -> Path:
        return self.layout.root / "audit.log"

    def _spawn(self, component: Component) -> None:
        if component.name == APISERVER:
            policy = self.layout.root / "audit-policy.yaml"
            policy.write_text(yaml.safe_dump(audit_policy(operator_username())))
            argv = (
                *component.argv,
                f"--audit-policy-file={policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-maxsize=0",
            )
            component = dataclasses.replace(component, argv=argv)
        super()._spawn(component)


@dataclasses.dataclass
class Bench:
    stack: AuditedStack
    handle: StackHandle
    work: Path

    def api(self) -> client.ApiClient:
        configuration = client.Configuration()
        config.load_kube_config(str(self.handle.kubeconfig), client_configuration=configuration)
        configuration.connection_pool_maxsize = 8
        return client.ApiClient(configuration)


@contextlib.contextmanager
def bench_stack(keep: bool = False) -> Iterator[Bench]:
    """A fresh audited stack in a temporary directory, stopped (and removed) at the end."""
    work = Path(tempfile.mkdtemp(prefix="recon-bench-"))
    stack = AuditedStack(work / "stack")
    log(f"starting a stack in {work}")
    stack.up()
    try:
        yield Bench(stack, handle_for(stack), work)
    finally:
        stack.down()
        if not keep:
            stack.purge()
            shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------ operator identity


def operator_kubeconfig(bench: Bench) -> Path:
    """The chart's ServiceAccount and RBAC as its default values install them (cluster-wide),
    and a kubeconfig with a token for that ServiceAccount: the operator gets exactly what
    the chart grants. The operator is still confined to one namespace by RECON_NAMESPACES.
    """
    h = bench.handle
    h.kubectl("create", "namespace", OPERATOR_NAMESPACE, check=False)
    rendered = h.helm(
        "template",
        RELEASE,
        str(REPO / "charts" / "recon-operator"),
        "--namespace",
        OPERATOR_NAMESPACE,
        "--show-only",
        "templates/serviceaccount.yaml",
        "--show-only",
        "templates/rbac.yaml",
        "--set",
        "peering.enabled=false",
    ).stdout
    h.kubectl("apply", "-f", "-", input=rendered)
    return h.service_account_kubeconfig(
        RELEASE, OPERATOR_NAMESPACE, bench.work / "operator.kubeconfig", duration="6h"
    )


def start_operator(bench: Bench, namespace: str, max_running: int) -> OperatorProcess:
    kubeconfig = operator_kubeconfig(bench)
    env = {
        "KUBECONFIG": str(kubeconfig),
        "RECON_MAX_RUNNING_JOBS": str(max_running),
        "RECON_LOG_LEVEL": "WARNING",
    }
    logs = bench.work / f"operator-{namespace}"
    logs.mkdir()
    return OperatorProcess(bench.handle, namespace, logs, env).start()


def namespace_with_capture(bench: Bench, base: str, prefixes: Sequence[str]) -> str:
    """A namespace with the storage Secret, and a small valid capture at each prefix."""
    ns = prepare_namespace(bench.handle, base)
    minio = bench.handle.minio_client()
    for prefix in prefixes:
        captures.upload(minio, BUCKET, prefix, captures.files(6))
    return ns


# ------------------------------------------------------------------ ReconJobs


def kubectl_apply(bench: Bench, namespace: str, items: Sequence[Mapping[str, Any]]) -> None:
    """One `kubectl apply -f` of a List."""
    doc = {"apiVersion": "v1", "kind": "List", "items": list(items)}
    bench.handle.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(doc), timeout=600)


def list_reconjobs(api: client.ApiClient, namespace: str) -> list[dict[str, Any]]:
    objects = client.CustomObjectsApi(api)
    response: Any = objects.list_namespaced_custom_object(
        "recon.dev", "v1alpha1", namespace, "reconjobs", _preload_content=False
    )
    items: list[dict[str, Any]] = json.loads(response.data)["items"]
    return items


def phase_of(item: Mapping[str, Any]) -> str | None:
    phase = (item.get("status") or {}).get("phase")
    return str(phase) if phase else None


def phase_counts(items: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        key = phase_of(item) or "-"
        counts[key] = counts.get(key, 0) + 1
    return counts


# ------------------------------------------------------------------ measuring


def mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f}/{five:.1f}/{fifteen:.1f}"


class LoadTracker:
    """Load averages (1 min) seen while something runs: the machine is shared."""

    def __init__(self, interval: float = 5.0) -> None:
        self.samples: list[float] = []
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> LoadTracker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        if not self.samples:
            return load_average()
        return f"{min(self.samples):.1f}-{max(self.samples):.1f} (1-min, {os.cpu_count()} cores)"


@dataclasses.dataclass(frozen=True)
class AuditEvent:
    verb: str
    resource: str
    subresource: str
    name: str
    received: float  # POSIX seconds


def _posix(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def audit_events(path: Path, username: str) -> list[AuditEvent]:
    """One entry per request (watches appear at ResponseStarted and ResponseComplete)."""
    seen: dict[str, AuditEvent] = {}
    with path.open() as f:
        for line in f:
            event = json.loads(line)
            if event.get("user", {}).get("username") != username:
                continue
            audit_id = event["auditID"]
            if audit_id in seen:
                continue
            ref = event.get("objectRef") or {}
            seen[audit_id] = AuditEvent(
                verb=event["verb"],
                resource=ref.get("resource", event.get("requestURI", "")),
                subresource=ref.get("subresource", ""),
                name=ref.get("name", ""),
                received=_posix(event["requestReceivedTimestamp"]),
            )
    return sorted(seen.values(), key=lambda e: e.received)


def between(events: Sequence[AuditEvent], start: float, end: float) -> list[AuditEvent]:
    return [e for e in events if start <= e.received <= end]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {load_average()}] {message}", file=sys.stderr)


class JobClock:
    """When each runner Job was first seen, and when it was first seen finished, from a
    watch of the namespace's Jobs (one clock, the script's monotonic one, for both)."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.batch = client.BatchV1Api(api)
        self.namespace = namespace
        self.created: dict[str, float] = {}
        self.finished: dict[str, float] = {}
        self.uids: dict[str, str] = {}
        # Jobs of one name created more than once (a job admitted twice)
        self.added_twice: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from kubernetes import watch

        version = ""
        while not self._stop.is_set():
            w = watch.Watch()
            try:
                for event in w.stream(
                    self.batch.list_namespaced_job,
                    self.namespace,
                    resource_version=version,
                    timeout_seconds=30,
                    allow_watch_bookmarks=True,
                ):
                    obj = event["object"]
                    raw = event.get("raw_object") or {}
                    if event["type"] == "ERROR":
                        raise RuntimeError(f"watch error: {raw}")
                    version = (raw.get("metadata") or {}).get("resourceVersion") or version
                    if event["type"] != "BOOKMARK":
                        self._see(event["type"], obj)
                    if self._stop.is_set():
                        break
            except Exception as e:  # a watch that expired: list again from now
                log(f"job watch restarted: {type(e).__name__}: {e}"[:300])
                version = ""
                self._stop.wait(0.5)

    def _see(self, kind: str, job: Any) -> None:
        now = time.monotonic()
        name = job.metadata.name
        uid = job.metadata.uid
        if kind == "ADDED":
            if self.uids.setdefault(name, uid) != uid:
                self.added_twice.append(name)
            self.created.setdefault(name, now)
        for cond in (job.status.conditions if job.status else None) or ():
            if cond.type in ("Complete", "Failed") and cond.status == "True":
                self.finished.setdefault(name, now)

    def __enter__(self) -> JobClock:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=40)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


# ------------------------------------------------------------------ waiting and reporting


def wait_until(
    check: Callable[[], bool], timeout: float, interval: float = 0.1, *, required: bool = True
) -> bool:
    """Poll ``check`` every ``interval`` seconds until it holds, then True; after
    ``timeout`` seconds a TimeoutError when ``required``, else False."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            if required:
                raise TimeoutError(f"timed out after {timeout:.0f}s")
            return False
        time.sleep(interval)
    return True


def table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
