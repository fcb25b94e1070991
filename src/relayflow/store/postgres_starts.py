"""Starting instances on PostgreSQL in one statement (the SQLite path: store/lifecycle.py).

Why: a start writes five tables (the instance, its first pointer, its `instance_started` audit
event, its contacts, one of the month's usage shards) and wakes the workers; through SQLAlchemy
that was six round trips in the router's transaction, and on a small machine each round trip
costs about as much CPU in the client and the server as the statement itself. Here it is one
CTE over `unnest`ed arrays. `start_instances` runs it in the caller's transaction
(`exec_driver_sql`), so it commits or rolls back with the rest of the unit; the `NOTIFY` is
delivered at that commit.

The router's common case goes further (`PostgresStarts`): an inbound event that no wait is
subscribed to costs one read (`lookup`) and one statement that stores it in the inbox and
starts its instances only if it is new (`record_and_start`), each in its own implicit
transaction on asyncpg's pool.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from relayflow.audit import AuditEvent
from relayflow.instance_state import InstanceStatus, NewInstance, PointerStatus
from relayflow.store.database import Database
from relayflow.store.inbox import InboundEvent
from relayflow.store.usage import month_of

WORK_CHANNEL = "relayflow_work"  # LISTENed to by every worker (engine/wakeup.py)
# Rows a month's usage count is spread over (tables.usage_shards): concurrent starts of
# one account update different rows instead of queueing for one row's lock until each commit.
USAGE_SHARDS = 16
LOOKUP_KEYS = 2  # reply keys `PostgresStarts.lookup` takes (an event has one or two)


def _start_sql(*, recording: bool) -> str:
    """The start CTE; `recording`: it first stores the inbound event in the inbox ($16..$20)
    and starts only if that event is new (no row with its dedupe key yet)."""
    fresh = (
        """
fresh AS (
    INSERT INTO inbox (id, account_id, kind, dedupe_key, payload_json, received_at_ms,
                       processed_at_ms)
    VALUES ($16, $1, $17, $18, $19, $20, $20)
    ON CONFLICT (account_id, dedupe_key) DO NOTHING
    RETURNING id
),"""
        if recording
        else ""
    )
    only_if_fresh = "WHERE EXISTS (SELECT 1 FROM fresh)" if recording else ""
    answer = (
        f"""SELECT (SELECT count(*) FROM fresh) AS fresh,
       (SELECT count(pg_notify('{WORK_CHANNEL}', ''))
        FROM (SELECT 1 FROM new_instances LIMIT 1) AS any_started) AS notified"""  # noqa: S608
        if recording
        else f"SELECT pg_notify('{WORK_CHANNEL}', '')"
    )
    # The f-string puts in stored names (module constants, never input).
    return f"""
WITH {fresh}
new_instances AS (
    INSERT INTO instances (id, account_id, definition_id, version, sub_account_id, status,
                           data_json, started_at_ms, next_run_at_ms, executions, trace_parent)
    SELECT n.id, $1, n.definition_id, n.version, n.sub_account_id,
           '{InstanceStatus.RUNNABLE.value}', n.data_json, n.now, n.now, 0, n.trace_parent
    FROM unnest($2::varchar[], $3::varchar[], $4::int[], $5::varchar[], $6::text[],
                $7::bigint[], $8::varchar[])
         AS n(id, definition_id, version, sub_account_id, data_json, now, trace_parent)
    {only_if_fresh}
    RETURNING id, started_at_ms
),
first_pointers AS (
    INSERT INTO pointers (id, instance_id, seq, step_id, status, attempt)
    SELECT p.id, i.id, 0, p.step_id, '{PointerStatus.PENDING.value}', 0
    FROM unnest($2::varchar[], $9::varchar[], $10::varchar[]) AS p(instance_id, id, step_id)
    JOIN new_instances i ON i.id = p.instance_id
),
started AS (
    INSERT INTO instance_events (instance_id, type, at_ms)
    SELECT i.id, '{AuditEvent.INSTANCE_STARTED.value}', i.started_at_ms FROM new_instances i
),
contacts AS (
    INSERT INTO instance_contacts (account_id, contact, instance_id)
    SELECT $1, c.contact, i.id
    FROM unnest($11::varchar[], $12::varchar[]) AS c(instance_id, contact)
    JOIN new_instances i ON i.id = c.instance_id
),
counted AS (
    INSERT INTO usage_shards (account_id, year, month, shard, started)
    SELECT $1, $13, $14, $15, count(*) FROM new_instances HAVING count(*) > 0
    ON CONFLICT (account_id, year, month, shard)
    DO UPDATE SET started = usage_shards.started + excluded.started
)
{answer}
"""  # noqa: S608


_START = _start_sql(recording=False)
_RECORD_AND_START = _start_sql(recording=True)

# What an inbound event would do, read before anything is written (`lookup`): the latest
# enabled versions its trigger starts (as store/definitions.enabled_for_trigger orders and
# matches them: a definition without a subaccount matches any event, one with a subaccount
# only that subaccount's), and whether a wait is subscribed to one of its (at most two) reply
# keys. Two key parameters, not `= ANY($4)`: asyncpg's prepared statement runs on a generic
# plan after five executions, and with an array PostgreSQL's generic plan may scan all the
# account's subscriptions (seen: 10 ms and 5,600 buffers a lookup with 20,000 waiting).
_LOOKUP = """
SELECT d.id, d.version, w.waited_for
FROM (SELECT EXISTS (SELECT 1 FROM subscriptions s
                     WHERE s.account_id = $1 AND s.event_key IN ($4, $5)) AS waited_for) w
LEFT JOIN definitions d
       ON d.account_id = $1 AND d.trigger = $2 AND d.status = 'enabled' AND d.is_latest
          AND d.deleted_at_ms IS NULL AND (d.sub_account_id IS NULL OR d.sub_account_id = $3)
ORDER BY d.created_at_ms, d.id
"""


def _start_arguments(account_id: str, new: Sequence[NewInstance], now_ms: int) -> list[Any]:
    year, month = month_of(now_ms)
    return [
        account_id,
        [item.id for item in new],
        [item.definition_id for item in new],
        [item.version for item in new],
        [item.sub_account_id for item in new],
        [orjson.dumps(item.data).decode() for item in new],
        [item.now_ms for item in new],
        [item.trace_parent for item in new],
        [item.first_pointer_id for item in new],
        [item.entry_step for item in new],
        [item.id for item in new for _ in item.contacts],
        [contact for item in new for contact in item.contacts],
        year,
        month,
        secrets.randbelow(USAGE_SHARDS),
    ]


async def start_instances(
    conn: AsyncConnection, account_id: str, new: Sequence[NewInstance], now_ms: int
) -> None:
    """Insert `new` (all of `account_id`), count them in this month's usage and wake the
    workers, in the caller's transaction."""
    # Through SQLAlchemy's driver-SQL path (asyncpg's `$n` style): it begins the transaction if
    # nothing has yet, and a lost connection becomes SQLAlchemy's error (a 503 in the API).
    await conn.exec_driver_sql(_START, tuple(_start_arguments(account_id, new, now_ms)))


@dataclass(frozen=True, slots=True)
class Lookup:
    """What an inbound event would do (`lookup`): the definition versions its trigger starts,
    in order, and whether a wait is subscribed to one of its reply keys."""

    versions: list[tuple[str, int]]
    waited_for: bool


class PostgresStarts:
    """The router's common case in two round trips and no explicit transaction (engine/router.py
    decides when it applies): a read of what the event would do, then one statement that
    stores the event in the inbox and, if it is new, starts the instances.

    Through asyncpg's own pool (store/database.py), as the engine's hot path is: through
    SQLAlchemy the same work was a BEGIN, four statements and a COMMIT, each a round trip.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    async def lookup(
        self, account_id: str, trigger: str, sub_account_id: str | None, keys: Sequence[str]
    ) -> Lookup:
        if len(keys) > LOOKUP_KEYS:
            raise ValueError(f"an event has at most {LOOKUP_KEYS} reply keys")
        first, second = (*keys, None, None)[:LOOKUP_KEYS]
        pool = await self._db.asyncpg_pool()
        async with pool.acquire(timeout=self._db.pool_timeout_s) as conn:
            rows = await conn.fetch(_LOOKUP, account_id, trigger, sub_account_id, first, second)
        versions = [(row[0], row[1]) for row in rows if row[0] is not None]
        return Lookup(versions, waited_for=bool(rows[0][2]))

    async def record_and_start(
        self,
        event: InboundEvent,
        new: Sequence[NewInstance],
    ) -> bool:
        """Store `event` in the inbox and start `new` (of its account), in one transaction;
        False, with nothing written, if the inbox already holds an event with its dedupe key."""
        arguments = _start_arguments(event.account_id, new, event.received_at_ms)
        arguments += [
            event.id,
            event.kind,
            event.dedupe_key,
            orjson.dumps(event.payload).decode(),
            event.received_at_ms,
        ]
        pool = await self._db.asyncpg_pool()
        async with pool.acquire(timeout=self._db.pool_timeout_s) as conn:
            row = await conn.fetchrow(_RECORD_AND_START, *arguments)
        return bool(row is not None and row["fresh"])


def postgres_starts_for(db: Database) -> PostgresStarts | None:
    """The one-statement route on PostgreSQL; None on SQLite (its group commit makes the router's
    transaction cheap there)."""
    return None if db.is_sqlite else PostgresStarts(db)
