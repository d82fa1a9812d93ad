"""After Kueue evicts (or preempts) a running job: wait for its runner to stop, then
remove the attempt's partial outputs, so the next admission starts from a clean prefix.

The Job controller stops the runner when Kueue suspends the Job (SIGTERM; the runner exits
143); nothing here deletes anything of Kubernetes'. Only the pods that were running at the
eviction are waited for: a pod of the next admission must not hold this up.
"""

from __future__ import annotations

import asyncio
import logging
import time

from recon_operator import jobspec, storage_client
from recon_operator.lifecycle import Note, Transition
from recon_operator.registry import Known
from recon_operator.runtime import Runtime

log = logging.getLogger(__name__)

STOP_TIMEOUT = 60.0
POLL = 0.5


async def wait_for_runner_stop(rt: Runtime, known: Known) -> bool:
    """Whether every runner pod live at the eviction has stopped within STOP_TIMEOUT."""
    ns = known.job.metadata["namespace"]
    selector = f"{jobspec.UID_LABEL}={known.job.uid}"
    live = await rt.call(rt.cluster.live_pods, ns, selector)
    deadline = time.monotonic() + STOP_TIMEOUT
    while live:
        if time.monotonic() > deadline:
            log.warning("runner pods %s of %s still live after %.0fs", live, ns, STOP_TIMEOUT)
            return False
        await asyncio.sleep(POLL)
        live &= await rt.call(rt.cluster.live_pods, ns, selector)
    return True


async def clean_up(rt: Runtime, known: Known) -> None:
    """Wait for the runner, then remove the partial outputs; the Event says how many."""
    try:
        await _clean_up(rt, known)
    except Exception:  # runs as a task of its own: nobody else would see it fail
        log.exception("cleaning up after the eviction of %s failed", known.job.uid)


async def _clean_up(rt: Runtime, known: Known) -> None:
    if not await wait_for_runner_stop(rt, known):
        return
    try:
        removed = await storage_client.remove_partial_outputs(rt, known.job)
    except storage_client.CleanupFailed as e:
        await rt.apply(known.body, Transition(notes=[Note("CleanupFailed", e.message, True)]))
        return
    message = f"the evicted run stopped; removed {removed} partial output object(s)"
    await rt.apply(known.body, Transition(notes=[Note("PartialOutputsRemoved", message)]))
