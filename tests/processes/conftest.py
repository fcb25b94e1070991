"""Fixtures of the process-level suites only (the shared ones are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.databases import fresh_pg_database


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A new, empty PostgreSQL database per test, named after its suite (`relayflow_scale_out_…`)
    so a leftover one says which suite made it."""
    suite = request.module.__name__.rpartition(".")[2].removeprefix("test_")
    yield from fresh_pg_database(request, f"relayflow_{suite}")
