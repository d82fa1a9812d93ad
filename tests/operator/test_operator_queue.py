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
    condition,
    events,
    get,
    jobs,
    reconjob_manifest,
    status,
)
from tests.support.queue_observer import QueueWatch
from tests.support.stack_handle import wait_for


@pytest.fixture(scope="module")
def operator_env():
    return {"RECON_MAX_RUNNING_JOBS": "2"}


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
    # The holders run until they are deleted, so every queued job is sure to still be
    # queued when the positions are read, however loaded the machine is.
    captures.upload(client, BUCKET, "hold/hang/", captures.files(6))
    captures.upload(client, BUCKET, "q/sleep2/", captures.files(6))
    # name: priority. Applied at once: creation order is the same second or name order,
    # and within one second ties go by name, so the name order is the FIFO order.
    wanted = {"p0-a": 0, "p5-a": 5, "p0-b": 0, "p9": 9, "neg": -1, "p5-b": 5}
    expected = ["p9", "p5-a", "p5-b", "p0-a", "p0-b", "neg"]
    with QueueWatch(stack.kubeconfig, ns) as watch:
        apply(stack, ns, reconjob_manifest("hold-a", "hold/hang/"))
        apply(stack, ns, reconjob_manifest("hold-b", "hold/hang/"))
        watch.wait(
            lambda jobs: [j.phase for j in jobs.values()] == ["Running", "Running"],
            60,
            "both holders Running",
        )
        apply(
            stack,
            ns,
            *(reconjob_manifest(n, "q/sleep2/", priority=p) for n, p in wanted.items()),
        )

        def positioned(jobs):
            return len(jobs) == 8 and all(
                jobs[n].phase == "Queued" and jobs[n].position for n in expected
            )

        # One state of the API server: every position and both holders, as of one moment.
        state = watch.wait(positioned, 60, "every queued job has a position")
        assert {n: state[n].position for n in expected} == {
            n: i for i, n in enumerate(expected, start=1)
        }
        assert {n for n, j in state.items() if j.phase == "Running"} == {"hold-a", "hold-b"}
        message = condition(stack, ns, "p5-a", "Admitted")["message"]
        assert "position 2 in the queue" in message, message

        # the holders go; as the queue drains, never more than two run, positions only
        # move up, and no two queued jobs ever show one position (while the queue filled,
        # a job validated later could go ahead of one already numbered)
        watch.restart_positions()
        stack.kubectl("delete", "reconjob", "hold-a", "hold-b", "-n", ns, "--wait=false")
        watch.wait(
            lambda jobs: len(jobs) == 6 and all(j.phase == "Succeeded" for j in jobs.values()),
            180,
            "every queued job Succeeded",
        )
    assert watch.max_running <= 2, watch.max_running
    assert watch.duplicate_positions == []
    for n in expected:
        seen = watch.positions[n]
        assert seen == sorted(seen, reverse=True), (n, seen)
    order = sorted(expected, key=lambda n: admitted_at(stack, ns, n))
    assert order == expected


def test_operator_killed_mid_job_comes_back_without_a_second_job(stack, operator):
    ns = operator.namespace
    captures.upload(stack.minio_client(), BUCKET, "crash/sleep8/", captures.files(6))
    apply(stack, ns, reconjob_manifest("crash", "crash/sleep8/"))
    # Killed once the admission is recorded in full: its status and its Event. (A kill
    # between the two loses the Event, which is posted after the status write.)
    wait_for(lambda: "Admitted" in [e["reason"] for e in events(stack, ns, "crash")], 30)
    assert status(stack, ns, "crash").get("phase") == "Running"
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
