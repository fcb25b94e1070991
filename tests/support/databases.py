"""Databases for tests that start processes: a PostgreSQL database of the test's own, and
direct reads of what a (killed) process left behind."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import asyncpg
import pytest

PG_ADMIN_DSN = os.environ.get("RELAYFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def db_rows(db_url: str, sql: str) -> list[tuple[Any, ...]]:
    """Read the database directly (what the killed process left behind)."""
    if db_url.startswith("sqlite:///"):
        with closing(sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=10)) as conn:
            return conn.execute(sql).fetchall()

    async def fetch() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(db_url, timeout=10)
        try:
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(fetch())


def step_logs(db_url: str) -> dict[str, list[tuple[str, str, int]]]:
    """workflowId -> [(step id, status, attempts)] of every step execution, in order."""
    logs: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    rows = db_rows(
        db_url, "SELECT instance_id, step_id, status, attempt FROM pointers ORDER BY seq"
    )
    for instance_id, step_id, status, attempt in rows:
        logs[instance_id].append((step_id, status, attempt))
    return logs


def sql_ids(ids: Iterator[str] | list[str] | set[str]) -> str:
    """An SQL list of workflow ids (24 hex characters: safe to inline)."""
    checked = [i for i in ids if re.fullmatch(r"[0-9a-f]{24}", i)]
    return ", ".join(f"'{i}'" for i in checked) or "''"


# --------------------------------------------------------------------------------------------
# Databases: a SQLite file, or a PostgreSQL database of the test's own


async def pg_admin(statement: str) -> None:
    connection = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def fresh_pg_database(request: pytest.FixtureRequest, prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database (so `serve` creates the demo account), dropped after.

    The session's `postgres_url` fixture decides first whether PostgreSQL is there: a skip
    when it is not, a failure under CI."""
    request.getfixturevalue("postgres_url")
    name = f"{prefix}_{secrets.token_hex(4)}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    base, _, _ = PG_ADMIN_DSN.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
