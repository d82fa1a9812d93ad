"""Admission on the stack: at most maxRunningJobs at once, priority then creation order,
positions kept right as the queue moves, and an operator killed mid-job that comes back
without a second Job."""

from __future__ import annotations

import json
import time

import pytest

from tests.support import captures
from tests.support.operator_process import (
    BUCKET,
    apply,
    events,
    get,
    jobs,
    reconjob_manifest,
    running_operator,
    status,
)
from tests.support.stack_handle import wait_for


@pytest.fixture(scope="module")
def operator(stack, tmp_path_factory):
    env = {"RECON_MAX_RUNNING_JOBS": "2"}
    with running_operator(stack, "op-queue", tmp_path_factory.mktemp("operator"), env) as op:
        yield op


def phases(stack, ns):
    out = stack.kubectl("get", "reconjobs", "-n", ns, "-o", "json").stdout
    return {
        i["metadata"]["name"]: (i.get("status") or {}).get("phase")
        for i in json.loads(out)["items"]
    }


def admitted_at(stack, ns, name):
    (event,) = [e for e in events(stack, ns, name) if e["reason"] == "Admitted"]
    return int(event["metadata"]["resourceVersion"])


def test_priority_order_and_positions_with_two_slots(stack, operator):
    ns = operator.namespace
    client = stack.minio_client()
    # The two holders outlast the six applies below even on a loaded machine, so every
    # queued job is still queued when the positions are read.
    captures.upload(client, BUCKET, "hold/sleep20/", captures.files(6))
    captures.upload(client, BUCKET, "q/sleep2/", captures.files(6))
    apply(stack, ns, reconjob_manifest("hold-a", "hold/sleep20/"))
    apply(stack, ns, reconjob_manifest("hold-b", "hold/sleep20/"))
    wait_for(lambda: list(phases(stack, ns).values()) == ["Running", "Running"], 30)

    # name: priority; applied one by one so creation order is the name order within a priority
    wanted = {"p0-first": 0, "p5": 5, "p0-second": 0, "p9": 9, "neg": -1, "p5-later": 5}
    for name, priority in wanted.items():
        apply(stack, ns, reconjob_manifest(name, "q/sleep2/", priority=priority))
        time.sleep(1.1)  # distinct creation timestamps
    expected = ["p9", "p5", "p5-later", "p0-first", "p0-second", "neg"]

    def queue_positions() -> dict[str, int] | None:
        """One reading of every job's position, or None while any is missing."""
        snapshot = {n: status(stack, ns, n).get("queuePosition") for n in expected}
        return snapshot if all(snapshot.values()) else None

    positions = wait_for(queue_positions, 30, what="every queued job has a position")
    assert positions == {n: i for i, n in enumerate(expected, start=1)}
    running = [n for n, p in phases(stack, ns).items() if p == "Running"]
    assert sorted(running) == ["hold-a", "hold-b"]

    # as the queue drains, never more than two run, positions move up, order is kept
    seen_positions: dict[str, list[int]] = {n: [] for n in expected}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        current = phases(stack, ns)
        assert sum(1 for p in current.values() if p == "Running") <= 2, current
        for n in expected:
            pos = status(stack, ns, n).get("queuePosition")
            if pos is not None:
                seen_positions[n].append(pos)
        if all(p == "Succeeded" for p in current.values()):
            break
        time.sleep(0.5)
    assert all(p == "Succeeded" for p in phases(stack, ns).values()), phases(stack, ns)
    order = sorted(expected, key=lambda n: admitted_at(stack, ns, n))
    assert order == expected
    for n, seen in seen_positions.items():
        assert seen == sorted(seen, reverse=True), (n, seen)


def test_operator_killed_mid_job_comes_back_without_a_second_job(stack, operator):
    ns = operator.namespace
    captures.upload(stack.minio_client(), BUCKET, "crash/sleep8/", captures.files(6))
    apply(stack, ns, reconjob_manifest("crash", "crash/sleep8/"))
    wait_for(lambda: status(stack, ns, "crash").get("phase") == "Running", 30)
    operator.kill()
    # while it is down: another job arrives, and the first one's runner keeps going
    apply(stack, ns, reconjob_manifest("while-down", "crash/sleep8/"))
    time.sleep(2)
    operator.start()
    stack.kubectl("wait", "--for=condition=Succeeded", "reconjob/crash", "-n", ns, "--timeout=90s")
    stack.kubectl(
        "wait", "--for=condition=Succeeded", "reconjob/while-down", "-n", ns, "--timeout=90s"
    )
    crash_jobs = [j for j in jobs(stack, ns) if j["metadata"]["name"] == "crash-recon"]
    assert len(crash_jobs) == 1
    st = get(stack, ns, "crash")["status"]
    assert st["attempts"] == 1 and st["progress"]["percent"] == 100
    assert [e["reason"] for e in events(stack, ns, "crash")].count("Admitted") == 1
