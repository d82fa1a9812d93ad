"""The operator under many ReconJobs, on a local stack of its own, with the stand-in runner.

    .venv/bin/python benchmarks/operator_scale.py burst   # 200 applied at once
    .venv/bin/python benchmarks/operator_scale.py drain   # 500 queued behind 4 run slots
    .venv/bin/python benchmarks/operator_scale.py load    # 500 over 5 minutes, checked

Each sub-command starts its own stack (with the API server's audit log on) in a temporary
directory, runs `recon operator` as a subprocess with the chart's RBAC, prints a markdown
table on stdout (progress goes to stderr) and stops the stack.

burst: 200 ReconJobs in one `kubectl apply -f` of a List (one in ten with a view count
that does not match the capture, so it fails validation); the time until every job is
past validation (Queued, Running or Failed), then until every queued job shows its
queuePosition; the operator's peak RSS.

drain: 500 ReconJobs applied at once behind maxRunningJobs=4, runners of about a second;
the operator's write requests per second to the API server (from the audit log) while the
queue drains, and its peak RSS.

load: 500 ReconJobs of mixed priority over 5 minutes behind maxRunningJobs=4; every job must
end Succeeded, admitted once, never jump a job ahead of it, never share a queuePosition.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence

import operator_bench as ob

from tests.support.load_scenario import manifest, run_load
from tests.support.queue_observer import TERMINAL

SETTLED = frozenset({"Queued", "Running", "Succeeded", "Failed"})


def table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


# ------------------------------------------------------------------ burst


def burst(count: int = 200, invalid_every: int = 10) -> str:
    with ob.bench_stack() as bench:
        prefix = "burst/sleep60/"
        ns = ob.namespace_with_capture(bench, "burst", [prefix])
        op = ob.start_operator(bench, ns, max_running=4)
        assert op.proc is not None
        api = bench.api()
        items = [
            manifest(f"burst-{i:03d}", prefix, views=5 if i % invalid_every == 0 else 6)
            for i in range(count)
        ]
        with ob.RssSampler(op.proc.pid) as rss, ob.LoadTracker(1.0) as load:
            time.sleep(2)
            idle_rss = rss.last
            wall0 = time.time()
            t0 = time.monotonic()
            ob.kubectl_apply(bench, ns, items)
            applied = time.monotonic() - t0
            ob.log(f"applied {count} in {applied:.1f}s")
            state: dict[str, list[dict[str, object]]] = {"items": []}

            def settled() -> bool:
                state["items"] = ob.list_reconjobs(api, ns)
                phases = [ob.phase_of(i) for i in state["items"]]
                return len(phases) == count and all(p in SETTLED for p in phases)

            ok = wait_until(settled, 300, 0.25)
            settled_s = time.monotonic() - t0
            ob.log(f"settled={ok} after {settled_s:.1f}s: {ob.phase_counts(state['items'])}")

            def positioned() -> bool:
                items = ob.list_reconjobs(api, ns)
                return all(
                    (i.get("status") or {}).get("queuePosition")
                    for i in items
                    if ob.phase_of(i) == "Queued"
                )

            wait_until(positioned, 120, 0.25)
            positioned_s = time.monotonic() - t0
            wall1 = time.time()
            time.sleep(3)
        phases = ob.phase_counts(ob.list_reconjobs(api, ns))
        op.stop()
        requests = ob.between(
            ob.audit_events(bench.stack.audit_log, ob.operator_username()), wall0, wall1
        )
        writes = [e for e in requests if e.verb in ob.WRITE_VERBS]
    rows = [
        ("ReconJobs applied at once (one `kubectl apply` of a List)", str(count), ""),
        ("`kubectl apply` returned after", f"{applied:.1f} s", ""),
        (
            "all validated: Queued/Running or Failed (from the apply)",
            f"{settled_s:.1f} s" + ("" if ok else " (timed out)"),
            "<= 60 s",
        ),
        ("every Queued job shows its queuePosition", f"{positioned_s:.1f} s", ""),
        ("phases then", ", ".join(f"{k} {v}" for k, v in sorted(phases.items())), ""),
        ("operator RSS idle / peak", f"{ob.mib(idle_rss)} / {ob.mib(rss.peak)}", "<= 250 MB"),
        (
            "operator API requests until then (writes)",
            f"{len(requests)} ({len(writes)})",
            "",
        ),
        ("load average during the run", load.summary(), ""),
    ]
    return f"### {count} ReconJobs at once\n\n" + table(rows, ("measure", "result", "target"))


# ------------------------------------------------------------------ drain


def drain(count: int = 500, max_running: int = 4) -> str:
    with ob.bench_stack() as bench:
        prefix = "drain/sleep1/"
        ns = ob.namespace_with_capture(bench, "drain", [prefix])
        op = ob.start_operator(bench, ns, max_running=max_running)
        assert op.proc is not None
        api = bench.api()
        items = [manifest(f"drain-{i:03d}", prefix) for i in range(count)]
        validated_at = 0.0
        with ob.RssSampler(op.proc.pid) as rss, ob.LoadTracker() as load:
            wall0 = time.time()
            t0 = time.monotonic()
            ob.kubectl_apply(bench, ns, items)
            ob.log(f"applied {count} in {time.monotonic() - t0:.1f}s")
            last_log = 0.0
            while True:
                listed = ob.list_reconjobs(api, ns)
                phases = [ob.phase_of(i) for i in listed]
                if not validated_at and len(phases) == count and all(p in SETTLED for p in phases):
                    validated_at = time.time()
                if len(phases) == count and all(p in TERMINAL for p in phases):
                    break
                if time.monotonic() - last_log > 30:
                    last_log = time.monotonic()
                    ob.log(f"{ob.phase_counts(listed)}; operator RSS {ob.mib(rss.last)}")
                if time.monotonic() - t0 > 3600:
                    ob.log("gave up after an hour")
                    break
                time.sleep(1)
            wall1 = time.time()
            total_s = time.monotonic() - t0
        phases_end = ob.phase_counts(ob.list_reconjobs(api, ns))
        op.stop()
        events = ob.audit_events(bench.stack.audit_log, ob.operator_username())
    whole = ob.between(events, wall0, wall1)
    draining = ob.between(events, validated_at, wall1)
    writes = [e for e in draining if e.verb in ob.WRITE_VERBS]
    drain_s = wall1 - validated_at
    bins = Counter(int((e.received - validated_at) // 10) for e in writes)
    kinds = Counter(
        f"{e.verb} {e.resource}{'/' + e.subresource if e.subresource else ''}" for e in writes
    )
    rows = [
        (f"ReconJobs applied at once, maxRunningJobs={max_running}", str(count)),
        ("runner", "stand-in, about 1 s of work (plus process start)"),
        ("apply to every job terminal", f"{total_s:.0f} s ({count / total_s * 60:.0f} jobs/min)"),
        ("phases at the end", ", ".join(f"{k} {v}" for k, v in sorted(phases_end.items()))),
        ("queue draining (all validated to all terminal)", f"{drain_s:.0f} s"),
        ("operator write requests while draining", str(len(writes))),
        ("operator write rate while draining, mean", f"{len(writes) / drain_s:.1f} req/s"),
        ("operator write rate, busiest 10 s", f"{max(bins.values(), default=0) / 10:.1f} req/s"),
        ("writes per job while draining", f"{len(writes) / count:.1f}"),
        (
            "writes by kind while draining",
            ", ".join(f"{k}: {v}" for k, v in kinds.most_common()),
        ),
        ("operator requests of any verb, whole run", str(len(whole))),
        ("operator RSS at start / peak", f"{ob.mib(rss.first)} / {ob.mib(rss.peak)}"),
        ("load average during the run", load.summary()),
    ]
    return f"### {count} ReconJobs queued behind {max_running} run slots\n\n" + table(
        rows, ("measure", "result")
    )


# ------------------------------------------------------------------ load


def load(count: int = 500, seconds: float = 300, max_running: int = 4) -> str:
    with ob.bench_stack() as bench:
        prefix = "load/sleep1/"
        ns = ob.namespace_with_capture(bench, "load", [prefix])
        op = ob.start_operator(bench, ns, max_running=max_running)
        assert op.proc is not None
        batch = 5
        ob.log(f"submitting {count} over {seconds:.0f}s in batches of {batch}")
        result = run_load(
            bench.handle,
            ns,
            prefix=prefix,
            count=count,
            seconds=seconds,
            batch=batch,
            max_running=max_running,
            operator_pid=op.proc.pid,
            timeout=3600,
            interval=1.0,
        )
        op.stop()
    f = result.findings
    missing = count - sum(result.phases.values())
    unfinished = sum(v for k, v in result.phases.items() if k not in TERMINAL)
    not_once = result.twice_admitted()
    rows = [
        (
            "submitted",
            f"{count} ReconJobs (priorities 0/5/9), batches of {batch} over "
            f"{result.submit_seconds:.0f} s, maxRunningJobs={max_running}, stand-in ~1 s",
        ),
        (
            "all terminal after",
            f"{result.seconds:.0f} s" + (" (TIMED OUT)" if result.timed_out else ""),
        ),
        ("phases at the end", ", ".join(f"{k} {v}" for k, v in sorted(result.phases.items()))),
        (
            "missing at the end / not terminal / seen disappearing",
            f"{missing} / {unfinished} / {len(f.lost)}",
        ),
        ("admitted other than exactly once", str(len(not_once))),
        ("Succeeded without a mesh output", str(len(result.without_mesh))),
        (
            "snapshots taken (one LIST each) / queued-job positions checked",
            f"{f.snapshots} / {f.positions_seen}",
        ),
        ("two Queued jobs sharing a queuePosition", str(len(f.duplicate_positions))),
        (
            "admissions checked / out of priority-then-FIFO order",
            f"{f.admissions_checked} / {len(f.order_violations)}",
        ),
        (
            f"most Running at once (limit {max_running}) / longest queue",
            f"{f.max_running} / {f.max_queued}",
        ),
        ("phase went backwards", str(len(f.went_back))),
        ("operator RSS at start / peak", f"{ob.mib(result.rss_first)} / {ob.mib(result.rss_peak)}"),
        (
            "load average during the run",
            f"{min(result.load_averages):.1f}-{max(result.load_averages):.1f} (1-min)",
        ),
    ]
    out = f"### {count} ReconJobs over {seconds / 60:.0f} minutes\n\n"
    out += table(rows, ("check", "result"))
    kinds = {
        "queuePosition shared": f.duplicate_positions,
        "admitted out of order": f.order_violations,
        "over capacity": f.over_capacity,
        "disappeared": f.lost,
        "phase went backwards": f.went_back,
        "not admitted exactly once": [f"{n}: {result.admitted_events.get(n, 0)}" for n in not_once],
    }
    seen = [(k, v) for k, v in kinds.items() if v]
    if seen:
        out += "\n\nFirst problems seen, by kind (t: seconds on the script's monotonic clock):\n"
        for label, items in seen:
            out += f"\n{label} ({len(items)}):\n" + "\n".join(f"- {p}" for p in items[:6]) + "\n"
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("burst", help="200 ReconJobs applied at once")
    sub.add_parser("drain", help="500 ReconJobs queued behind maxRunningJobs=4")
    sub.add_parser("load", help="500 ReconJobs over 5 minutes, checked")
    for name in ("burst", "drain", "load"):
        sub.choices[name].add_argument("--count", type=int)
    sub.choices["load"].add_argument("--seconds", type=float, help="submission period")
    args = parser.parse_args(argv)
    kwargs: dict[str, float] = {"count": args.count} if args.count else {}
    if getattr(args, "seconds", None):
        kwargs["seconds"] = args.seconds
    runs: dict[str, Callable[..., str]] = {"burst": burst, "drain": drain, "load": load}
    print(runs[args.command](**kwargs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
