"""The importer tests run once per source format (tests/support/importer_sources.py)."""

from __future__ import annotations

import pytest

from tests.support.importer_sources import WRITERS


@pytest.fixture(params=sorted(WRITERS))
def format_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)
