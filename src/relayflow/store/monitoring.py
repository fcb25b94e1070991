"""What the operator's gauges and readiness read: whole-database counts over indexes.

`instances_by_status` counts a range of `ix_instances_due (status, next_run_at_ms)` per status
(index-only on PostgreSQL); `due_unclaimed` reads the Runnable range due by now. Counting the
ended statuses walks every ended instance (140-240 ms at a million; bench/RESULTS.md), so the
service asks for those far less often.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from relayflow.instance_state import InstanceStatus
from relayflow.store.migrations import current_revision, head_revision, known_revisions
from relayflow.store.tables import instances

_KNOWN: list[tuple[str | None, frozenset[str]]] = []  # (head, every revision), read once


async def instances_by_status(conn: AsyncConnection, statuses: Sequence[str]) -> dict[str, int]:
    """How many instances have each of `statuses`: a range of `ix_instances_due` per status,
    so the live ones (Runnable, Suspended: few) cost milliseconds however many have ended."""
    rows = await conn.execute(
        select(instances.c.status, func.count())
        .where(instances.c.status.in_(list(statuses)))
        .group_by(instances.c.status)
    )
    return {status: int(count) for status, count in rows}


def _unclaimed_due(now_ms: int) -> ColumnElement[bool]:
    return and_(
        instances.c.status == InstanceStatus.RUNNABLE,
        instances.c.next_run_at_ms <= now_ms,
        or_(instances.c.lease_until_ms.is_(None), instances.c.lease_until_ms < now_ms),
    )


async def due_unclaimed(conn: AsyncConnection, now_ms: int) -> int:
    """Runnable instances with work due now that no live lease holds."""
    count = await conn.scalar(
        select(func.count()).select_from(instances).where(_unclaimed_due(now_ms))
    )
    return int(count or 0)


async def oldest_due_unclaimed(conn: AsyncConnection, now_ms: int) -> int | None:
    """When the longest-waiting unclaimed work became due (how far behind the workers are)."""
    due = await conn.scalar(
        select(func.min(instances.c.next_run_at_ms)).where(_unclaimed_due(now_ms))
    )
    return int(due) if due is not None else None


async def schema_state(conn: AsyncConnection) -> tuple[str | None, str | None, bool]:
    """(the database's migration revision, the newest this code knows, whether this code knows
    the database's revision at all: a newer release may have migrated it already)."""
    if not _KNOWN:
        _KNOWN.append((head_revision(), known_revisions()))
    head, known = _KNOWN[0]
    current = await conn.run_sync(current_revision)
    return current, head, current is None or current in known
