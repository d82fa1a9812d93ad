"""Admission order and queue positions: what users see in the Queue column."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from recon_api.constants import Phase
from recon_operator import lifecycle
from recon_operator.queue import (
    EXACT,
    Entry,
    PositionWrite,
    distinct_writes,
    next_admission,
    ordered,
    plan,
    position_message,
    position_writes,
    recorded_positions,
    stale_positions,
    upper_bound,
    within_bounds,
)

from tests.support.reconjobs import T0, apply_status, reconjob


def entry(name: str, priority: int = 0, created: str = "2025-01-01T12:00:00Z", **kw) -> Entry:
    return Entry(
        uid=f"uid-{name}",
        namespace=kw.pop("namespace", "ns"),
        name=name,
        priority=priority,
        created=created,
        phase=kw.pop("phase", Phase.QUEUED),
        queue_position=kw.pop("queue_position", None),
    )


def test_higher_priority_first_then_oldest_first() -> None:
    jobs = [
        entry("late-low", 0, "2025-01-01T12:00:05Z"),
        entry("early-low", 0, "2025-01-01T12:00:01Z"),
        entry("high", 10, "2025-01-01T12:00:09Z"),
        entry("negative", -5, "2025-01-01T12:00:00Z"),
    ]
    assert [e.name for e in ordered(jobs)] == ["high", "early-low", "late-low", "negative"]


def test_same_second_ties_break_by_name_so_order_is_stable() -> None:
    jobs = [entry("b"), entry("a"), entry("c")]
    assert [e.name for e in ordered(jobs)] == ["a", "b", "c"]


def test_only_queued_jobs_are_in_the_queue() -> None:
    jobs = [entry("q"), entry("r", phase=Phase.RUNNING), entry("v", phase=Phase.VALIDATING)]
    assert [e.name for e in ordered(jobs)] == ["q"]


def test_admits_up_to_the_free_slots_and_numbers_the_rest_from_one() -> None:
    jobs = [
        entry("running", phase=Phase.RUNNING),
        entry("p0-a", 0, "2025-01-01T12:00:01Z"),
        entry("p5", 5, "2025-01-01T12:00:02Z"),
        entry("p0-b", 0, "2025-01-01T12:00:03Z"),
        entry("p9", 9, "2025-01-01T12:00:04Z"),
        entry("done", phase=Phase.SUCCEEDED),
    ]
    result = plan(jobs, max_running=2)
    assert [e.name for e in result.admit] == ["p9"]
    assert result.positions == {"uid-p5": 1, "uid-p0-a": 2, "uid-p0-b": 3}


def test_no_admission_when_all_slots_are_taken() -> None:
    jobs = [entry("r1", phase=Phase.RUNNING), entry("r2", phase=Phase.RUNNING), entry("q")]
    result = plan(jobs, max_running=2)
    assert result.admit == []
    assert result.positions == {"uid-q": 1}


def test_next_admission_is_the_front_of_the_queue_not_yet_tried() -> None:
    jobs = [
        entry("running", phase=Phase.RUNNING),
        entry("p0", 0, "2025-01-01T12:00:01Z"),
        entry("p9", 9, "2025-01-01T12:00:04Z"),
    ]
    front = next_admission(jobs, 2, "", passed=set())
    assert front is not None and front.name == "p9"
    behind = next_admission(jobs, 2, "", passed={"uid-p9"})
    assert behind is not None and behind.name == "p0"
    assert next_admission(jobs, 2, "", passed={"uid-p9", "uid-p0"}) is None
    assert next_admission(jobs, 1, "", passed=set()) is None, "no free slot"


def test_only_moved_jobs_are_written() -> None:
    jobs = [
        entry("a", queue_position=1),
        entry("b", queue_position=3),
        entry("c"),
        entry("r", phase=Phase.RUNNING),
    ]
    current = recorded_positions(jobs)
    assert current == {"uid-a": 1, "uid-b": 3, "uid-c": None}
    assert position_writes(current, {"uid-a": 1, "uid-b": 2, "uid-c": 3}) == [
        [PositionWrite("uid-b", 2)],
        [PositionWrite("uid-c", 3)],
    ]


@given(
    st.lists(
        st.tuples(st.integers(-3, 3), st.integers(0, 59), st.booleans()),
        min_size=0,
        max_size=30,
    ),
    st.integers(1, 5),
)
def test_plan_never_exceeds_the_limit_and_positions_are_contiguous(jobs, limit) -> None:
    entries = [
        entry(
            f"j{i}",
            prio,
            f"2025-01-01T12:00:{sec:02d}Z",
            phase=Phase.RUNNING if running else Phase.QUEUED,
        )
        for i, (prio, sec, running) in enumerate(jobs)
    ]
    result = plan(entries, limit)
    running = sum(1 for e in entries if e.phase == Phase.RUNNING)
    queued = len(entries) - running
    assert running + len(result.admit) <= max(limit, running)
    assert len(result.admit) + len(result.positions) == queued
    assert sorted(result.positions.values()) == list(range(1, len(result.positions) + 1))
    # nobody waiting outranks anybody admitted
    waiting = [e for e in entries if e.uid in result.positions]
    for a in result.admit:
        for w in waiting:
            assert (-a.priority, a.created, a.name) <= (-w.priority, w.created, w.name)


# --- distinct writes: the order in which exact positions are patched ---


def apply_writes(
    current: dict[str, int | None], writes: list[PositionWrite]
) -> list[dict[str, int | None]]:
    """Every state an observer could see, one patch at a time."""
    state = dict(current)
    seen = [dict(state)]
    for w in writes:
        state[w.uid] = w.position
        seen.append(dict(state))
    return seen


def duplicates(state: dict[str, int | None]) -> list[int]:
    held = [p for p in state.values() if p is not None]
    return sorted({p for p in held if held.count(p) > 1})


def flat(waves: list[list[PositionWrite]]) -> list[PositionWrite]:
    return [w for wave in waves for w in wave]


def check_waves(
    current: dict[str, int | None], target: dict[str, int], waves: list[list[PositionWrite]]
) -> dict[str, int | None]:
    """No observer sees a shared position, whatever order a wave's writes land in; the
    queue ends at the target; returns the final state."""
    state = dict(current)
    for wave in waves:
        assert len({w.uid for w in wave}) == len(wave)
        held = {p for p in state.values() if p is not None}
        for w in wave:
            # a wave only fills positions that are free when it starts
            assert w.position is None or w.position not in held, (w, state)
        targets = [w.position for w in wave if w.position is not None]
        assert len(set(targets)) == len(targets)
        for order in (wave, wave[::-1]):
            for seen in apply_writes(state, order):
                assert duplicates(seen) == [], (wave, seen)
        state.update({w.uid: w.position for w in wave})
    for uid, pos in target.items():
        assert state[uid] == pos
    return state


def test_moving_forward_writes_front_to_back() -> None:
    # the job at 1 was admitted: everyone moves up one place
    current: dict[str, int | None] = {"b": 2, "c": 3, "d": 4}
    target = {"b": 1, "c": 2, "d": 3}
    waves = distinct_writes(current, target)
    assert waves == [[PositionWrite("b", 1)], [PositionWrite("c", 2)], [PositionWrite("d", 3)]]
    check_waves(current, target, waves)


def test_moving_back_behind_an_arrival_writes_back_to_front() -> None:
    # a higher-priority job arrives (no position yet) and takes the front
    current: dict[str, int | None] = {"new": None, "a": 1, "b": 2, "c": 3}
    target = {"new": 1, "a": 2, "b": 3, "c": 4}
    waves = distinct_writes(current, target)
    assert [[w.uid for w in wave] for wave in waves] == [["c"], ["b"], ["a"], ["new"]]
    check_waves(current, target, waves)


def test_unmoved_jobs_are_not_written_and_independent_moves_share_a_wave() -> None:
    # the jobs at 2 and 5 left the queue: 3 and 4 close the first gap, 6 the second
    current: dict[str, int | None] = {"a": 1, "c": 3, "d": 4, "f": 6}
    target = {"a": 1, "c": 2, "d": 3, "f": 4}
    waves = distinct_writes(current, target)
    assert waves == [
        [PositionWrite("c", 2)],
        [PositionWrite("d", 3)],
        [PositionWrite("f", 4)],
    ]
    current = {"a": 3, "b": 6, "c": 7}
    target = {"a": 1, "b": 2, "c": 3}
    assert distinct_writes(current, target) == [
        [PositionWrite("a", 1), PositionWrite("b", 2)],
        [PositionWrite("c", 3)],
    ]


def test_nothing_to_write_when_every_position_is_right() -> None:
    assert distinct_writes({"a": 1, "b": 2}, {"a": 1, "b": 2}) == []


def test_a_cycle_is_broken_by_clearing_one_position_first() -> None:
    # recorded out of queue order (a restarted operator's view, say): a and b swap
    current: dict[str, int | None] = {"a": 2, "b": 1}
    target = {"a": 1, "b": 2}
    waves = distinct_writes(current, target)
    check_waves(current, target, waves)
    assert len(flat(waves)) == 3 and [w.position for w in waves[0]] == [None]


def test_a_long_drain_is_cut_into_parallel_chains_for_a_few_extra_writes() -> None:
    # 500 queued, two admitted since the last pass: two chains of 250 dependent moves
    n = 500
    current: dict[str, int | None] = {f"j{i}": i for i in range(3, n + 3)}
    target = {f"j{i}": i - 2 for i in range(3, n + 3)}
    waves = distinct_writes(current, target, parallel=8)
    check_waves(current, target, waves)
    writes = flat(waves)
    assert n < len(writes) <= n + 8 + 2
    assert len(waves) <= n // 8 + 2
    # a short queue is written with no extra patch
    short = {f"j{i}": i - 2 for i in range(3, 13)}
    assert len(flat(distinct_writes({u: p + 2 for u, p in short.items()}, short))) == 10


def test_a_job_outside_the_plan_gives_up_a_wanted_position() -> None:
    current: dict[str, int | None] = {"gone": 1, "b": 2}
    target = {"b": 1}
    waves = distinct_writes(current, target)
    assert waves[0] == [PositionWrite("gone", None)]
    check_waves(current, target, waves)


def test_target_positions_must_be_distinct() -> None:
    with pytest.raises(ValueError):
        distinct_writes({"a": None, "b": None}, {"a": 1, "b": 1})


@st.composite
def queue_moves(draw: st.DrawFn) -> tuple[dict[str, int | None], dict[str, int]]:
    """A queue's recorded positions (distinct, some blank, some stale or out of order) and
    its new positions 1..n: arrivals, departures, shifts, or any permutation."""
    n = draw(st.integers(0, 40))
    uids = [f"u{i}" for i in range(n)]
    # queue order kept (the usual case), or any permutation
    order = draw(st.permutations(uids)) if draw(st.booleans()) else uids
    target = {uid: i for i, uid in enumerate(order, start=1)}
    slots = draw(st.lists(st.integers(1, 2 * n + 2), min_size=n, max_size=n, unique=True))
    if draw(st.booleans()):
        slots = sorted(slots)  # recorded in queue order, as the operator writes them
    blank = draw(st.sets(st.sampled_from(uids))) if uids else set()
    current: dict[str, int | None] = {
        uid: None if uid in blank else slot for uid, slot in zip(uids, slots, strict=True)
    }
    # jobs that left the plan, still recorded
    for i, slot in enumerate(draw(st.lists(st.integers(1, n + 2), max_size=3, unique=True))):
        if slot not in current.values():
            current[f"x{i}"] = slot
    return current, target


@given(queue_moves(), st.integers(1, 8), st.integers(1, 6))
def test_writes_one_at_a_time_never_show_a_shared_position(moves, parallel, min_depth) -> None:
    current, target = moves
    waves = distinct_writes(current, target, parallel=parallel, min_depth=min_depth)
    for seen in apply_writes(current, flat(waves)):
        assert duplicates(seen) == [], seen
    check_waves(current, target, waves)
    writes = flat(waves)
    moved = {uid for uid, pos in target.items() if current.get(uid) != pos}
    written = {w.uid for w in writes}
    # only jobs that move (or give up a wanted position) are written, each at most twice
    assert {u for u in written if u in target} == moved
    assert all(sum(1 for w in writes if w.uid == u) <= 2 for u in written)


# --- the position-writing rule: exact near the front, a bounded upper bound further back ---


def test_exact_near_the_front_and_within_ten_percent_above_the_truth_further_back() -> None:
    assert [upper_bound(t) for t in (1, 10, 11, 19, 20, 100, 2000)] == [
        1,
        10,
        12,
        20,
        22,
        110,
        2200,
    ]
    assert within_bounds(3, 3) and not within_bounds(4, 3) and not within_bounds(None, 3)
    assert within_bounds(110, 100) and not within_bounds(111, 100)
    assert not within_bounds(99, 100), "never smaller than the truth"


def test_only_positions_out_of_their_bounds_are_rewritten_and_to_the_truth() -> None:
    current: dict[str, int | None] = {"a": 1, "b": 3, "far": 105, "drifted": 150, "new": None}
    truth = {"a": 1, "b": 2, "far": 100, "drifted": 130, "new": 140}
    assert stale_positions(current, truth) == {"b": 2, "drifted": 130, "new": 140}


def test_the_condition_message_says_the_position_in_words() -> None:
    assert position_message(None) == "waiting for a free run slot"
    assert position_message(3) == "waiting for a free run slot: position 3 in the queue"
    far = position_message(150)
    assert "position 150 in the queue or nearer the front" in far
    assert "at most 10% behind" in far


def apply_pass(state: dict[str, int | None], waves: list[list[PositionWrite]]) -> None:
    """Land a pass's writes one at a time, checking what an observer could see."""
    for wave in waves:
        for w in wave:
            state[w.uid] = w.position
            exact = [p for p in state.values() if p is not None and p <= EXACT]
            assert len(exact) == len(set(exact)), state


@st.composite
def queue_states(draw: st.DrawFn) -> tuple[dict[str, int | None], dict[str, int]]:
    """A queue of up to 300 and what its jobs show: right, blank, stale in either
    direction, or anything (a restarted operator's view of another's writes)."""
    n = draw(st.integers(0, 300))
    truth = {f"u{i}": i for i in range(1, n + 1)}
    current: dict[str, int | None] = {}
    for uid, t in truth.items():
        kind = draw(st.sampled_from(["right", "blank", "ahead", "behind", "any"]))
        if kind == "right":
            current[uid] = t
        elif kind == "ahead":
            current[uid] = max(1, t - draw(st.integers(1, 20)))
        elif kind == "behind":
            current[uid] = t + draw(st.integers(1, 60))
        elif kind == "any":
            current[uid] = draw(st.integers(1, 2 * n + 2))
        else:
            current[uid] = None
    # Exact positions are distinct as the operator writes them; keep the first holder.
    held: set[int] = set()
    for uid, p in current.items():
        if p is not None and p <= EXACT:
            if p in held:
                current[uid] = None
            held.add(p)
    return current, truth


@settings(deadline=None)
@given(queue_states(), st.integers(1, 8))
def test_after_a_pass_every_shown_position_is_within_its_bounds(state, parallel) -> None:
    current, truth = state
    waves = position_writes(current, truth, parallel=parallel)
    shown = dict(current)
    apply_pass(shown, waves)
    for uid, t in truth.items():
        assert within_bounds(shown[uid], t), (uid, t, shown[uid])
    written = [w for wave in waves for w in wave]
    # nothing already within its bounds is rewritten, except to clear a chain of moves
    assert all(
        not within_bounds(current[w.uid], truth[w.uid]) or w.position is None for w in written
    )


def log_bound(entered: int) -> float:
    """Writes allowed for a job entering at ``entered`` as the queue drains: one per exact
    position, then one per 10% the position shrinks, plus one for the entry itself."""
    far = math.log(entered / EXACT) / math.log(1.1) if entered > EXACT else 0.0
    return EXACT + far + 2


@settings(deadline=None, max_examples=40)
@given(
    st.integers(1, 250),
    st.lists(st.integers(1, 12), min_size=1, max_size=40),
    st.integers(0, 5),
)
def test_a_job_entering_at_position_n_is_written_o_log_n_times(n, admits, arrivals) -> None:
    """A drain: each pass admits a few from the front and a few more join at the back."""
    queue_ = [f"u{i}" for i in range(n)]
    entered = {uid: i for i, uid in enumerate(queue_, start=1)}
    shown: dict[str, int | None] = dict.fromkeys(queue_)
    writes: dict[str, int] = dict.fromkeys(queue_, 0)
    step = 0
    while queue_:
        admitted = admits[step % len(admits)]
        step += 1
        for uid in queue_[:admitted]:
            shown.pop(uid)
        queue_ = queue_[admitted:]
        for _ in range(arrivals if step < 50 else 0):
            uid = f"a{step}-{_}"
            queue_.append(uid)
            entered[uid] = len(queue_)
            shown[uid] = None
            writes[uid] = 0
        truth = {uid: i for i, uid in enumerate(queue_, start=1)}
        waves = position_writes(shown, truth)
        apply_pass(shown, waves)
        for wave in waves:
            for w in wave:
                writes[w.uid] += 1
    for uid, count in writes.items():
        assert count <= log_bound(entered[uid]), (uid, entered[uid], count)


def test_draining_two_thousand_one_at_a_time_costs_a_few_dozen_writes_each() -> None:
    """The worst case of the rule: a pass after every single admission."""
    n = 2000
    queue_ = [f"u{i}" for i in range(n)]
    shown: dict[str, int | None] = dict.fromkeys(queue_)
    writes = dict.fromkeys(queue_, 0)
    while queue_:
        shown.pop(queue_.pop(0))
        waves = position_writes(shown, {uid: i for i, uid in enumerate(queue_, start=1)})
        apply_pass(shown, waves)
        for wave in waves:
            for w in wave:
                writes[w.uid] += 1
    last = writes["u1999"]
    assert last <= log_bound(n), last
    # against one write per admission ahead of it, as a rewrite of every position costs
    assert sum(writes.values()) / n < 60 < n / 2


def test_a_position_write_carries_the_same_position_in_words() -> None:
    job = reconjob(generation=1)
    job = apply_status(job, lifecycle.inputs_valid(job, T0).patch)
    patch = lifecycle.queue_position(job, 150, T0).patch
    assert patch["queuePosition"] == 150
    (admitted,) = [c for c in patch["conditions"] if c["type"] == "Admitted"]
    assert admitted["status"] == "False" and admitted["message"] == position_message(150)
    assert apply_status(job, patch).status.queue_position == 150
