"""When the stack counts its node as Ready: a fresh heartbeat, not one left in etcd."""

from __future__ import annotations

import datetime as dt

from recon_stack.probes import node_is_ready
from recon_stack.stack import node_ready_since

START = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def _node(status: str, heartbeat: str) -> dict[str, object]:
    conditions = [
        {"type": "MemoryPressure", "status": "False", "lastHeartbeatTime": heartbeat},
        {"type": "Ready", "status": status, "lastHeartbeatTime": heartbeat},
    ]
    return {"status": {"conditions": conditions}}


def test_ready_with_a_heartbeat_from_this_start() -> None:
    assert node_ready_since(_node("True", "2026-01-01T12:00:00Z"), START)
    assert node_ready_since(_node("True", "2026-01-01T12:00:07Z"), START)


def test_ready_left_over_from_the_previous_run_does_not_count() -> None:
    assert node_is_ready(_node("True", "2026-01-01T11:59:59Z"))
    assert not node_ready_since(_node("True", "2026-01-01T11:59:59Z"), START)


def test_not_ready_missing_or_malformed_nodes_are_not_ready() -> None:
    assert not node_ready_since(_node("False", "2026-01-01T12:00:05Z"), START)
    assert not node_ready_since(_node("True", "not a time"), START)
    assert not node_ready_since(None, START)
    assert not node_ready_since({"status": {}}, START)
