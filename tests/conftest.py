"""Shared fixtures: every store/API test runs once on SQLite and once on PostgreSQL.

PostgreSQL: a fresh database per test session on 127.0.0.1:5432 (trust auth), emptied between
tests. When the server is absent the PostgreSQL half is skipped with a clear message, except
under CI (`CI` set), where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from relayflow.api.app import create_app
from relayflow.api.context import AppContext
from relayflow.clock import ManualClock
from relayflow.config import Settings
from relayflow.store.database import Database
from relayflow.store.tables import metadata
from tests.support.console import Console
from tests.support.databases import PG_ADMIN_DSN, pg_admin
from tests.support.flows import Flow
from tests.support.tenants import Tenant, make_tenant


def _pg_url(database: str) -> str:
    base, _, _ = PG_ADMIN_DSN.rpartition("/")
    return f"{base}/{database}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a throw-away database for this test session (dropped at the end)."""
    name = f"relayflow_test_{secrets.token_hex(4)}"
    try:
        asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as error:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_ADMIN_DSN} is required under CI: {error}")
        pytest.skip(
            f"PostgreSQL not reachable at {PG_ADMIN_DSN} ({error}); PostgreSQL tests skipped"
        )
    url = _pg_url(name)

    async def migrate() -> None:
        db = Database(url)
        await db.migrate()
        await db.dispose()

    asyncio.run(migrate())
    yield url
    asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'relayflow.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


async def _empty_tables(db: Database) -> None:
    async with db.transaction() as conn:
        if db.is_sqlite:
            for table in reversed(metadata.sorted_tables):
                await conn.execute(table.delete())
        else:
            names = ", ".join(table.name for table in metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names} CASCADE"))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.migrate()
    await _empty_tables(database)
    yield database
    await database.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


@pytest.fixture
async def context(
    db: Database, clock: ManualClock, settings: Settings
) -> AsyncIterator[AppContext]:
    runtime = AppContext(settings=settings, db=db, clock=clock)
    yield runtime
    runtime.evaluator.close()
    await runtime.http.close()


@pytest.fixture
async def client(context: AppContext) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://relayflow.test") as http:
        yield http


@pytest.fixture
async def tenant(context: AppContext) -> Tenant:
    return await make_tenant(context, "acme")


@pytest.fixture
async def other_tenant(context: AppContext) -> Tenant:
    return await make_tenant(context, "globex")


@pytest.fixture
def flow(client: httpx.AsyncClient, tenant: Tenant, context: AppContext) -> Flow:
    """Flows driven through the API, with the worker run by hand on the manual clock."""
    return Flow(client, tenant, context)


@pytest.fixture
def console(client: httpx.AsyncClient) -> Console:
    """The console as a signed-out browser sees it."""
    return Console(client)
