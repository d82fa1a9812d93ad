"""The admission loop: one cluster-wide pass that starts queued jobs when slots free up,
keeps queue positions right, and sweeps for stalled runs and lapsed cancel requests.

Admission itself runs on every wake-up, so a job starts as soon as it is queued. Position
writes are coalesced: at most one position pass every `position_interval` seconds, patching
only the jobs whose position changed; a long queue draining costs one write per job per
pass at most, never a rewrite of the whole queue per admission.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from kubernetes.client.exceptions import ApiException
from recon_api.constants import Phase

from recon_operator import cancel, jobspec, lifecycle, queue, stale
from recon_operator.cluster import NotOwnedError
from recon_operator.lifecycle import StatusChange
from recon_operator.registry import Known
from recon_operator.runtime import Runtime, utcnow

log = logging.getLogger(__name__)

POSITION_INTERVAL = 3.0
SWEEP_INTERVAL = 5.0
# Position patches in flight at once: enough to drain a long queue quickly, few enough to
# stay a polite client of the API server.
POSITION_WRITERS = 8


class Admission:
    def __init__(self, rt: Runtime, position_interval: float = POSITION_INTERVAL) -> None:
        self.rt = rt
        self.position_interval = position_interval
        self._last_positions = float("-inf")
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

    async def pass_once(self) -> float:
        """One pass; returns how long the loop may sleep when nothing wakes it."""
        await self.sweep()
        entries = self.rt.registry.entries()
        plan = queue.plan(entries, self.rt.settings.max_running_jobs)
        for entry in plan.admit:
            known = self.rt.registry.get(entry.uid)
            if known is not None and not self.rt.registry.cancelling(entry.uid):
                await self.launch(known)
        if plan.admit:
            # Admissions change the queue: positions are recomputed from the new state.
            plan = queue.plan(self.rt.registry.entries(), self.rt.settings.max_running_jobs)
        changed = queue.changed_positions(self.rt.registry.entries(), plan.positions)
        sleep = SWEEP_INTERVAL
        if changed:
            wait = self._last_positions + self.position_interval - time.monotonic()
            if wait <= 0:
                await self.write_positions(changed)
                self._last_positions = time.monotonic()
            else:
                sleep = min(sleep, wait)
        self.rt.metrics.set_phases(self.rt.registry.count_by_phase())
        return sleep

    async def launch(self, known: Known) -> None:
        """Create the per-job RBAC and the Job, then record the admission."""
        job = known.job
        uid = job.uid
        name = jobspec.child_name(job.metadata["name"])
        try:
            rbac = (
                jobspec.build_service_account(job),
                jobspec.build_role(job),
                jobspec.build_role_binding(job),
            )
            await asyncio.gather(
                *(self.rt.call(self.rt.cluster.create_owned, obj, uid) for obj in rbac)
            )
            await self.rt.call(
                self.rt.cluster.create_owned, jobspec.build_job(job, self.rt.settings), uid
            )
            self.rt.metrics.api_writes.labels(kind="create").inc(4)
            if self.rt.registry.cancelling(uid):
                # Cancelled while the Job was being created: the cancel already deleted
                # by name, perhaps before the Job existed.
                await self.rt.call(self.rt.cluster.delete_job, job.metadata["namespace"], name)
                return
        except NotOwnedError as e:
            change = StatusChange(job, utcnow())
            change.note("NameConflict", str(e), warning=True)
            await self.rt.apply(known.body, change.result())
            return
        except ApiException as e:
            if e.status == 404:  # its namespace is going away
                return
            log.warning("creating Job %s for %s failed: %s", name, uid, e.reason)
            return
        latest = self.rt.registry.get(uid)
        if latest is None or latest.job.status.phase != Phase.QUEUED:
            # Cancelled (or deleted) and already recorded while the Job was being created:
            # the Job goes, and the admission is not written over the finished status.
            await self.rt.call(self.rt.cluster.delete_job, job.metadata["namespace"], name)
            return
        await self.rt.apply(latest.body, lifecycle.admitted(latest.job, name, utcnow()))

    async def write_positions(self, changed: dict[str, int]) -> None:
        limit = asyncio.Semaphore(POSITION_WRITERS)

        async def write(uid: str, position: int) -> None:
            known = self.rt.registry.get(uid)
            if known is None:
                return
            async with limit:
                await self.rt.apply(known.body, lifecycle.queue_position(known.job, position))

        await asyncio.gather(*(write(uid, pos) for uid, pos in changed.items()))

    async def sweep(self) -> None:
        now = utcnow()
        after = self.rt.settings.stale_after_seconds
        for known in self.rt.registry.all():
            job = known.job
            if self.rt.registry.cancelling(job.uid):
                continue
            lapsed = cancel.expire(job, now)
            if lapsed:
                await self.rt.apply(known.body, lapsed)
                continue
            silent = stale.silent_seconds(job, now)
            if silent is not None and silent > after:
                await self.rt.apply(known.body, lifecycle.stalled(job, silent, now))
                if job.status.job_name:
                    await self.rt.call(
                        self.rt.cluster.delete_job, job.metadata["namespace"], job.status.job_name
                    )
