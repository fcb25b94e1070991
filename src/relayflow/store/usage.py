"""Monthly counters of started workflows per account (the 8x8 usage endpoints).

Counts are written to `usage_shards` (one of a few rows per account and month: concurrent
starts on PostgreSQL update different rows) and read as the sum of those rows and of `usage`,
which releases before migration 0011 wrote and may still write during a rolling upgrade.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer, bindparam, func, literal_column, select, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from relayflow.store.direct import hot
from relayflow.store.tables import usage, usage_shards


def month_of(now_ms: int) -> tuple[int, int]:
    moment = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    return moment.year, moment.month


def _upsert(dialect: str) -> Any:
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = dialect_insert(usage_shards)
    keys = [usage_shards.c.account_id, usage_shards.c.year, usage_shards.c.month]
    return hot(
        statement.on_conflict_do_update(
            index_elements=[*keys, usage_shards.c.shard],
            set_={"started": usage_shards.c.started + bindparam("add", type_=Integer)},
        )
    )


_UPSERTS = {dialect: _upsert(dialect) for dialect in ("postgresql", "sqlite")}


async def count_started(conn: AsyncConnection, account_id: str, count: int, now_ms: int) -> None:
    """Count `count` starts in this month (shard 0: SQLite has one writer at a time; the
    PostgreSQL start writes its own shard, store/postgres_starts.py)."""
    if count <= 0:
        return
    year, month = month_of(now_ms)
    await conn.execute(
        _UPSERTS[conn.dialect.name],
        {
            "account_id": account_id,
            "year": year,
            "month": month,
            "shard": 0,
            "started": count,
            "add": count,
        },
    )


def _counts(account_id: str) -> Any:
    """Every counter row of the account, both tables."""
    return union_all(
        select(usage.c.year, usage.c.month, usage.c.started).where(
            usage.c.account_id == account_id
        ),
        select(usage_shards.c.year, usage_shards.c.month, usage_shards.c.started).where(
            usage_shards.c.account_id == account_id
        ),
    ).subquery("counts")


async def monthly(conn: AsyncConnection, account_id: str) -> list[tuple[int, int, int]]:
    """(year, month, started) rows, newest month first."""
    counts = _counts(account_id)
    year, month = counts.c.year, counts.c.month
    rows = await conn.execute(
        select(year, month, func.sum(counts.c.started))
        .group_by(year, month)
        .order_by(year.desc(), month.desc())
    )
    return [(int(row[0]), int(row[1]), int(row[2])) for row in rows]


async def this_month(conn: AsyncConnection, account_id: str, now_ms: int) -> int:
    year, month = month_of(now_ms)
    counts = _counts(account_id)
    started = await conn.scalar(
        select(func.coalesce(func.sum(counts.c.started), literal_column("0"))).where(
            counts.c.year == year, counts.c.month == month
        )
    )
    return int(started or 0)
