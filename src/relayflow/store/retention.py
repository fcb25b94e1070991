"""Purging ended instances and everything that hangs off them, in the caller's transaction.

An instance is *purgeable* when it has ended (Complete or Terminated), holds no lease, and ended
before the cutoff. Complete instances carry `completed_at_ms`; Terminated ones keep it NULL (it
is 8x8's `completedAt`), so a Terminated instance counts as ended before the cutoff when it
started before it and none of its events (the last is `instance_terminated`) is younger.
Runnable and Suspended instances are never selected, however old.

Rows are found through the instance ids of one batch, each by an index: pointers, errors,
events and contacts by `instance_id`; subscriptions and messages by their step execution
(`pointer_id`; every message a step sends records its pointer); delivery receipts by
(account, umid) of those messages. Nothing relies on foreign-key cascades (some of these
tables have none).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    delete,
    exists,
    func,
    literal_column,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import TextClause

from relayflow.instance_state import InstanceStatus
from relayflow.store.tables import (
    instance_contacts,
    instance_events,
    instances,
    message_receipts,
    messages,
    pointers,
    subscriptions,
    workflow_errors,
)

# Every table a purge removes rows from, in the order they are deleted (children first).
PURGED_TABLES = (
    "message_receipts",
    "messages",
    "subscriptions",
    "instance_contacts",
    "workflow_errors",
    "instance_events",
    "pointers",
    "instances",
)
# The status is written as a literal, not a bind parameter: the planners use a partial index
# only when the query's WHERE clause visibly implies the index's (`status = 'Complete'`).
# SQLite without ANALYZE statistics prefers `ix_instances_due (status, ...)` for that term,
# scanning every ended instance and sorting them; calling the term likely (it is true on every
# row of the partial index) makes it walk the partial index instead.
_STATUS_ON_SQLITE = "likelihood(instances.status = '{}', 0.99)"
# Delete receipts this many umids at a time (well under SQLite's bind-parameter limit).
_UMID_CHUNK = 500


def _status_is(status: InstanceStatus, sqlite: bool) -> ColumnElement[bool] | TextClause:
    if sqlite:
        return text(_STATUS_ON_SQLITE.format(status))
    return instances.c.status == literal_column(f"'{status}'")


def _ended(sqlite: bool) -> ColumnElement[bool] | TextClause:
    """The final delete's guard (the chosen rows are locked: it never excludes one). On SQLite
    the unary `+` keeps the planner off `ix_instances_due`, which for `status IN (...)` visited
    every ended instance (~650 ms a batch at a million rows; bench/RESULTS.md): the ids pick
    the rows by primary key."""
    ended = (InstanceStatus.COMPLETE, InstanceStatus.TERMINATED)
    if sqlite:
        listed = ", ".join(f"'{status}'" for status in ended)
        return text(f"+instances.status IN ({listed})")
    return instances.c.status.in_(ended)


def _complete_candidates(cutoff_ms: int, sqlite: bool) -> Select[Any]:
    return (
        select(instances.c.id)
        .where(
            _status_is(InstanceStatus.COMPLETE, sqlite),
            instances.c.completed_at_ms < cutoff_ms,
            instances.c.lease_owner.is_(None),
        )
        .order_by(instances.c.completed_at_ms)
    )


def _terminated_candidates(cutoff_ms: int, sqlite: bool) -> Select[Any]:
    younger_event = exists().where(
        instance_events.c.instance_id == instances.c.id, instance_events.c.at_ms >= cutoff_ms
    )
    return (
        select(instances.c.id)
        .where(
            _status_is(InstanceStatus.TERMINATED, sqlite),
            instances.c.started_at_ms < cutoff_ms,
            instances.c.lease_owner.is_(None),
            ~younger_event,
        )
        .order_by(instances.c.started_at_ms)
    )


async def purge_batch(
    conn: AsyncConnection, cutoff_ms: int, limit: int, *, skip_locked: bool
) -> dict[str, int]:
    """Delete up to `limit` purgeable instances with all their rows; rows deleted per table
    (an empty dict when nothing was due).

    `skip_locked` (PostgreSQL): lock the chosen instance rows with `FOR UPDATE SKIP LOCKED`,
    so a batch never waits for, nor makes wait, a transaction that holds one of them."""
    sqlite = conn.dialect.name == "sqlite"
    ids = await _choose(conn, _complete_candidates(cutoff_ms, sqlite), limit, skip_locked)
    if len(ids) < limit:
        terminated = _terminated_candidates(cutoff_ms, sqlite)
        ids += await _choose(conn, terminated, limit - len(ids), skip_locked)
    if not ids:
        return {}
    of_batch = instances.c.id.in_(ids)
    batch_pointers = select(pointers.c.id).where(pointers.c.instance_id.in_(ids))
    removed = dict.fromkeys(PURGED_TABLES, 0)
    sent = await conn.execute(
        select(messages.c.account_id, messages.c.id).where(
            messages.c.pointer_id.in_(batch_pointers)
        )
    )
    umids: dict[str, list[str]] = defaultdict(list)
    for account_id, umid in sent:
        umids[account_id].append(umid)
    for account_id, account_umids in umids.items():
        for start in range(0, len(account_umids), _UMID_CHUNK):
            chunk = account_umids[start : start + _UMID_CHUNK]
            removed["message_receipts"] += await _delete(
                conn,
                message_receipts,
                and_(
                    message_receipts.c.account_id == account_id,
                    message_receipts.c.umid.in_(chunk),
                ),
            )
    for by_pointer in (messages, subscriptions):
        removed[by_pointer.name] = await _delete(
            conn, by_pointer, by_pointer.c.pointer_id.in_(batch_pointers)
        )
    for table in (instance_contacts, workflow_errors, instance_events, pointers):
        removed[table.name] = await _delete(conn, table, table.c.instance_id.in_(ids))
    removed["instances"] = await _delete(conn, instances, and_(of_batch, _ended(sqlite)))
    return removed


async def count_purgeable(conn: AsyncConnection, cutoff_ms: int) -> dict[str, int]:
    """What a purge with this cutoff would delete now, per table (a dry run: reads only)."""
    sqlite = conn.dialect.name == "sqlite"
    due = union_all(
        _complete_candidates(cutoff_ms, sqlite).order_by(None),
        _terminated_candidates(cutoff_ms, sqlite).order_by(None),
    ).subquery()
    due_ids = select(due.c.id)
    due_pointers = select(pointers.c.id).where(pointers.c.instance_id.in_(due_ids))
    counts = {
        "instances": await _count(conn, select(func.count()).select_from(due)),
        "message_receipts": await _count(
            conn,
            select(func.count())
            .select_from(message_receipts)
            .join(
                messages,
                and_(
                    messages.c.account_id == message_receipts.c.account_id,
                    messages.c.id == message_receipts.c.umid,
                ),
            )
            .where(messages.c.pointer_id.in_(due_pointers)),
        ),
    }
    for by_pointer in (messages, subscriptions):
        counts[by_pointer.name] = await _count(
            conn,
            select(func.count())
            .select_from(by_pointer)
            .where(by_pointer.c.pointer_id.in_(due_pointers)),
        )
    for table in (instance_contacts, workflow_errors, instance_events, pointers):
        counts[table.name] = await _count(
            conn,
            select(func.count()).select_from(table).where(table.c.instance_id.in_(due_ids)),
        )
    return {name: counts[name] for name in PURGED_TABLES}


async def sqlite_auto_vacuum_mode(conn: AsyncConnection) -> str:
    """`none`, `full` or `incremental`: whether freed pages can go back to the file system."""
    mode = (await conn.exec_driver_sql("PRAGMA auto_vacuum")).scalar()
    return {0: "none", 1: "full", 2: "incremental"}.get(int(mode or 0), "none")


async def sqlite_page_counts(conn: AsyncConnection) -> tuple[int, int]:
    """(pages in the file, of which free)."""
    pages = (await conn.exec_driver_sql("PRAGMA page_count")).scalar()
    free = (await conn.exec_driver_sql("PRAGMA freelist_count")).scalar()
    return int(pages or 0), int(free or 0)


async def sqlite_incremental_vacuum(conn: AsyncConnection, max_pages: int) -> int:
    """Give up to `max_pages` free pages back to the file system (an incremental-vacuum
    database only); the pages given back.

    One page per statement: `PRAGMA incremental_vacuum(N)` frees one page per step and the
    sqlite3 module steps a statement without result columns only once (the unfinished
    statement would also keep the write lock)."""
    _, free = await sqlite_page_counts(conn)
    if await sqlite_auto_vacuum_mode(conn) != "incremental":
        return 0
    pages = min(free, max_pages)
    for _ in range(pages):
        await conn.exec_driver_sql("PRAGMA incremental_vacuum(1)")
    return pages


async def _choose(
    conn: AsyncConnection, candidates: Select[Any], limit: int, skip_locked: bool
) -> list[str]:
    query = candidates.limit(limit)
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    return [row[0] for row in await conn.execute(query)]


async def _delete(conn: AsyncConnection, table: Any, where: ColumnElement[bool]) -> int:
    result = await conn.execute(delete(table).where(where))
    return int(result.rowcount or 0)


async def _count(conn: AsyncConnection, query: Select[Any]) -> int:
    return int((await conn.execute(query)).scalar() or 0)
