"""Claims and leases: which worker runs an instance now.

Concurrency rules (DESIGN.md §6): a worker owns an instance while its lease lasts, and every
transaction that changes an instance first locks the instance row (`lock_instance`:
PostgreSQL `FOR UPDATE`; SQLite's `BEGIN IMMEDIATE` already admits one writer).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, Integer, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from relayflow.instance_state import InstanceStatus
from relayflow.store.direct import hot
from relayflow.store.tables import instances


def _lock_statement(dialect: str) -> Any:
    query = select(
        instances.c.status,
        instances.c.lease_owner,
        instances.c.account_id,
        instances.c.started_at_ms,
    ).where(instances.c.id == bindparam("instance_id"))
    return hot(query.with_for_update() if dialect == "postgresql" else query)


_LOCKS = {dialect: _lock_statement(dialect) for dialect in ("postgresql", "sqlite")}


async def lock_instance(conn: AsyncConnection, instance_id: str) -> Any:
    """Lock and read the instance row (status, lease owner) for the rest of the transaction."""
    return (await conn.execute(_LOCKS[conn.dialect.name], {"instance_id": instance_id})).first()


def _claim_statement(dialect: str) -> Any:
    now = bindparam("now", type_=BigInteger)
    candidates = (
        select(instances.c.id)
        .where(
            instances.c.status == InstanceStatus.RUNNABLE,
            instances.c.next_run_at_ms <= now,
            or_(instances.c.lease_until_ms.is_(None), instances.c.lease_until_ms < now),
        )
        .order_by(instances.c.next_run_at_ms)
        .limit(bindparam("limit", type_=Integer))
    )
    if dialect == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    return hot(
        update(instances)
        .where(instances.c.id.in_(candidates.scalar_subquery()))
        .values(lease_owner=bindparam("owner"), lease_until_ms=bindparam("lease_until"))
        .returning(instances.c.id)
    )


# Built once per dialect: every worker poll runs it.
_CLAIMS = {dialect: _claim_statement(dialect) for dialect in ("postgresql", "sqlite")}


async def claim_due(
    conn: AsyncConnection, owner: str, now_ms: int, lease_ms: int, limit: int
) -> list[str]:
    """Lease up to `limit` runnable instances with due work (expired leases are taken over)."""
    result = await conn.execute(
        _CLAIMS[conn.dialect.name],
        {"now": now_ms, "limit": limit, "owner": owner, "lease_until": now_ms + lease_ms},
    )
    return [row[0] for row in result]


_EARLIEST_DUE = hot(
    select(func.min(instances.c.next_run_at_ms)).where(
        instances.c.status == InstanceStatus.RUNNABLE, instances.c.lease_owner.is_(None)
    )
)


async def earliest_due(conn: AsyncConnection) -> int | None:
    """When the next unleased runnable instance is due (leased ones are their owner's)."""
    due = await conn.scalar(_EARLIEST_DUE)
    return int(due) if due is not None else None


async def lease_owners(conn: AsyncConnection, now_ms: int) -> list[str]:
    rows = await conn.execute(
        select(instances.c.lease_owner)
        .where(instances.c.lease_owner.is_not(None), instances.c.lease_until_ms >= now_ms)
        .distinct()
    )
    return [row[0] for row in rows]


async def release_leases_of(conn: AsyncConnection, owners: Sequence[str]) -> int:
    result = await conn.execute(
        update(instances)
        .where(instances.c.lease_owner.in_(owners))
        .values(lease_owner=None, lease_until_ms=None)
    )
    return int(result.rowcount or 0)
