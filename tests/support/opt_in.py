"""Tests that run only when asked for: marked, and deselected unless `-m` names the
marker or the opt-in environment variable is 1 (the image and real-node suites, whose
set-up costs many minutes)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest


def deselect_unless_opted_in(
    config: pytest.Config,
    items: list[pytest.Item],
    marker: str,
    env: str,
    belongs: Callable[[pytest.Item], bool],
) -> None:
    """Mark every item `belongs` picks with `marker`; unless opted in, deselect them."""
    opted_in = marker in (config.getoption("-m") or "") or os.environ.get(env) == "1"
    kept, dropped = [], []
    for item in items:
        if belongs(item):
            item.add_marker(getattr(pytest.mark, marker))
            if not opted_in:
                dropped.append(item)
                continue
        kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
