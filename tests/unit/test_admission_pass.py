"""One admission pass, its launches stood in for: which jobs it starts, in which order,
when a launch takes long enough for the queue to change under it (as it does on a loaded
API server, where creating the RBAC and the Job takes seconds)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from recon_operator.admission import IDLE_PASS, Admission, Launch
from recon_operator.registry import Known, Registry
from recon_operator.runtime import Runtime
from recon_operator.settings import Settings

from tests.support.reconjobs import body


def queued(name: str, priority: int, created: str) -> dict:
    data = body(name, uid=f"uid-{name}", created=created, status={"phase": "Queued"})
    data["spec"]["priority"] = priority
    return data


class StoodInLaunches(Admission):
    """Admission whose launch records the job as Running in the registry, as the real one
    does once its status write is back, without creating anything in a cluster; ``during``
    runs inside the n-th launch (the queue changing meanwhile)."""

    def __init__(self, rt: Runtime, during: dict[int, Callable[[Registry], object]]) -> None:
        super().__init__(rt)
        self.during = during
        self.outcomes: dict[str, Launch] = {}
        self.launched: list[str] = []

    async def launch(self, known: Known, kueue_queue: str | None = None) -> Launch:
        name = known.job.metadata["name"]
        self.launched.append(name)
        hook = self.during.get(len(self.launched))
        if hook is not None:
            hook(self.rt.registry)
        outcome = self.outcomes.get(name, Launch.STARTED)
        if outcome is Launch.STARTED:
            started = dict(known.body, status={"phase": "Running"})
            self.rt.registry.observe(started)
        return outcome


def runtime(max_running: int, *bodies: dict) -> Runtime:
    # The stood-in launches never reach the cluster.
    rt = Runtime(settings=Settings(max_running_jobs=max_running), cluster=None)  # type: ignore[arg-type]
    rt.registry.seed(bodies)
    return rt


def test_a_job_queued_during_a_launch_goes_before_the_jobs_behind_it() -> None:
    rt = runtime(
        2,
        queued("p5-a", 5, "2025-01-01T12:00:01Z"),
        queued("p5-b", 5, "2025-01-01T12:00:02Z"),
    )
    late = queued("p9", 9, "2025-01-01T12:00:03Z")
    admission = StoodInLaunches(rt, {1: lambda registry: registry.observe(late)})
    asyncio.run(admission.pass_once())
    assert admission.launched == ["p5-a", "p9"]
    phases = {k.job.metadata["name"]: k.job.status.phase for k in rt.registry.all()}
    assert phases == {"p5-a": "Running", "p9": "Running", "p5-b": "Queued"}


def test_a_slot_freed_during_a_launch_is_filled_in_the_same_pass() -> None:
    old = body("old", uid="uid-old", status={"phase": "Running"})
    rt = runtime(
        2,
        old,
        queued("first", 0, "2025-01-01T12:00:01Z"),
        queued("second", 0, "2025-01-01T12:00:02Z"),
    )
    finished = dict(old, status={"phase": "Succeeded"})
    admission = StoodInLaunches(rt, {1: lambda registry: registry.observe(finished)})
    asyncio.run(admission.pass_once())
    assert admission.launched == ["first", "second"]


def test_a_skipped_job_is_passed_once_and_the_jobs_behind_it_go_on() -> None:
    rt = runtime(
        2,
        queued("conflict", 9, "2025-01-01T12:00:01Z"),
        queued("next", 0, "2025-01-01T12:00:02Z"),
        queued("last", 0, "2025-01-01T12:00:03Z"),
    )
    admission = StoodInLaunches(rt, {})
    admission.outcomes["conflict"] = Launch.SKIPPED
    asyncio.run(admission.pass_once())
    assert admission.launched == ["conflict", "next", "last"]


def test_a_failed_launch_holds_the_jobs_behind_it_for_the_retry() -> None:
    rt = runtime(
        3,
        queued("front", 9, "2025-01-01T12:00:01Z"),
        queued("behind", 0, "2025-01-01T12:00:02Z"),
    )
    admission = StoodInLaunches(rt, {})
    admission.outcomes["front"] = Launch.FAILED
    sleep = asyncio.run(admission.pass_once())
    assert admission.launched == ["front"]
    assert sleep < IDLE_PASS, "a failed launch is retried sooner than the idle pass"
