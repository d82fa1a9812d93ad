"""What the operator costs per job, on a local stack of its own, with the stand-in runner.

    .venv/bin/python benchmarks/operator_overhead.py latency   # ReconJob vs plain Job
    .venv/bin/python benchmarks/operator_overhead.py requests  # API requests per job

Each sub-command starts its own stack (with the API server's audit log on) in a temporary
directory, runs `recon operator` as a subprocess with the chart's RBAC, prints markdown on
stdout (progress goes to stderr) and stops the stack.

latency: time from `kubectl apply` of a ReconJob to its runner pod Running, against time
from `kubectl apply` of an equivalent plain Job (the pod template the operator built for an
earlier ReconJob: same image, resources, security context, volumes) to its pod Running,
taken turn about in one run (which goes first alternates), medians over the repetitions.
"Running" is when this script's pod watch first sees the phase, with the same clock for
both.

requests: every request the operator's ServiceAccount makes, from the API server's audit
log (the runner's progress patches come from the runner's own ServiceAccount and are not
counted), per job: jobs run one at a time to Succeeded, jobs applied together behind the run
slots (queue positions included), and deleting finished jobs. The operator's own
`recon_operator_api_writes_total` is shown beside it: the difference is kopf's bookkeeping.
"""

from __future__ import annotations

import argparse
import copy
import functools
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import operator_bench as ob
from kubernetes import client, watch
from recon_operator.jobspec import child_name

from tests.support.load_scenario import manifest

STARTED = frozenset({"Running", "Succeeded", "Failed"})


# ------------------------------------------------------------------ latency


class PodWatch:
    """When each Job's first pod was first seen started (Running, or already past it)."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.started: dict[str, float] = {}
        self.finished: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            w = watch.Watch()
            try:
                for event in w.stream(
                    self.core.list_namespaced_pod, self.namespace, timeout_seconds=30
                ):
                    pod = event["object"]
                    job = (pod.metadata.labels or {}).get("job-name")
                    phase = pod.status.phase if pod.status else None
                    if job and phase in STARTED:
                        self.started.setdefault(job, time.monotonic())
                    if job and phase in ("Succeeded", "Failed"):
                        self.finished.add(job)
                    if self._stop.is_set():
                        w.stop()
            except Exception as e:  # a dropped watch is reopened
                ob.log(f"pod watch: {e}")

    def __enter__(self) -> PodWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


def reconjob_with_gpu(name: str, prefix: str) -> dict[str, Any]:
    body = manifest(name, prefix)
    body["spec"]["resources"] = {"gpus": 1, "cpu": "100m", "memory": "64Mi"}
    return body


def plain_job(name: str, template: dict[str, Any]) -> dict[str, Any]:
    """The operator's pod template with the runner's inputs taken out: same image,
    resources, security context and volumes; a command that just waits."""
    spec = copy.deepcopy(template["spec"])
    spec.pop("serviceAccountName", None)
    spec.pop("serviceAccount", None)
    container = spec["containers"][0]
    container["command"] = ["sleep", "3"]
    container.pop("args", None)
    container.pop("env", None)
    container.pop("envFrom", None)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": spec}},
    }


def latency(reps: int = 15) -> str:
    with ob.bench_stack() as bench:
        prefix = "latency/sleep3/"
        ns = ob.namespace_with_capture(bench, "latency", [prefix])
        op = ob.start_operator(bench, ns, max_running=4)
        api = bench.api()
        batch = client.BatchV1Api(api)
        timings: dict[str, list[float]] = {"reconjob": [], "job": []}
        with PodWatch(api, ns) as pods, ob.LoadTracker() as load:

            def run_reconjob(name: str) -> float:
                start = time.monotonic()
                ob.kubectl_apply(bench, ns, [reconjob_with_gpu(name, prefix)])
                child = child_name(name)
                ob.wait_until(lambda: child in pods.started, 120)
                took = pods.started[child] - start
                ob.wait_until(lambda: child in pods.finished, 120)
                ob.wait_until(
                    lambda: all(
                        ob.phase_of(i) == "Succeeded"
                        for i in ob.list_reconjobs(api, ns)
                        if i["metadata"]["name"] == name
                    ),
                    60,
                    0.25,
                )
                return took

            def run_plain(name: str, template: dict[str, Any]) -> float:
                start = time.monotonic()
                ob.kubectl_apply(bench, ns, [plain_job(name, template)])
                ob.wait_until(lambda: name in pods.started, 120)
                took = pods.started[name] - start
                ob.wait_until(lambda: name in pods.finished, 120)
                return took

            # A first ReconJob warms the node and yields the operator's pod template.
            run_reconjob("warmup")
            job_spec = batch.read_namespaced_job(child_name("warmup"), ns).spec
            assert job_spec is not None
            template = api.sanitize_for_serialization(job_spec.template)
            run_plain("warmup-plain", template)
            for i in range(reps):
                steps: list[tuple[str, Callable[[], float]]] = [
                    ("reconjob", functools.partial(run_reconjob, f"rj-{i}")),
                    ("job", functools.partial(run_plain, f"plain-{i}", template)),
                ]
                if i % 2:
                    steps.reverse()
                for kind, step in steps:
                    timings[kind].append(step())
                    time.sleep(1)
                ob.log(
                    f"rep {i}: ReconJob {timings['reconjob'][-1]:.2f}s, "
                    f"Job {timings['job'][-1]:.2f}s"
                )
        op.stop()
    rj = statistics.median(timings["reconjob"])
    plain = statistics.median(timings["job"])
    rows = [
        (
            "apply to runner pod Running, median (min-max)",
            f"{rj:.2f} s ({min(timings['reconjob']):.2f}-{max(timings['reconjob']):.2f})",
            f"{plain:.2f} s ({min(timings['job']):.2f}-{max(timings['job']):.2f})",
        ),
        ("ratio of medians (target <= 1.5)", f"{rj / plain:.2f}", ""),
        ("extra time, medians (target <= 2 s)", f"{rj - plain:.2f} s", ""),
        ("repetitions (turn about, one run)", str(reps), str(reps)),
        ("each run", " ".join(f"{t:.2f}" for t in timings["reconjob"]), ""),
        ("", "", " ".join(f"{t:.2f}" for t in timings["job"])),
        ("load average during the run", load.summary(), ""),
    ]
    return "### Overhead: ReconJob vs plain Job\n\n" + ob.table(
        rows, ("measure", "ReconJob", "plain Job")
    )


# ------------------------------------------------------------------ requests


def kind(event: ob.AuditEvent) -> str:
    sub = f"/{event.subresource}" if event.subresource else ""
    return f"{event.verb} {event.resource}{sub}"


def per_job(events: Iterable[ob.AuditEvent], jobs: int) -> tuple[Counter[str], int, int]:
    """Requests by kind (long-running watches and the periodic lists left out), with the
    total and the write total."""
    counted = [e for e in events if e.verb not in ("watch",)]
    kinds = Counter(kind(e) for e in counted)
    writes = sum(1 for e in counted if e.verb in ob.WRITE_VERBS)
    return kinds, len(counted), writes


def metric_writes(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("recon_operator_api_writes_total{"):
            label = line.split('kind="')[1].split('"')[0]
            out[label] = float(line.rsplit(" ", 1)[1])
    return out


def requests(sequential: int = 10, together: int = 20) -> str:
    with ob.bench_stack() as bench:
        prefix = "requests/sleep2/"
        ns = ob.namespace_with_capture(bench, "requests", [prefix])
        op = ob.start_operator(bench, ns, max_running=4)
        api = bench.api()

        def phases(names: Sequence[str]) -> list[str | None]:
            wanted = set(names)
            return [
                ob.phase_of(i)
                for i in ob.list_reconjobs(api, ns)
                if i["metadata"]["name"] in wanted
            ]

        def succeeded(name: str) -> bool:
            return phases([name]) == ["Succeeded"]

        def settle() -> None:
            time.sleep(5)  # trailing Job and pod updates of the last job

        windows: dict[str, tuple[float, float, int, dict[str, float]]] = {}
        with ob.LoadTracker() as load:
            before = metric_writes(op.metrics())
            start = time.time()
            for i in range(sequential):
                name = f"one-{i}"
                ob.kubectl_apply(bench, ns, [manifest(name, prefix)])
                ob.wait_until(functools.partial(succeeded, name), 120, 0.25)
            settle()
            after = metric_writes(op.metrics())
            diff = {k: v - before.get(k, 0.0) for k, v in after.items()}
            windows["one at a time, apply to Succeeded"] = (start, time.time(), sequential, diff)

            names = [f"many-{i:02d}" for i in range(together)]
            before = after
            start = time.time()
            ob.kubectl_apply(bench, ns, [manifest(n, prefix) for n in names])
            ob.wait_until(lambda: phases(names) == ["Succeeded"] * together, 600, 0.5)
            settle()
            after = metric_writes(op.metrics())
            diff = {k: v - before.get(k, 0.0) for k, v in after.items()}
            label = f"{together} applied together behind 4 slots, apply to Succeeded"
            windows[label] = (start, time.time(), together, diff)

            before = after
            start = time.time()
            bench.handle.kubectl(
                "delete", "reconjobs", "--all", "-n", ns, "--wait=true", timeout=300
            )
            settle()
            after = metric_writes(op.metrics())
            diff = {k: v - before.get(k, 0.0) for k, v in after.items()}
            windows["`kubectl delete` of finished jobs"] = (
                start,
                time.time(),
                sequential + together,
                diff,
            )
        op.stop()
        events = ob.audit_events(bench.stack.audit_log, ob.operator_username())
    out = ["### API requests per job (operator's ServiceAccount, from the audit log)", ""]
    summary = []
    for label, (t0, t1, jobs, metric) in windows.items():
        kinds, total, writes = per_job(ob.between(events, t0, t1), jobs)
        summary.append(
            (
                label,
                str(jobs),
                f"{total / jobs:.1f}",
                f"{writes / jobs:.1f}",
                f"{sum(metric.values()) / jobs:.1f}",
            )
        )
        rows = [(k, f"{v / jobs:.1f}") for k, v in sorted(kinds.items())]
        out.append(f"{label}, per job:\n\n" + ob.table(rows, ("request", "per job")) + "\n")
    out.insert(
        2,
        ob.table(
            summary,
            (
                "scenario",
                "jobs",
                "requests per job",
                "writes per job",
                "recon_operator_api_writes_total per job",
            ),
        )
        + f"\n\nLoad average during the run: {load.summary()}.\n",
    )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    lat = sub.add_parser("latency", help="ReconJob vs plain Job, apply to pod Running")
    lat.add_argument("--reps", type=int, default=15, help="repetitions (default 15)")
    sub.add_parser("requests", help="API requests per job lifecycle")
    args = parser.parse_args(argv)
    print(latency(args.reps) if args.command == "latency" else requests())
    return 0


if __name__ == "__main__":
    sys.exit(main())
