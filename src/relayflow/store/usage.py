"""Monthly counters of started workflows per account (the 8x8 usage endpoints)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from relayflow.store.direct import hot
from relayflow.store.tables import usage


def month_of(now_ms: int) -> tuple[int, int]:
    moment = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    return moment.year, moment.month


def _upsert(dialect: str) -> Any:
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = dialect_insert(usage)
    return hot(
        statement.on_conflict_do_update(
            index_elements=[usage.c.account_id, usage.c.year, usage.c.month, usage.c.shard],
            set_={"started": usage.c.started + bindparam("add", type_=Integer)},
        )
    )


_UPSERTS = {dialect: _upsert(dialect) for dialect in ("postgresql", "sqlite")}


async def count_started(conn: AsyncConnection, account_id: str, count: int, now_ms: int) -> None:
    if count <= 0:
        return
    year, month = month_of(now_ms)
    await conn.execute(
        _UPSERTS[conn.dialect.name],
        # One writer at a time on SQLite: one row a month is enough there.
        {
            "account_id": account_id,
            "year": year,
            "month": month,
            "shard": 0,
            "started": count,
            "add": count,
        },
    )


async def monthly(conn: AsyncConnection, account_id: str) -> list[tuple[int, int, int]]:
    """(year, month, started) rows, newest month first."""
    started = func.sum(usage.c.started)
    rows = await conn.execute(
        select(usage.c.year, usage.c.month, started)
        .where(usage.c.account_id == account_id)
        .group_by(usage.c.year, usage.c.month)
        .order_by(usage.c.year.desc(), usage.c.month.desc())
    )
    return [(int(row[0]), int(row[1]), int(row[2])) for row in rows]


async def this_month(conn: AsyncConnection, account_id: str, now_ms: int) -> int:
    year, month = month_of(now_ms)
    started = await conn.scalar(
        select(func.sum(usage.c.started)).where(
            usage.c.account_id == account_id, usage.c.year == year, usage.c.month == month
        )
    )
    return int(started or 0)
