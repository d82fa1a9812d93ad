"""Admission order and queue positions: what users see in the Queue column."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from recon_api.constants import Phase
from recon_operator.queue import Entry, changed_positions, ordered, plan


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


def test_only_moved_jobs_are_written() -> None:
    jobs = [entry("a", queue_position=1), entry("b", queue_position=3), entry("c")]
    assert changed_positions(jobs, {"uid-a": 1, "uid-b": 2, "uid-c": 3}) == {
        "uid-b": 2,
        "uid-c": 3,
    }


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
