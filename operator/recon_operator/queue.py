"""Admission order and queue positions, decided from a snapshot of all ReconJobs.

The API server is the only store: the snapshot is rebuilt from it after a restart, so
nothing here remembers anything between calls.

Positions are exact for the first `EXACT` places; further back a shown position is an
upper bound within `SLACK_PERCENT` of the truth, rewritten (to the truth) only once it
drifts past that. A job that enters at position N is then written about
EXACT + log(N / EXACT) / log(1.1) times while it drains, however long the queue is,
instead of once per admission ahead of it. Only exact positions are kept distinct between
queued jobs: they are the ones that claim a place.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
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
    # Kueue: the ReconJob's queue-name label, and whether Kueue owns its admission already.
    kueue_queue: str | None = None
    kueue_handed_over: bool = False


@dataclass(frozen=True)
class Plan:
    admit: list[Entry] = field(default_factory=list)
    # 1-based positions of the jobs that stay queued, by uid
    positions: dict[str, int] = field(default_factory=dict)
    # Queued jobs for Kueue whose suspended Job is still to be created, with their queue.
    hand_over: list[tuple[Entry, str]] = field(default_factory=list)


def kueue_queue(entry: Entry, default_queue: str = "") -> str | None:
    """The LocalQueue of a job that Kueue admits (None: the operator queues it). A job the
    operator already admitted stays the operator's, whatever the default says now."""
    if entry.kueue_handed_over:
        return entry.kueue_queue or default_queue or ""
    if entry.phase in (Phase.PENDING, Phase.VALIDATING, Phase.QUEUED, None):
        return entry.kueue_queue or default_queue or None
    return None


def order_key(entry: Entry) -> tuple[int, str, str, str]:
    """Higher priority first; equal priority is FIFO by creation, then by name for ties
    within the API server's one-second timestamp resolution."""
    return (-entry.priority, entry.created, entry.namespace, entry.name)


def ordered(entries: Iterable[Entry], default_queue: str = "") -> list[Entry]:
    """The operator's own queue: queued jobs that Kueue does not admit, in admission order."""
    return sorted(
        (e for e in entries if e.phase == Phase.QUEUED and kueue_queue(e, default_queue) is None),
        key=order_key,
    )


def running_count(entries: Iterable[Entry]) -> int:
    """Jobs holding one of the operator's run slots: admitted by it and not finished (a
    job Kueue admitted counts against Kueue's quota, not maxRunningJobs)."""
    return sum(1 for e in entries if e.phase == Phase.RUNNING and not e.kueue_handed_over)


def plan(entries: Sequence[Entry], max_running: int, default_queue: str = "") -> Plan:
    """Which queued jobs to admit now, where the others stand, and which go to Kueue."""
    queue = ordered(entries, default_queue)
    free = max(0, max_running - running_count(entries))
    admit = queue[:free]
    positions = {e.uid: i for i, e in enumerate(queue[free:], start=1)}
    hand_over = []
    for e in sorted(entries, key=order_key):
        name = kueue_queue(e, default_queue)
        if e.phase == Phase.QUEUED and name and not e.kueue_handed_over:
            hand_over.append((e, name))
    return Plan(admit=admit, positions=positions, hand_over=hand_over)


def next_admission(
    entries: Sequence[Entry], max_running: int, default_queue: str, passed: Collection[str]
) -> Entry | None:
    """The job to admit now, if a slot is free: the front of the queue, leaving out the
    jobs a pass already tried (``passed``: skipped ones stay queued). Asked again after
    every launch, because a launch takes a while and a job queued meanwhile may belong
    ahead of the ones the pass saw when it began."""
    queue = [e for e in ordered(entries, default_queue) if e.uid not in passed]
    if not queue or running_count(entries) >= max_running:
        return None
    return queue[0]


def recorded_positions(entries: Iterable[Entry], default_queue: str = "") -> dict[str, int | None]:
    """The position every job of the operator's queue shows now (None: not numbered yet)."""
    return {
        e.uid: e.queue_position
        for e in entries
        if e.phase == Phase.QUEUED and kueue_queue(e, default_queue) is None
    }


# Positions shown exactly; beyond, the shown position may be up to SLACK_PERCENT above the
# truth (integer arithmetic, so the bound is the same on every platform).
EXACT = 10
SLACK_PERCENT = 10


def upper_bound(truth: int) -> int:
    """The largest position that may be shown for a job whose true position is ``truth``."""
    return truth if truth <= EXACT else truth + truth * SLACK_PERCENT // 100


def within_bounds(shown: int | None, truth: int) -> bool:
    """Whether ``shown`` may stay: exact near the front, never smaller than the truth, and
    at most SLACK_PERCENT above it further back."""
    return shown is not None and truth <= shown <= upper_bound(truth)


def position_message(shown: int | None) -> str:
    """The Admitted=False message of a queued job: its position in words."""
    if shown is None:
        return "waiting for a free run slot"
    if shown <= EXACT:
        return f"waiting for a free run slot: position {shown} in the queue"
    return (
        f"waiting for a free run slot: position {shown} in the queue or nearer the front "
        f"(beyond position {EXACT} the position shown is at most {SLACK_PERCENT}% "
        "behind the true one, and refreshed when it drifts further)"
    )


def stale_positions(current: Mapping[str, int | None], truth: Mapping[str, int]) -> dict[str, int]:
    """The queued jobs whose shown position must be rewritten, and the value to write: the
    truth, which leaves the most room before the next rewrite as the queue drains."""
    return {uid: t for uid, t in truth.items() if not within_bounds(current.get(uid), t)}


@dataclass(frozen=True)
class PositionWrite:
    """One queuePosition patch; ``position`` None clears it for the moment (the job stays
    queued, only its number is briefly blank)."""

    uid: str
    position: int | None


# A position pass lets a chain of dependent moves run this many waves deep before it cuts
# the chain with a clear, so a short queue is written with no extra patch at all.
MIN_DEPTH = 16


def position_writes(
    current: Mapping[str, int | None],
    truth: Mapping[str, int],
    parallel: int = 8,
    min_depth: int = MIN_DEPTH,
) -> list[list[PositionWrite]]:
    """The writes of one position pass, in waves: every stale position (`stale_positions`)
    rewritten, exact positions kept distinct on the way (`distinct_writes`).

    ``current`` is the position every queued job shows, ``truth`` the plan's positions.
    Moves within the exact positions go in waves; a job that leaves the exact positions
    (pushed back, say) or is rewritten further back goes in the first wave: its new
    position is no exact one, so it waits for nobody, and leaving frees its old one.
    """
    stale = stale_positions(current, truth)
    exact_now = {u: p for u, p in current.items() if p is not None and p <= EXACT}
    exact_target = {u: t for u, t in truth.items() if t <= EXACT}
    waves = distinct_writes(exact_now, exact_target, parallel, min_depth)
    far = {u: t for u, t in stale.items() if t > EXACT}
    if not far:
        return waves
    if not waves:
        waves = [[]]
    # A job clearing an exact position that it leaves for a far one writes the far one.
    first = [
        PositionWrite(w.uid, far.pop(w.uid, None)) if w.position is None else w for w in waves[0]
    ]
    first += [PositionWrite(u, t) for u, t in far.items()]
    first.sort(key=lambda w: (w.position or 0, w.uid))
    return [first, *waves[1:]]


def distinct_writes(
    current: Mapping[str, int | None],
    target: Mapping[str, int],
    parallel: int = 8,
    min_depth: int = MIN_DEPTH,
) -> list[list[PositionWrite]]:
    """The writes that take the queue from ``current`` to ``target``, in waves, such that
    no two queued jobs ever show the same position on the way.

    ``current`` is the recorded position of every queued job, ``target`` the new one (the
    plan's positions, which are distinct). Only the jobs whose position changes are
    written. A write into a position waits for the wave in which its holder moves away:
    forward moves run front to back, backward moves back to front. Every write of a wave
    targets a position that is free when the wave starts, so the writes of one wave may
    run side by side, and in any order.

    A long chain of dependent moves (everyone one place forward) would take one wave per
    job; it is cut, by clearing a job's position in the first wave, so that there are at
    most about ``max(min_depth, len(moves) / parallel)`` waves, for at most about
    ``parallel`` extra writes per pass. A cycle of moves (positions recorded out of queue
    order) is cut the same way.
    """
    if len(set(target.values())) != len(target):
        raise ValueError("target positions must be distinct")
    moves: dict[str, int | None] = {
        uid: pos for uid, pos in target.items() if current.get(uid) != pos
    }
    wanted = set(target.values())
    for uid, pos in current.items():
        # Not in the plan, yet holding a wanted position: it gives the position up.
        if uid not in target and pos is not None and pos in wanted:
            moves[uid] = None
    if not moves:
        return []
    holders: dict[int, list[str]] = {}
    for uid, pos in current.items():
        if pos is not None:
            holders.setdefault(pos, []).append(uid)

    def blockers(uid: str) -> list[str]:
        pos = moves[uid]
        return [] if pos is None else [h for h in holders.get(pos, ()) if h != uid]

    depth = max(1, min_depth, -(-len(moves) // max(1, parallel)))
    level: dict[str, int] = {}
    cleared: set[str] = set()
    visiting: set[str] = set()

    def vacated(uid: str) -> int:
        """The wave after which ``uid`` no longer holds its old position."""
        return 0 if uid in cleared else level[uid]

    for start in sorted(moves, key=lambda u: (moves[u] or 0, u)):
        if start in level:
            continue
        stack = [start]
        while stack:
            uid = stack[-1]
            if uid not in visiting:
                visiting.add(uid)
                for b in blockers(uid):
                    if b in visiting and b not in level:
                        cleared.add(b)  # a cycle: b gives its position up first
                    elif b not in level:
                        stack.append(b)
                continue
            stack.pop()
            if uid in level:
                continue
            before = blockers(uid)
            at = 1 + max((vacated(b) for b in before), default=-1)
            if at > depth:
                # Cut here: the blockers still to move clear their positions first.
                cleared.update(b for b in before if vacated(b) > 0)
                at = 1
            level[uid] = at

    waves: list[list[PositionWrite]] = [[] for _ in range(max(level.values()) + 1)]
    for uid in cleared:
        waves[0].append(PositionWrite(uid, None))
    for uid, pos in moves.items():
        waves[level[uid]].append(PositionWrite(uid, pos))
    for wave in waves:
        wave.sort(key=lambda w: (w.position or 0, w.uid))
    return [wave for wave in waves if wave]
