"""Kubernetes Events on the ReconJob, so `kubectl describe` tells the job's story.

Posted by one background worker in the order they were decided, so the story reads in
order; emitting never blocks a decision, and a failed post is logged, never fatal. (kopf's
own `kopf.event` only works inside its per-object handlers; the admission loop decides
transitions too, so the operator posts its Events itself.)
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from recon_operator.cluster import Cluster
from recon_operator.lifecycle import Note

log = logging.getLogger(__name__)

COMPONENT = "recon-operator"


def event_body(obj: Mapping[str, Any], note: Note, now: datetime) -> dict[str, Any]:
    meta = obj["metadata"]
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta['name']}.{secrets.token_hex(8)}",
            "namespace": meta["namespace"],
        },
        "involvedObject": {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
        },
        "type": "Warning" if note.warning else "Normal",
        "reason": note.reason,
        "message": note.message,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class EventPoster:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._queue: asyncio.Queue[dict[str, Any]] | None = None
        self._worker: asyncio.Task[None] | None = None

    def emit(self, obj: Mapping[str, Any], notes: Iterable[Note]) -> int:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._post_all(self._queue))
        now = datetime.now(UTC)
        count = 0
        for note in notes:
            self._queue.put_nowait(event_body(obj, note, now))
            count += 1
        return count

    async def _post_all(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            body = await queue.get()
            try:
                await asyncio.to_thread(self.cluster.create_event, body)
            except Exception as e:
                log.warning("posting Event %s failed: %s", body["reason"], e)

    async def drain(self, timeout: float = 5.0) -> None:
        """Give queued Events a moment to go out before the operator exits."""
        if self._queue is None:
            return
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._queue.empty() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
