"""The admission loop: one cluster-wide pass that starts queued jobs when slots free up.

Admission runs on every wake-up, so a job starts as soon as it is queued, and in queue
order: jobs are started one after the other, and when one cannot be started for the moment
the jobs behind it wait for the retry rather than overtake it. Beside it run the position
writer (`positions.py`) and the housekeeping sweep (`sweep.py`), started once the queue is
rebuilt from the API server; neither ever holds an admission up.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from typing import Any

from kubernetes.client.exceptions import ApiException
from recon_api.constants import Phase

from recon_operator import children, jobspec, kueue, lifecycle, queue, sweep
from recon_operator.cluster import NotOwnedError, namespace_gone
from recon_operator.lifecycle import StatusChange
from recon_operator.positions import PositionWriter
from recon_operator.registry import Known
from recon_operator.runtime import Runtime, utcnow

log = logging.getLogger(__name__)

# The longest sleep between passes when nothing wakes the loop.
IDLE_PASS = 5.0
# A RoleBinding is refused (404) until the API server's RBAC check can see its Role, which
# it reads from a cache that trails the Role's creation by a moment: retried this often.
BINDING_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8)
# After a job could not be started, the next try (doubling up to IDLE_PASS).
RETRY_FIRST = 0.5


class Launch(enum.Enum):
    STARTED = "started"
    # Will not start (its namespace is going away, a name conflict, cancelled meanwhile,
    # a Job the API server rejects): the jobs behind it go on.
    SKIPPED = "skipped"
    # Could not be started for the moment: retried soon, and the jobs behind it wait.
    FAILED = "failed"


class Admission:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.positions = PositionWriter(rt)
        self._failures = 0
        self.ready = False

    async def rebuild(self) -> None:
        """The queue after a restart: everything the API server knows, before any decision,
        so running jobs are counted and none is admitted twice."""
        bodies = await self.rt.call(self.rt.cluster.list_reconjobs, self.rt.settings.namespaces)
        self.rt.registry.seed(bodies)
        self.ready = True
        self.rt.listed.set()

    async def run(self) -> None:
        while not self.ready:
            try:
                await self.rebuild()
            except Exception:
                log.exception("listing ReconJobs failed; retrying")
                await asyncio.sleep(2)
        beside = [
            asyncio.create_task(self.positions.run()),
            asyncio.create_task(sweep.run(self.rt)),
        ]
        try:
            timeout = 0.0
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.rt.wakeup.wait(), timeout=timeout)
                self.rt.wakeup.clear()
                try:
                    timeout = await self.pass_once()
                except Exception:
                    log.exception("admission pass failed; retrying")
                    timeout = 2.0
        finally:
            for task in beside:
                task.cancel()
            for task in beside:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def pass_once(self) -> float:
        """One pass; returns how long the loop may sleep when nothing wakes it."""
        entries = self.rt.registry.entries()
        plan = queue.plan(
            entries, self.rt.settings.max_running_jobs, self.rt.settings.kueue_default_queue
        )
        sleep = IDLE_PASS
        for entry, queue_name in plan.hand_over:
            # Kueue's jobs wait in Kueue's queues, not in this one: each is handed over on
            # its own, and one that cannot be created now holds up no other.
            known = self.rt.registry.get(entry.uid)
            if known is None or self.rt.registry.cancelling(entry.uid):
                continue
            if known.body["metadata"].get("deletionTimestamp"):
                continue
            if await self.launch(known, kueue_queue=queue_name) is Launch.FAILED:
                sleep = min(sleep, RETRY_FIRST * 2 ** min(self._failures, 4))
        # One job at a time, the queue read afresh before each: a launch takes a while
        # (seconds on a loaded API server), and a job queued meanwhile may belong ahead of
        # the ones this pass saw when it began.
        passed: set[str] = set()
        while (
            front := queue.next_admission(
                self.rt.registry.entries(),
                self.rt.settings.max_running_jobs,
                self.rt.settings.kueue_default_queue,
                passed,
            )
        ) is not None:
            passed.add(front.uid)
            known = self.rt.registry.get(front.uid)
            if known is None or self.rt.registry.cancelling(front.uid):
                continue
            if known.body["metadata"].get("deletionTimestamp"):
                continue  # being deleted (with its namespace, perhaps): never started
            if await self.launch(known) is Launch.FAILED:
                # The jobs behind it wait: none may start before a job ahead of it.
                sleep = min(sleep, RETRY_FIRST * 2 ** min(self._failures, 4))
                self._failures += 1
                break
        else:
            self._failures = 0
        self.positions.due()
        self.rt.metrics.set_phases(self.rt.registry.count_by_phase())
        return sleep

    async def launch(self, known: Known, kueue_queue: str | None = None) -> Launch:
        """Create the per-job RBAC and the Job, then record the admission; for Kueue
        (``kueue_queue``), the Job suspended in that LocalQueue, recorded as handed over."""
        job = known.job
        uid = job.uid
        name = jobspec.child_name(job.metadata["name"])
        try:
            # The Role before its RoleBinding: binding it is only allowed once the API
            # server sees the Role (the operator must hold what it grants).
            await asyncio.gather(
                self._create(jobspec.build_service_account(job), uid),
                self._create(jobspec.build_role(job), uid),
            )
            await self._create_binding(jobspec.build_role_binding(job), uid)
            labels = None if kueue_queue is None else kueue.job_labels(job, kueue_queue)
            await self._create(jobspec.build_job(job, self.rt.settings, labels), uid)
            if self.rt.registry.cancelling(uid):
                # Cancelled while the Job was being created: the cancel already deleted
                # by name, perhaps before the Job existed.
                await self.rt.call(self.rt.cluster.delete_job, job.metadata["namespace"], name)
                return Launch.SKIPPED
        except NotOwnedError as e:
            change = StatusChange(job, utcnow())
            change.note("NameConflict", str(e), warning=True)
            await self.rt.apply(known.body, change.result())
            return Launch.SKIPPED
        except ApiException as e:
            if namespace_gone(e):
                return Launch.SKIPPED
            log.warning("creating Job %s for %s failed: %s %s", name, uid, e.status, e.reason)
            # A Job the API server rejects as invalid will not get better by waiting.
            return Launch.SKIPPED if e.status in (400, 422) else Launch.FAILED
        except Exception as e:  # the API server unreachable, a timeout
            log.warning("creating Job %s for %s failed: %s", name, uid, type(e).__name__)
            return Launch.FAILED
        latest = self.rt.registry.get(uid)
        if latest is None or latest.job.status.phase != Phase.QUEUED:
            # Cancelled (or deleted) and already recorded while the Job was being created:
            # the Job goes, and the admission is not written over the finished status.
            await self.rt.call(self.rt.cluster.delete_job, job.metadata["namespace"], name)
            return Launch.SKIPPED
        if kueue_queue is not None:
            recorded = await self.rt.write(
                uid, lambda k: kueue.hand_over(k.job, name, kueue_queue, utcnow())
            )
            if recorded is None or not kueue.handed_over(recorded.job):
                await self.rt.call(self.rt.cluster.delete_job, job.metadata["namespace"], name)
                return Launch.SKIPPED
            workload = self.rt.registry.workload(uid)
            if workload is not None:
                # Kueue's Workload came before the hand-over was recorded.
                await self.rt.write(uid, lambda k: kueue.from_workload(k.job, workload, utcnow()))
            await children.replay_early(self.rt, uid)
            return Launch.STARTED
        recorded = await self.rt.write(uid, lambda k: lifecycle.admitted(k.job, name, utcnow()))
        if recorded is None or recorded.job.status.phase != Phase.RUNNING:
            # Cancelled or deleted while the admission was being written.
            await self.rt.call(self.rt.cluster.delete_job, job.metadata["namespace"], name)
            return Launch.SKIPPED
        await children.replay_early(self.rt, uid)
        return Launch.STARTED

    async def _create(self, obj: dict[str, Any], uid: str) -> None:
        self.rt.metrics.api_writes.labels(kind="create").inc()
        await self.rt.call(self.rt.cluster.create_owned, obj, uid)

    async def _create_binding(self, obj: dict[str, Any], uid: str) -> None:
        """The RoleBinding, retried briefly while the API server does not see its Role."""
        for delay in (*BINDING_RETRY_DELAYS, None):
            try:
                await self._create(obj, uid)
                return
            except ApiException as e:
                if e.status != 404 or delay is None or namespace_gone(e):
                    raise
            await asyncio.sleep(delay)
