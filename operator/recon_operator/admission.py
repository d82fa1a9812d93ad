"""The admission loop: one cluster-wide pass that starts queued jobs when slots free up,
and sweeps for stalled runs and lapsed cancel requests; beside it, the position writer
that keeps the queue positions users see within their bounds.

Admission itself runs on every wake-up, so a job starts as soon as it is queued, and in
queue order: jobs are started one after the other, and when one cannot be started for the
moment the jobs behind it wait for the retry rather than overtake it. Position writes never
hold it up: they run in their own task, so a freed slot is refilled at once however many
positions are being written, and in a thread pool of their own (`Runtime.background`), so
that they never queue ahead of an admission's requests either.

Position writes are coalesced: at most one position pass every `position_interval`
seconds, patching only the jobs whose shown position is out of its bounds
(`queue.stale_positions`: exact near the front, within 10% further back), so a long queue
draining costs each job a number of writes that grows with the logarithm of its place,
never a rewrite of the whole queue per admission. The writes go in waves
(`queue.position_writes`) so that no two queued jobs ever show the same exact position on
the way. A job's status is written by one of the two at a time (`_write`): a position
patch landing after the admission would carry a stale Admitted condition.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException
from recon_api.constants import Phase

from recon_operator import cancel, children, jobspec, kueue, lifecycle, queue, stale
from recon_operator.cluster import NotOwnedError, namespace_gone
from recon_operator.lifecycle import StatusChange, Transition
from recon_operator.registry import Known
from recon_operator.runtime import Runtime, utcnow

log = logging.getLogger(__name__)

POSITION_INTERVAL = 3.0
SWEEP_INTERVAL = 5.0
# Position patches in flight at once: enough to drain a long queue quickly, few enough to
# stay a polite client of the API server.
POSITION_WRITERS = 8
# A RoleBinding is refused (404) until the API server's RBAC check can see its Role, which
# it reads from a cache that trails the Role's creation by a moment: retried this often.
BINDING_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8)
# After a job could not be started, the next try (doubling up to SWEEP_INTERVAL).
RETRY_FIRST = 0.5


class Launch(enum.Enum):
    STARTED = "started"
    # Will not start (its namespace is going away, a name conflict, cancelled meanwhile,
    # a Job the API server rejects): the jobs behind it go on.
    SKIPPED = "skipped"
    # Could not be started for the moment: retried soon, and the jobs behind it wait.
    FAILED = "failed"


class Admission:
    def __init__(self, rt: Runtime, position_interval: float = POSITION_INTERVAL) -> None:
        self.rt = rt
        self.position_interval = position_interval
        self._failures = 0
        self._last_sweep = float("-inf")
        # Set when the queue may have moved: the position writer takes a pass.
        self._positions_due = asyncio.Event()
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
        positions = asyncio.create_task(self.write_positions_forever())
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
            positions.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await positions

    async def pass_once(self) -> float:
        """One pass; returns how long the loop may sleep when nothing wakes it."""
        if time.monotonic() - self._last_sweep >= SWEEP_INTERVAL:
            # Stalls and lapsed cancel requests are judged in minutes: a sweep of every
            # job on each of the many wake-ups of a long drain would be wasted work.
            self._last_sweep = time.monotonic()
            await self.sweep()
        entries = self.rt.registry.entries()
        plan = queue.plan(
            entries, self.rt.settings.max_running_jobs, self.rt.settings.kueue_default_queue
        )
        sleep = SWEEP_INTERVAL
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
        for entry in plan.admit:
            known = self.rt.registry.get(entry.uid)
            if known is None or self.rt.registry.cancelling(entry.uid):
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
        self._positions_due.set()
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
            recorded = await self._write(
                uid, lambda k: kueue.hand_over(k.job, name, kueue_queue, utcnow())
            )
            if recorded is None or not kueue.handed_over(recorded.job):
                await self.rt.call(self.rt.cluster.delete_job, job.metadata["namespace"], name)
                return Launch.SKIPPED
            workload = self.rt.registry.workload(uid)
            if workload is not None:
                # Kueue's Workload came before the hand-over was recorded.
                await self._write(uid, lambda k: kueue.from_workload(k.job, workload, utcnow()))
            await children.replay_early(self.rt, uid)
            return Launch.STARTED
        recorded = await self._write(uid, lambda k: lifecycle.admitted(k.job, name, utcnow()))
        if recorded is None or recorded.job.status.phase != Phase.RUNNING:
            # Cancelled or deleted while the admission was being written.
            await self.rt.call(self.rt.cluster.delete_job, job.metadata["namespace"], name)
            return Launch.SKIPPED
        await children.replay_early(self.rt, uid)
        return Launch.STARTED

    async def _write(
        self, uid: str, decide: Callable[[Known], Transition], *, background: bool = False
    ) -> Known | None:
        """`Runtime.write`: the admission and the position writer both write queued jobs."""
        return await self.rt.write(uid, decide, background=background)

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

    async def write_positions_forever(self) -> None:
        """A position pass whenever the queue may have moved, at most one per interval."""
        last = float("-inf")
        while True:
            await self._positions_due.wait()
            await asyncio.sleep(max(0.0, last + self.position_interval - time.monotonic()))
            self._positions_due.clear()
            last = time.monotonic()
            try:
                await self.position_pass()
            except Exception:
                log.exception("queue position pass failed; retrying")
                self._positions_due.set()

    async def position_pass(self) -> None:
        entries = self.rt.registry.entries()
        default_queue = self.rt.settings.kueue_default_queue
        truth = queue.plan(entries, self.rt.settings.max_running_jobs, default_queue).positions
        recorded = queue.recorded_positions(entries, default_queue)
        waves = queue.position_writes(recorded, truth, POSITION_WRITERS)
        if waves:
            await self.write_positions(waves)

    async def write_positions(self, waves: list[list[queue.PositionWrite]]) -> None:
        """Wave after wave: a wave's writes side by side, the next only once every write
        of this one has landed. A failed write ends the pass (a later wave could move a
        job onto the position it still holds); the next pass starts from what landed."""
        limit = asyncio.Semaphore(POSITION_WRITERS)

        def decide(position: int | None) -> Callable[[Known], Transition]:
            def at(known: Known) -> Transition:
                if self.rt.registry.cancelling(known.job.uid):
                    return Transition()
                return lifecycle.queue_position(known.job, position, utcnow())

            return at

        async def write(w: queue.PositionWrite) -> None:
            async with limit:
                await self._write(w.uid, decide(w.position), background=True)

        for wave in waves:
            results = await asyncio.gather(*(write(w) for w in wave), return_exceptions=True)
            failed = [r for r in results if isinstance(r, Exception)]
            if failed:
                log.warning("writing queue positions failed: %s", failed[0])
                self._positions_due.set()
                return
            raised = [r for r in results if isinstance(r, BaseException)]
            if raised:
                raise raised[0]

    async def sweep(self) -> None:
        now = utcnow()
        after = self.rt.settings.stale_after_seconds
        for known in self.rt.registry.all():
            job = known.job
            if self.rt.registry.cancelling(job.uid):
                continue
            lapsed = cancel.expire(job, now)
            if lapsed:
                # Through `_write`: a queued job's position may be being written.
                await self._write(job.uid, lambda k: cancel.expire(k.job, now))
                continue
            silent = stale.silent_seconds(job, now)
            if silent is not None and silent > after:
                await self.rt.apply(known.body, lifecycle.stalled(job, silent, now))
                if job.status.job_name:
                    await self.rt.call(
                        self.rt.cluster.delete_job, job.metadata["namespace"], job.status.job_name
                    )
