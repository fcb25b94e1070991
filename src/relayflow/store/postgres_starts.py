"""Starting instances on PostgreSQL in one statement (the SQLite path: store/lifecycle.py).

Why: a start writes five tables (the instance, its first pointer, its `instance_started` audit
event, its contacts, one of the month's usage shards) and wakes the workers; through SQLAlchemy
that was six round trips in the router's transaction, and on a small machine each round trip
costs about as much CPU in the client and the server as the statement itself. Here it is one
CTE over `unnest`ed arrays, run in the caller's transaction (`exec_driver_sql`), so it commits
or rolls back with the rest of the unit. The `NOTIFY` is delivered at that commit.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from relayflow.audit import AuditEvent
from relayflow.instance_state import InstanceStatus, NewInstance, PointerStatus
from relayflow.store.usage import month_of

WORK_CHANNEL = "relayflow_work"  # LISTENed to by every worker (engine/wakeup.py)
# Rows a month's usage count is spread over (tables.usage_shards): concurrent starts of
# one account update different rows instead of queueing for one row's lock until each commit.
USAGE_SHARDS = 16

# The f-string puts in stored names (module constants, never input).
_START = f"""
WITH new_instances AS (
    INSERT INTO instances (id, account_id, definition_id, version, sub_account_id, status,
                           data_json, started_at_ms, next_run_at_ms, executions, trace_parent)
    SELECT n.id, $1, n.definition_id, n.version, n.sub_account_id,
           '{InstanceStatus.RUNNABLE.value}', n.data_json, n.now, n.now, 0, n.trace_parent
    FROM unnest($2::varchar[], $3::varchar[], $4::int[], $5::varchar[], $6::text[],
                $7::bigint[], $8::varchar[])
         AS n(id, definition_id, version, sub_account_id, data_json, now, trace_parent)
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
    SELECT $1, $13, $14, $15, count(*) FROM new_instances
    ON CONFLICT (account_id, year, month, shard)
    DO UPDATE SET started = usage_shards.started + excluded.started
)
SELECT pg_notify('{WORK_CHANNEL}', '')
"""  # noqa: S608


async def start_instances(
    conn: AsyncConnection, account_id: str, new: Sequence[NewInstance], now_ms: int
) -> None:
    """Insert `new` (all of `account_id`), count them in this month's usage and wake the
    workers, in the caller's transaction."""
    year, month = month_of(now_ms)
    # Through SQLAlchemy's driver-SQL path (asyncpg's `$n` style): it begins the transaction if
    # nothing has yet, and a lost connection becomes SQLAlchemy's error (a 503 in the API).
    await conn.exec_driver_sql(
        _START,
        (
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
        ),
    )
