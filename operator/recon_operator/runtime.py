"""What the handlers and the admission loop share: settings, the API edge, the cache.

`apply` is the one way a decided `Transition` reaches the cluster, so every status write
carries observedGeneration, updates the cache at once, wakes admission and counts towards
the request budget.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from recon_api.constants import Phase
from recon_api.models import ReconJob

from recon_operator.cluster import Cluster, transient
from recon_operator.events import EventPoster
from recon_operator.keyed_lock import KeyedLock
from recon_operator.lifecycle import Transition
from recon_operator.metrics import Metrics
from recon_operator.registry import Known, Registry
from recon_operator.settings import Settings

T = TypeVar("T")
log = logging.getLogger(__name__)

# Pauses between attempts of a status write that failed transiently (about 15 s in all,
# within which an API server restart or a burst of 429s is over).
WRITE_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)

# Threads of the lane that queue-position writes take (see `Runtime.background`).
BACKGROUND_WORKERS = 8


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Runtime:
    settings: Settings
    cluster: Cluster
    registry: Registry = field(default_factory=Registry)
    metrics: Metrics = field(default_factory=Metrics)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    # Set once the startup listing is in the cache: before that, a Job whose owner is not
    # known may belong to a ReconJob not listed yet.
    listed: asyncio.Event = field(default_factory=asyncio.Event)
    events: EventPoster = field(init=False)
    # A thread pool of its own for writes that may come by the hundred (queue positions):
    # in the shared one they would queue ahead of an admission or a Job's completion.
    background: Executor = field(
        default_factory=lambda: ThreadPoolExecutor(BACKGROUND_WORKERS, "recon-background")
    )

    # One status decision-and-write per job at a time (see `write`).
    _locks: KeyedLock = field(default_factory=KeyedLock)

    def __post_init__(self) -> None:
        self.events = EventPoster(self.cluster)

    async def write(
        self, uid: str, decide: Callable[[Known], Transition], *, background: bool = False
    ) -> Known | None:
        """Decide from the latest known status and apply, one write per job at a time: a
        conditions list decided from an older copy would undo another writer's condition
        (admission, queue positions, the Job's, the pod's and Kueue's Workload's events all
        write the same job). A transient API failure is retried, decided afresh each time:
        a Job's or pod's event is delivered once, so a write lost here (the pod's Running,
        say) would never be made good by a later event."""
        async with self._locks.hold(uid):
            for delay in (*WRITE_RETRY_DELAYS, None):
                known = self.registry.get(uid)
                if known is None:
                    return None
                try:
                    applied = await self.apply(known.body, decide(known), background=background)
                except Exception as e:
                    if delay is None or not transient(e):
                        raise
                    log.warning("status write for %s failed (%s); retrying", uid, e)
                    await asyncio.sleep(delay)
                    continue
                return applied or self.registry.get(uid)
            return None  # not reached: the last attempt returns or raises

    def wake(self) -> None:
        """Ask the admission loop for a pass (a slot may be free, the queue has moved)."""
        self.wakeup.set()

    async def call(self, fn: Callable[..., T], *args: Any, lane: Executor | None = None) -> T:
        if lane is None:
            return await asyncio.to_thread(fn, *args)
        return await asyncio.get_running_loop().run_in_executor(lane, fn, *args)

    async def apply(
        self, body: Mapping[str, Any], transition: Transition, *, background: bool = False
    ) -> Known | None:
        """Write the status patch (if any) and emit the Events; None when the job is gone.
        ``background``: through the `background` lane."""
        known = self.registry.get(str(body["metadata"]["uid"]))
        if transition.patch:
            meta = body["metadata"]
            patch = dict(transition.patch)
            if meta.get("generation") is not None:
                # Every write says which spec it was decided for: kstatus (Flux) reads a
                # missing or older observedGeneration as "not reconciled yet".
                patch["observedGeneration"] = meta["generation"]
            updated = await self.call(
                self.cluster.patch_status,
                meta["namespace"],
                meta["name"],
                patch,
                lane=self.background if background else None,
            )
            self.metrics.api_writes.labels(kind="status").inc()
            if updated is None:
                return None
            known = self.registry.observe(updated)
            phase = transition.patch.get("phase")
            if phase and Phase(phase).terminal and known is not None:
                self._record_finish(known.job)
            self.wake()
        if transition.notes:
            posted = self.events.emit(body, transition.notes)
            self.metrics.api_writes.labels(kind="event").inc(posted)
        return known

    def _record_finish(self, job: ReconJob) -> None:
        status = job.status
        if status.phase is not None and status.finished_at is not None:
            self.metrics.finished(status.phase, status.started_at, status.finished_at)
