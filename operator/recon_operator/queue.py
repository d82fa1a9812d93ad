"""Admission order and queue positions, decided from a snapshot of all ReconJobs.

The API server is the only store: the snapshot is rebuilt from it after a restart, so
nothing here remembers anything between calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from recon_api.constants import Phase


@dataclass(frozen=True)
class Entry:
    """What admission needs to know about one ReconJob."""

    uid: str
    namespace: str
    name: str
    priority: int
    created: str  # metadata.creationTimestamp, RFC 3339 in UTC: sorts as text
    phase: Phase | None
    queue_position: int | None = None


@dataclass(frozen=True)
class Plan:
    admit: list[Entry] = field(default_factory=list)
    # 1-based positions of the jobs that stay queued, by uid
    positions: dict[str, int] = field(default_factory=dict)


def order_key(entry: Entry) -> tuple[int, str, str, str]:
    """Higher priority first; equal priority is FIFO by creation, then by name for ties
    within the API server's one-second timestamp resolution."""
    return (-entry.priority, entry.created, entry.namespace, entry.name)


def ordered(entries: Iterable[Entry]) -> list[Entry]:
    return sorted((e for e in entries if e.phase == Phase.QUEUED), key=order_key)


def running_count(entries: Iterable[Entry]) -> int:
    """Jobs holding a run slot: admitted and not finished."""
    return sum(1 for e in entries if e.phase == Phase.RUNNING)


def plan(entries: Sequence[Entry], max_running: int) -> Plan:
    """Which queued jobs to admit now, and where the others stand."""
    queue = ordered(entries)
    free = max(0, max_running - running_count(entries))
    admit = queue[:free]
    positions = {e.uid: i for i, e in enumerate(queue[free:], start=1)}
    return Plan(admit=admit, positions=positions)


def changed_positions(entries: Iterable[Entry], positions: Mapping[str, int]) -> dict[str, int]:
    """Only the jobs whose recorded position differs: the rest need no write."""
    recorded = {e.uid: e.queue_position for e in entries}
    return {uid: pos for uid, pos in positions.items() if recorded.get(uid) != pos}
