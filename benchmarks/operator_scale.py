"""The operator under many ReconJobs, on a local stack of its own, with the stand-in runner.

    .venv/bin/python benchmarks/operator_scale.py burst   # 200 applied at once
    .venv/bin/python benchmarks/operator_scale.py drain   # 500 queued behind 4 run slots
    .venv/bin/python benchmarks/operator_scale.py load    # 500 over 5 minutes, checked
    .venv/bin/python benchmarks/operator_scale.py positions  # the position rule alone

Each sub-command starts its own stack (with the API server's audit log on) in a temporary
directory, runs `recon operator` as a subprocess with the chart's RBAC, prints a markdown
table on stdout (progress goes to stderr) and stops the stack.

burst: 200 ReconJobs in one `kubectl apply -f` of a List (one in ten with a view count
that does not match the capture, so it fails validation); the time until every job is
past validation (Queued, Running or Failed), then until every queued job shows its
queuePosition; the operator's peak RSS.

drain: 500 ReconJobs (`--count`) applied at once behind maxRunningJobs=4, runners of about a
second (`--runner-seconds`); the operator's write requests (from the audit log) per job and
by kind, from the apply until every job is terminal; the time from a runner Job's completion
to the creation of the Job that takes its slot (median, p99), and the drain's throughput
against what the slots allow with the runner Jobs' measured run time (both from a watch of
the Jobs); every queued job's shown position against its true one in each snapshot (one
LIST a second); the queue checks of the load scenario (order, capacity, none lost, no
shared exact position), each job's Admitted Events, runner Jobs created twice; the time of
`kubectl get reconjobs`; the operator's peak RSS. `--restart` SIGKILLs the operator when
half the jobs are terminal and starts it again: the queue is rebuilt from the API server.

    .venv/bin/python benchmarks/operator_scale.py drain --count 2000 --runner-seconds 0 --restart

positions: no cluster; the operator's `queue.position_writes` over a queue of 500 and 2,000
draining k jobs between two position passes (k = 1, 3, 10): position writes per job.

load: 500 ReconJobs of mixed priority over 5 minutes behind maxRunningJobs=4; every job must
end Succeeded, admitted once, never jump a job ahead of it, never share a queuePosition.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import operator_bench as ob
from recon_operator import queue

from tests.support.load_scenario import manifest, run_load
from tests.support.queue_observer import TERMINAL, Findings, QueueChecker, Snapshot, parse

SETTLED = frozenset({"Queued", "Running", "Succeeded", "Failed"})


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

            ok = ob.wait_until(settled, 300, 0.25, required=False)
            settled_s = time.monotonic() - t0
            ob.log(f"settled={ok} after {settled_s:.1f}s: {ob.phase_counts(state['items'])}")

            def positioned() -> bool:
                items = ob.list_reconjobs(api, ns)
                return all(
                    (i.get("status") or {}).get("queuePosition")
                    for i in items
                    if ob.phase_of(i) == "Queued"
                )

            ob.wait_until(positioned, 120, 0.25, required=False)
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
    return f"### {count} ReconJobs at once\n\n" + ob.table(rows, ("measure", "result", "target"))


# ------------------------------------------------------------------ drain


@dataclass
class PositionTally:
    """Every queued job's shown position in every snapshot, against its true position in
    that snapshot (the snapshot can catch a pass half-way, or a moment before one)."""

    seen: int = 0
    blank: int = 0
    within: int = 0
    below_truth: int = 0
    above_bound: int = 0

    def add(self, snap: Snapshot) -> None:
        queued = sorted(
            (j for j in snap.jobs.values() if j.phase == "Queued"),
            key=lambda j: (-j.priority, j.created, j.name),
        )
        for truth, job in enumerate(queued, start=1):
            self.seen += 1
            if job.position is None:
                self.blank += 1
            elif job.position < truth:
                self.below_truth += 1
            elif job.position > queue.upper_bound(truth):
                self.above_bound += 1
            else:
                self.within += 1

    def share(self, n: int) -> str:
        return f"{n} ({100 * n / max(1, self.seen):.1f}%)"


def refills(
    created_at: dict[str, float], finished_at: dict[str, float], max_running: int, since: float
) -> list[tuple[float, float]]:
    """(completion, latency to the Job that took the freed slot) for every completion after
    ``since`` that had a job waiting: the k-th Job to finish frees the slot that the
    (k + max_running)-th Job to be created takes."""
    created = sorted(created_at.values())
    finished = sorted(finished_at.values())
    pairs = []
    for k, done in enumerate(finished):
        if k + max_running >= len(created):
            break
        if done >= since:
            pairs.append((done, created[k + max_running] - done))
    return pairs


def admitted_events(bench: ob.Bench, ns: str) -> Counter[str]:
    out = bench.handle.kubectl(
        "get", "events", "-n", ns, "--field-selector", "reason=Admitted", "-o", "json"
    ).stdout
    counts: Counter[str] = Counter()
    for event in json.loads(out)["items"]:
        counts[event["involvedObject"]["name"]] += int(event.get("count") or 1)
    return counts


def drain(
    count: int = 500, max_running: int = 4, runner_seconds: int = 1, restart: bool = False
) -> str:
    with ob.bench_stack() as bench, contextlib.ExitStack() as samplers:
        prefix = f"drain/sleep{runner_seconds}/"
        ns = ob.namespace_with_capture(bench, "drain", [prefix])
        op = ob.start_operator(bench, ns, max_running=max_running)
        assert op.proc is not None
        api = bench.api()
        items = [manifest(f"drain-{i:04d}", prefix) for i in range(count)]
        checker = QueueChecker(max_running)
        tally = PositionTally()
        rss = [samplers.enter_context(ob.RssSampler(op.proc.pid))]
        validated_at = validated_mono = 0.0
        killed_at = back_at = 0.0
        with ob.LoadTracker() as load, ob.JobClock(api, ns) as clock:
            wall0 = time.time()
            t0 = time.monotonic()
            ob.kubectl_apply(bench, ns, items)
            ob.log(f"applied {count} in {time.monotonic() - t0:.1f}s")
            last_log = 0.0
            while True:
                listed = ob.list_reconjobs(api, ns)
                snap = parse(listed, time.monotonic())
                checker.add(snap)
                phases = [ob.phase_of(i) for i in listed]
                if not validated_at and len(phases) == count and all(p in SETTLED for p in phases):
                    validated_at, validated_mono = time.time(), time.monotonic()
                if validated_at:
                    # Before, jobs still join the queue ahead of others as they pass
                    # validation, which moves those back until the next position pass.
                    tally.add(snap)
                done = sum(1 for p in phases if p in TERMINAL)
                if len(phases) == count and done == count:
                    break
                if restart and not killed_at and done >= count // 2:
                    ob.log(f"killing the operator with {done} of {count} terminal")
                    killed_at = time.monotonic()
                    op.kill()
                    op.start()
                    back_at = time.monotonic()
                    assert op.proc is not None
                    rss.append(samplers.enter_context(ob.RssSampler(op.proc.pid)))
                    ob.log(f"operator back after {back_at - killed_at:.1f}s")
                if time.monotonic() - last_log > 30:
                    last_log = time.monotonic()
                    ob.log(f"{ob.phase_counts(listed)}; operator RSS {ob.mib(rss[-1].last)}")
                if time.monotonic() - t0 > 3600:
                    ob.log("gave up after an hour")
                    break
                # A LIST of thousands is work for the API server and this script too: the
                # longer the queue, the further apart the snapshots.
                time.sleep(max(1.0, count / 1000))
            wall1 = time.time()
            total_s = time.monotonic() - t0
            time.sleep(1)
        phases_end = ob.phase_counts(ob.list_reconjobs(api, ns))
        get_times = []
        for _ in range(3):
            g0 = time.monotonic()
            bench.handle.kubectl("get", "reconjobs", "-n", ns)
            get_times.append(time.monotonic() - g0)
        admissions = admitted_events(bench, ns)
        op.stop()
        events = ob.audit_events(bench.stack.audit_log, ob.operator_username())
    raw = DrainRun(
        count=count,
        max_running=max_running,
        runner_seconds=runner_seconds,
        restart=restart,
        events=events,
        wall0=wall0,
        wall1=wall1,
        total_s=total_s,
        validated_at=validated_at,
        validated_mono=validated_mono,
        killed_at=killed_at,
        back_at=back_at,
        created=dict(clock.created),
        finished=dict(clock.finished),
        added_twice=list(clock.added_twice),
        findings=checker.findings,
        tally=tally,
        phases_end=phases_end,
        get_times=get_times,
        admissions=admissions,
        names=[i["metadata"]["name"] for i in items],
        rss_first=rss[0].first,
        rss_peak=max(r.peak for r in rss),
        load=load.summary(),
    )
    keep = os.environ.get("RECON_BENCH_RAW")
    if keep:
        # The measurements, so that the report can be printed again without a rerun.
        with open(keep, "wb") as out:
            pickle.dump(raw, out)
    return drain_report(raw)


@dataclass
class DrainRun:
    count: int
    max_running: int
    runner_seconds: int
    restart: bool
    events: list[ob.AuditEvent]
    wall0: float
    wall1: float
    total_s: float
    validated_at: float
    validated_mono: float
    killed_at: float
    back_at: float
    created: dict[str, float]
    finished: dict[str, float]
    added_twice: list[str]
    findings: Findings
    tally: PositionTally
    phases_end: dict[str, int]
    get_times: list[float]
    admissions: Counter[str]
    names: list[str]
    rss_first: int
    rss_peak: int
    load: str


def drain_report(r: DrainRun) -> str:
    count, max_running, runner_seconds = r.count, r.max_running, r.runner_seconds
    restart = r.restart
    wall0, wall1, total_s, validated_at = r.wall0, r.wall1, r.total_s, r.validated_at
    killed_at, back_at, phases_end, get_times = r.killed_at, r.back_at, r.phases_end, r.get_times
    tally, admissions = r.tally, r.admissions
    whole = ob.between(r.events, wall0, wall1)
    writes = [e for e in whole if e.verb in ob.WRITE_VERBS]
    draining = [e for e in writes if e.received >= validated_at]
    drain_s = wall1 - validated_at
    bins = Counter(int((e.received - wall0) // 10) for e in writes)
    kinds = Counter(
        f"{e.verb} {e.resource}{'/' + e.subresource if e.subresource else ''}" for e in writes
    )
    pairs = refills(r.created, r.finished, max_running, r.validated_mono)
    if restart:
        # The slots that freed while the operator was down are refilled once it is back.
        outage = [lat for at, lat in pairs if killed_at - 1 <= at <= back_at]
        pairs = [(at, lat) for at, lat in pairs if not killed_at - 1 <= at <= back_at]
    latencies = [lat for _, lat in pairs]
    holds = [r.finished[n] - r.created[n] for n in r.finished if n in r.created]
    mean_hold = statistics.mean(holds) if holds else float("nan")
    finishes = sorted(t for t in r.finished.values() if t >= r.validated_mono)
    span = finishes[-1] - finishes[0] if len(finishes) > 1 else float("nan")
    rate = (len(finishes) - 1) / span if span > 0 else float("nan")
    allowed = max_running / mean_hold
    f = r.findings
    not_once = sorted(n for n in r.names if admissions[n] != 1)
    rows = [
        (f"ReconJobs applied at once, maxRunningJobs={max_running}", str(count)),
        ("runner", f"stand-in, {runner_seconds} s of stages (plus process start)"),
        ("apply to every job terminal", f"{total_s:.0f} s ({count / total_s * 60:.0f} jobs/min)"),
        ("phases at the end", ", ".join(f"{k} {v}" for k, v in sorted(phases_end.items()))),
        ("queue draining (all validated to all terminal)", f"{drain_s:.0f} s"),
        ("operator write requests, apply to all terminal", str(len(writes))),
        ("writes per job (target <= 15)", f"{len(writes) / count:.1f}"),
        ("... of them while draining (all validated to all terminal)", str(len(draining))),
        (
            "writes per job, by kind",
            ", ".join(f"{k}: {v / count:.2f}" for k, v in kinds.most_common()),
        ),
        ("operator write rate, mean", f"{len(writes) / (wall1 - wall0):.1f} req/s"),
        ("operator write rate, busiest 10 s", f"{max(bins.values(), default=0) / 10:.1f} req/s"),
        ("operator requests of any verb, apply to all terminal", str(len(whole))),
        (
            "freed slot to next Job created: median / p99 / max (target <= 0.5 s / <= 2 s)",
            f"{ob.percentile(latencies, 50):.2f} s / {ob.percentile(latencies, 99):.2f} s / "
            f"{max(latencies, default=float('nan')):.2f} s ({len(latencies)} refills)",
        ),
        ("runner Job created to finished (watch), mean", f"{mean_hold:.2f} s"),
        (
            "drain throughput / what the slots allow (target >= 80%)",
            f"{rate:.2f} / {allowed:.2f} jobs/s ({100 * rate / allowed:.0f}%)",
        ),
        (
            "snapshots (one LIST each, every max(1, count/1000) s) / queued positions checked",
            f"{f.snapshots} / {tally.seen}",
        ),
        (
            "shown positions (from all validated) within bounds / blank / below the truth / over "
            "the 10% bound",
            f"{tally.share(tally.within)} / {tally.share(tally.blank)} / "
            f"{tally.share(tally.below_truth)} / {tally.share(tally.above_bound)}",
        ),
        ("two Queued jobs sharing an exact position (1-10)", str(len(f.duplicate_positions))),
        (
            "admissions checked / out of priority-then-FIFO order",
            f"{f.admissions_checked} / {len(f.order_violations)}",
        ),
        (
            f"most Running at once (limit {max_running}) / longest queue",
            f"{f.max_running} / {f.max_queued}",
        ),
        ("lost / phase went backwards", f"{len(f.lost)} / {len(f.went_back)}"),
        (
            "admitted other than once (Admitted Events) / runner Jobs created twice",
            f"{len(not_once)} / {len(r.added_twice)}",
        ),
        (
            f"`kubectl get reconjobs` of {count}, three runs",
            " / ".join(f"{t:.2f} s" for t in get_times),
        ),
        ("operator RSS at start / peak", f"{ob.mib(r.rss_first)} / {ob.mib(r.rss_peak)}"),
        ("load average during the run", r.load),
    ]
    if restart:
        rows.insert(
            -2,
            (
                "operator SIGKILLed at half-drain: back (ready) after / slots freed meanwhile "
                "refilled after, max",
                f"{back_at - killed_at:.1f} s / {max(outage, default=float('nan')):.1f} s",
            ),
        )
    out = f"### {count} ReconJobs queued behind {max_running} run slots\n\n" + ob.table(
        rows, ("measure", "result")
    )
    problems = {
        "exact position shared": f.duplicate_positions,
        "admitted out of order": f.order_violations,
        "over capacity": f.over_capacity,
        "disappeared": f.lost,
        "phase went backwards": f.went_back,
        "not admitted exactly once": [f"{n}: {admissions[n]}" for n in not_once],
        "Job created twice": r.added_twice,
    }
    for label, found in problems.items():
        if found:
            out += f"\n\n{label} ({len(found)}):\n" + "\n".join(f"- {p}" for p in found[:6])
    return out


# ------------------------------------------------------------------ positions


def position_cost(count: int, per_pass: int) -> float:
    """Position writes per job, from the operator's own `queue.position_writes`, for a queue
    of ``count`` draining ``per_pass`` jobs between two position passes."""
    waiting = [f"j{i}" for i in range(count)]
    shown: dict[str, int | None] = dict.fromkeys(waiting)
    writes = 0
    while waiting:
        truth = {uid: i for i, uid in enumerate(waiting, start=1)}
        for wave in queue.position_writes(shown, truth):
            for w in wave:
                shown[w.uid] = w.position
                writes += 1
        for uid in waiting[:per_pass]:
            shown.pop(uid)
        waiting = waiting[per_pass:]
    return writes / count


def positions(slack: int = queue.SLACK_PERCENT) -> str:
    """No cluster: the pure rule, with the bound at ``slack`` percent."""
    queue.SLACK_PERCENT = slack
    rows = [(f"{n:,}", *(f"{position_cost(n, k):.1f}" for k in (1, 3, 10))) for n in (500, 2000)]
    header = ("queue", "k = 1", "k = 3", "k = 10")
    return f"### Position writes per job, bound {slack}%\n\n" + ob.table(rows, header)


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
    out += ob.table(rows, ("check", "result"))
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
    sub.choices["drain"].add_argument("--runner-seconds", type=int, help="stand-in stages")
    sub.choices["drain"].add_argument(
        "--restart", action="store_true", help="SIGKILL the operator at half-drain, restart it"
    )
    sub.add_parser("load", help="500 ReconJobs over 5 minutes, checked")
    for name in ("burst", "drain", "load"):
        sub.choices[name].add_argument("--count", type=int)
    sub.choices["load"].add_argument("--seconds", type=float, help="submission period")
    sub.add_parser("positions", help="position writes per job, from the rule alone")
    sub.choices["positions"].add_argument("--slack", type=int, help="bound in percent")
    again = sub.add_parser("drain-report", help="print a kept drain run again")
    again.add_argument("raw", help="the file RECON_BENCH_RAW named")
    args = parser.parse_args(argv)
    if args.command == "drain-report":
        with open(args.raw, "rb") as kept:
            print(drain_report(pickle.load(kept)))
        return 0
    count = getattr(args, "count", None)
    kwargs: dict[str, float] = {"count": count} if count else {}
    if getattr(args, "seconds", None):
        kwargs["seconds"] = args.seconds
    if getattr(args, "runner_seconds", None) is not None:
        kwargs["runner_seconds"] = args.runner_seconds
    if getattr(args, "restart", False):
        kwargs["restart"] = True
    if args.command == "positions":
        kwargs = {"slack": args.slack} if args.slack else {}
    runs: dict[str, Callable[..., str]] = {
        "burst": burst,
        "drain": drain,
        "load": load,
        "positions": positions,
    }
    print(runs[args.command](**kwargs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
