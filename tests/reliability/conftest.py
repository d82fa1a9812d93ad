"""The reliability tests' operator holds the chart's RBAC and nothing else, as it does in
its pod: no cluster-admin anywhere."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def operator_chart_rbac() -> bool:
    return True
