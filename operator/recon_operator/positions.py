"""The position writer: keeps the queue positions users see within their bounds.

Position writes never hold up admission: they run in a task of their own, so a freed slot
is refilled at once however many positions are being written, and in a thread pool of
their own (`Runtime.background`), so they never queue ahead of an admission's requests.

Writes are coalesced: at most one pass every `interval` seconds, patching only the jobs
whose shown position is out of its bounds (`queue.stale_positions`: exact near the front,
within 10% further back), so a long queue draining costs each job a number of writes that
grows with the logarithm of its place, never a rewrite of the whole queue per admission.
The writes go in waves (`queue.position_writes`) so that no two queued jobs ever show the
same exact position on the way. Each goes through `Runtime.write`, one write per job at a
time: a position patch decided from a copy older than the admission would carry a stale
Admitted condition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from recon_operator import lifecycle, queue
from recon_operator.lifecycle import Transition
from recon_operator.registry import Known
from recon_operator.runtime import Runtime, utcnow

log = logging.getLogger(__name__)

INTERVAL = 3.0
# Position patches in flight at once: enough to drain a long queue quickly, few enough to
# stay a polite client of the API server.
WRITERS = 8


class PositionWriter:
    def __init__(self, rt: Runtime, interval: float = INTERVAL) -> None:
        self.rt = rt
        self.interval = interval
        # Set when the queue may have moved.
        self._due = asyncio.Event()

    def due(self) -> None:
        """The queue may have moved: take a pass (at most one per interval)."""
        self._due.set()

    async def run(self) -> None:
        last = float("-inf")
        while True:
            await self._due.wait()
            await asyncio.sleep(max(0.0, last + self.interval - time.monotonic()))
            self._due.clear()
            last = time.monotonic()
            try:
                await self.pass_once()
            except Exception:
                log.exception("queue position pass failed; retrying")
                self._due.set()

    async def pass_once(self) -> None:
        entries = self.rt.registry.entries()
        default_queue = self.rt.settings.kueue_default_queue
        truth = queue.plan(entries, self.rt.settings.max_running_jobs, default_queue).positions
        recorded = queue.recorded_positions(entries, default_queue)
        waves = queue.position_writes(recorded, truth, WRITERS)
        if waves:
            await self.write(waves)

    async def write(self, waves: list[list[queue.PositionWrite]]) -> None:
        """Wave after wave: a wave's writes side by side, the next only once every write
        of this one has landed. A failed write ends the pass (a later wave could move a
        job onto the position it still holds); the next pass starts from what landed."""
        limit = asyncio.Semaphore(WRITERS)

        def decide(position: int | None) -> Callable[[Known], Transition]:
            def at(known: Known) -> Transition:
                if self.rt.registry.cancelling(known.job.uid):
                    return Transition()
                return lifecycle.queue_position(known.job, position, utcnow())

            return at

        async def write_one(w: queue.PositionWrite) -> None:
            async with limit:
                await self.rt.write(w.uid, decide(w.position), background=True)

        for wave in waves:
            results = await asyncio.gather(*(write_one(w) for w in wave), return_exceptions=True)
            failed = [r for r in results if isinstance(r, Exception)]
            if failed:
                log.warning("writing queue positions failed: %s", failed[0])
                self._due.set()
                return
            raised = [r for r in results if isinstance(r, BaseException)]
            if raised:
                raise raised[0]
