"""The engine's hot path on PostgreSQL, on asyncpg directly (the interface: store/hotpath.py).

Why not SQLAlchemy here: a worker's claim, load and save are most of the database work of an
instance, and through SQLAlchemy's async layer each statement cost a pool check-out with a
`pre_ping` round trip, an explicit BEGIN and COMMIT, and SQLAlchemy's execution machinery on
both sides of a greenlet switch. Here the common operations are one prepared statement each
(asyncpg keeps them per connection), run in its own implicit transaction, batched with arrays:

- claim: one `UPDATE … RETURNING` over `FOR UPDATE SKIP LOCKED` candidates, which returns the
  claimed rows as a load reads them; their active pointers in one more statement per batch
  (and, for waits whose timeout has passed, an unsubscribe);
- save: one statement per sprint: a CTE whose first part updates the instance row only while
  this worker holds the lease, and whose other parts (pointer inserts and updates,
  subscriptions, errors, audit events, all from `unnest`ed arrays) write only if it did;
- a send's first attempt: one `INSERT … ON CONFLICT DO NOTHING`; its answer: one `UPDATE`.
  The rarer paths (a re-attempt, a re-run finding its record) take a statement or two more.

`next_run_at_ms` stays derived from the pointers (store/next_run.py), but one statement sees
one snapshot: a reply the router delivered after the snapshot was taken would not be in it. The
router's delivery also rewrites the instance row, and an UPDATE re-reads a row that changed
under it, so the save compares the row's `xmin` with the one it last saw
(`InstanceState.row_version`): when another transaction wrote the row meanwhile, the instance
is simply due now, and its next sprint sees everything.

A sprint that starts a wait may find its event already there (a held message, a parked DTMF
callback): that lookup, which removes the event, runs in one transaction with the save, after
locking the instance row as every other writer does first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson

from relayflow.instance_state import (
    ACTIVE_POINTER_STATUSES,
    REPLY_KEY_PREFIX,
    InstanceState,
    InstanceStatus,
    PointerState,
    PointerStatus,
)
from relayflow.store.database import Database
from relayflow.store.messages import FAILED, SENDING, Attempt, MessageRow
from relayflow.store.sprints import LeaseLost, hand_over

_ACTIVE = ", ".join(f"'{status.value}'" for status in ACTIVE_POINTER_STATUSES)
_POINTER_STATUSES = {status.value: status for status in PointerStatus}
_INSTANCE_STATUSES = {status.value: status for status in InstanceStatus}

# The f-strings below put in the stored status names (module constants, never input).
_INSTANCE_COLUMNS = """
    i.id, i.account_id, i.definition_id, i.version, i.sub_account_id, i.status, i.data_json,
    i.started_at_ms, i.completed_at_ms, i.executions, i.trace_parent, i.xmin AS row_version,
    (SELECT max(p.seq) FROM pointers p WHERE p.instance_id = i.id) AS max_seq
"""
# The claim returns the claimed rows as a load would read them: one round trip fewer a batch.
_CLAIM = f"""
UPDATE instances i SET lease_owner = $1, lease_until_ms = $2
WHERE i.id IN (
    SELECT id FROM instances
    WHERE status = '{InstanceStatus.RUNNABLE.value}' AND next_run_at_ms <= $3
      AND (lease_until_ms IS NULL OR lease_until_ms < $3)
    ORDER BY next_run_at_ms
    LIMIT $4
    FOR UPDATE SKIP LOCKED
)
RETURNING {_INSTANCE_COLUMNS}
"""  # noqa: S608

_LOAD_INSTANCES = f"""
SELECT {_INSTANCE_COLUMNS}
FROM instances i
WHERE i.id = ANY($1::varchar[]) AND i.lease_owner = $2
"""  # noqa: S608

_LOAD_POINTERS = f"""
SELECT id, instance_id, seq, step_id, parent_id, status, started_at_ms, completed_at_ms,
       wake_at_ms, event_key, event_json, state_json, attempt
FROM pointers
WHERE instance_id = ANY($1::varchar[]) AND status IN ({_ACTIVE})
ORDER BY instance_id, seq
"""  # noqa: S608

# Waits whose timeout has passed lose their subscription before the sprint, so the router
# cannot also deliver to them. A delete that finds nothing lost to a delivery: the event is
# read again in a later statement (a new snapshot, after the router's commit).
_UNSUBSCRIBE_TIMED_OUT = """
DELETE FROM subscriptions WHERE pointer_id = ANY($1::varchar[]) RETURNING pointer_id
"""
_EVENTS_OF = "SELECT id, event_json FROM pointers WHERE id = ANY($1::varchar[])"

_LOCK_INSTANCE = "SELECT 1 FROM instances WHERE id = $1 FOR UPDATE"
_TAKE_PARKED = """
DELETE FROM parked_events WHERE id = (
    SELECT id FROM parked_events
    WHERE account_id = $1 AND event_key = $2 AND expires_at_ms > $3
    ORDER BY expires_at_ms LIMIT 1
    FOR UPDATE SKIP LOCKED
)
RETURNING payload_json
"""
_TAKE_HELD = """
DELETE FROM held_messages WHERE definition_id = $3 AND message_id = (
    SELECT message_id FROM held_messages
    WHERE account_id = $1 AND event_key = $2 AND definition_id = $3
    ORDER BY received_at_ms LIMIT 1
)
RETURNING payload_json
"""

# $1 instance, $2 owner, $3 now, $4-$9 the instance's new values ($9 NULL: Runnable unless the
# API suspended it meanwhile), $10 the row version last seen, $11 account; then arrays: new
# pointers $12-$23, changed pointers $24-$32, unsubscribe $33, subscribe $34-$35, errors
# $36-$38, audit events $39-$42. A NULL event in a pointer array leaves the stored one.
_SAVE = f"""
WITH saved AS (
    UPDATE instances i SET
        status = CASE
            WHEN $9::varchar IS NOT NULL THEN $9::varchar
            WHEN i.status = '{InstanceStatus.SUSPENDED.value}' THEN i.status
            ELSE '{InstanceStatus.RUNNABLE.value}' END,
        data_json = $4, completed_at_ms = $5, executions = $6,
        lease_owner = $7, lease_until_ms = $8,
        next_run_at_ms = CASE WHEN i.xmin = $10::xid THEN (
            SELECT min(CASE WHEN a.status = '{PointerStatus.PENDING.value}' OR a.has_event
                            THEN $3 ELSE a.wake END)
            FROM (
                SELECT p.status, p.event_json IS NOT NULL AS has_event, p.wake_at_ms AS wake
                FROM pointers p
                WHERE p.instance_id = $1 AND p.status IN ({_ACTIVE})
                  AND p.id <> ALL($24::varchar[])
                UNION ALL
                SELECT c.status, c.event_json IS NOT NULL OR p.event_json IS NOT NULL, c.wake
                FROM unnest($24::varchar[], $25::varchar[], $28::bigint[], $30::text[])
                     AS c(id, status, wake, event_json)
                JOIN pointers p ON p.id = c.id
                WHERE c.status IN ({_ACTIVE})
                UNION ALL
                SELECT n.status, n.event_json IS NOT NULL, n.wake
                FROM unnest($16::varchar[], $19::bigint[], $21::text[])
                     AS n(status, wake, event_json)
                WHERE n.status IN ({_ACTIVE})
            ) a
        ) ELSE $3 END
    WHERE i.id = $1 AND i.lease_owner = $2
      AND i.status <> '{InstanceStatus.TERMINATED.value}'
    RETURNING i.status, i.xmin
),
new_pointers AS (
    INSERT INTO pointers (id, instance_id, seq, step_id, parent_id, status, started_at_ms,
                          completed_at_ms, wake_at_ms, event_key, event_json, state_json,
                          attempt)
    SELECT n.id, $1, n.seq, n.step_id, n.parent_id, n.status, n.started, n.completed, n.wake,
           n.event_key, n.event_json, n.state_json, n.attempt
    FROM unnest($12::varchar[], $13::int[], $14::varchar[], $15::varchar[], $16::varchar[],
                $17::bigint[], $18::bigint[], $19::bigint[], $20::varchar[], $21::text[],
                $22::text[], $23::int[])
         AS n(id, seq, step_id, parent_id, status, started, completed, wake, event_key,
              event_json, state_json, attempt)
    WHERE EXISTS (SELECT 1 FROM saved)
),
changed_pointers AS (
    UPDATE pointers p SET
        status = c.status, started_at_ms = c.started, completed_at_ms = c.completed,
        wake_at_ms = c.wake, event_key = c.event_key,
        event_json = coalesce(c.event_json, p.event_json),
        state_json = c.state_json, attempt = c.attempt
    FROM unnest($24::varchar[], $25::varchar[], $26::bigint[], $27::bigint[], $28::bigint[],
                $29::varchar[], $30::text[], $31::text[], $32::int[])
         AS c(id, status, started, completed, wake, event_key, event_json, state_json, attempt)
    WHERE p.id = c.id AND EXISTS (SELECT 1 FROM saved)
),
unsubscribed AS (
    DELETE FROM subscriptions
    WHERE pointer_id = ANY($33::varchar[]) AND EXISTS (SELECT 1 FROM saved)
),
subscribed AS (
    INSERT INTO subscriptions (pointer_id, account_id, event_key, instance_id, created_at_ms)
    SELECT s.pointer_id, $11, s.event_key, $1, $3
    FROM unnest($34::varchar[], $35::varchar[]) AS s(pointer_id, event_key)
    WHERE EXISTS (SELECT 1 FROM saved)
),
errors AS (
    INSERT INTO workflow_errors (instance_id, step_id, message, error_time_ms)
    SELECT $1, e.step_id, e.message, e.at
    FROM unnest($36::varchar[], $37::text[], $38::bigint[]) AS e(step_id, message, at)
    WHERE EXISTS (SELECT 1 FROM saved)
),
audit AS (
    INSERT INTO instance_events (instance_id, type, step_id, at_ms, detail_json)
    SELECT $1, v.type, v.step_id, v.at, v.detail
    FROM unnest($39::varchar[], $40::varchar[], $41::bigint[], $42::text[])
         WITH ORDINALITY AS v(type, step_id, at, detail, position)
    WHERE EXISTS (SELECT 1 FROM saved)
    ORDER BY v.position
)
SELECT status, xmin FROM saved
"""  # noqa: S608


# --- sends (channels/recorded.py; the rules are store/messages.py's) ---------------------------
# The first attempt of a step execution's send is one statement: a row already there (a re-run
# after a crash, a concurrent duplicate) makes the insert do nothing, and it is read instead.
_MESSAGE_COLUMNS = """
    id, account_id, instance_id, pointer_id, channel, provider, sub_account_id, recipient,
    client_message_id, request_json, response_json, status, created_at_ms, updated_at_ms
"""
_INSERT_MESSAGE = f"""
INSERT INTO messages ({_MESSAGE_COLUMNS})
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)
ON CONFLICT (pointer_id) DO NOTHING
RETURNING id
"""  # noqa: S608
_SENT_BY_POINTER = "SELECT id, response_json, status FROM messages WHERE pointer_id = $1"
_RE_ATTEMPT = f"""
UPDATE messages SET request_json = $2, response_json = NULL, status = '{SENDING}',
                    updated_at_ms = $3
WHERE pointer_id = $1
"""  # noqa: S608
_RECORD_ANSWER = "UPDATE messages SET response_json = $2, status = $3 WHERE id = $1"
# 8x8's umid becomes the row's id: delivery receipts and GET /messages/{umid} find it by that.
_RECORD_ANSWER_WITH_UMID = (
    "UPDATE messages SET id = $4, response_json = $2, status = $3 WHERE id = $1"
)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _pointer(row: asyncpg.Record) -> PointerState:
    event_json = row["event_json"]
    state_json = row["state_json"]
    return PointerState(
        id=row["id"],
        seq=row["seq"],
        step_id=row["step_id"],
        parent_id=row["parent_id"],
        status=_POINTER_STATUSES[row["status"]],
        started_at_ms=row["started_at_ms"],
        completed_at_ms=row["completed_at_ms"],
        wake_at_ms=row["wake_at_ms"],
        event_key=row["event_key"],
        has_event=event_json is not None,
        event=orjson.loads(event_json) if event_json is not None else None,
        state=orjson.loads(state_json) if state_json else {},
        attempt=row["attempt"],
    )


def _instance(row: asyncpg.Record, pointers: dict[str, PointerState], now_ms: int) -> InstanceState:
    return InstanceState(
        id=row["id"],
        account_id=row["account_id"],
        definition_id=row["definition_id"],
        version=row["version"],
        sub_account_id=row["sub_account_id"],
        status=_INSTANCE_STATUSES[row["status"]],
        data=orjson.loads(row["data_json"]),
        started_at_ms=row["started_at_ms"],
        completed_at_ms=row["completed_at_ms"],
        executions=row["executions"],
        pointers=pointers,
        next_seq=int(row["max_seq"] or 0) + 1,
        trace_parent=row["trace_parent"],
        row_version=int(row["row_version"]),
        loaded_at_ms=now_ms,
    )


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows to one list per column (the arrays `unnest` turns back into rows)."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(column) for column in zip(*rows, strict=True)]


def _save_arguments(
    state: InstanceState,
    owner: str,
    now_ms: int,
    lease_until_ms: int | None,
    new_owner: str | None,
    subscribing: Sequence[tuple[str, str]],
    handed: dict[str, str],
) -> list[Any]:
    new_rows = []
    changed_rows = []
    for p in state.pointers.values():
        event_json = handed.get(p.id)
        state_json = _dumps(p.state) if p.state else None
        if p.new:
            new_rows.append(
                (
                    p.id,
                    p.seq,
                    p.step_id,
                    p.parent_id,
                    p.status.value,
                    p.started_at_ms,
                    p.completed_at_ms,
                    p.wake_at_ms,
                    p.event_key,
                    event_json,
                    state_json,
                    p.attempt,
                )
            )
        elif p.dirty or event_json is not None:
            changed_rows.append(
                (
                    p.id,
                    p.status.value,
                    p.started_at_ms,
                    p.completed_at_ms,
                    p.wake_at_ms,
                    p.event_key,
                    event_json,
                    state_json,
                    p.attempt,
                )
            )
    final = None if state.status == InstanceStatus.RUNNABLE else state.status.value
    return [
        state.id,
        owner,
        now_ms,
        _dumps(state.data),
        state.completed_at_ms,
        state.executions,
        new_owner,
        lease_until_ms,
        final,
        state.row_version,
        state.account_id,
        *_columns(new_rows, 12),
        *_columns(changed_rows, 9),
        list(state.unsubscribe),
        *_columns(subscribing, 2),
        *_columns(state.errors, 3),
        *_columns(
            [
                (kind.value, step, at, _dumps(detail) if detail is not None else None)
                for kind, step, at, detail in state.events
            ],
            4,
        ),
    ]


class PostgresHotPath:
    """Claim, load and save on asyncpg (module docstring)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def _pool(self) -> asyncpg.Pool:
        return await self._db.asyncpg_pool()

    async def claim(
        self, owner: str, now_ms: int, lease_ms: int, limit: int
    ) -> list[InstanceState]:
        pool = await self._pool()
        async with pool.acquire(timeout=self._db.pool_timeout_s) as conn:
            rows = await conn.fetch(_CLAIM, owner, now_ms + lease_ms, now_ms, limit)
            return await self._with_pointers(conn, rows, now_ms) if rows else []

    async def load(
        self, instance_ids: Sequence[str], owner: str, now_ms: int
    ) -> list[InstanceState]:
        if not instance_ids:
            return []
        pool = await self._pool()
        async with pool.acquire(timeout=self._db.pool_timeout_s) as conn:
            rows = await conn.fetch(_LOAD_INSTANCES, list(instance_ids), owner)
            return await self._with_pointers(conn, rows, now_ms) if rows else []

    async def _with_pointers(
        self, conn: asyncpg.Connection, rows: Sequence[asyncpg.Record], now_ms: int
    ) -> list[InstanceState]:
        """The instances of `rows` with their active pointers (one statement for the batch)."""
        by_instance: dict[str, dict[str, PointerState]] = {row["id"]: {} for row in rows}
        timed_out: list[PointerState] = []
        for pointer_row in await conn.fetch(_LOAD_POINTERS, list(by_instance)):
            pointer = _pointer(pointer_row)
            by_instance[pointer_row["instance_id"]][pointer.id] = pointer
            if pointer.event_key and not pointer.has_event and (pointer.wake_at_ms or 0) <= now_ms:
                timed_out.append(pointer)
        if timed_out:
            await self._unsubscribe_timed_out(conn, timed_out)
        return [_instance(row, by_instance[row["id"]], now_ms) for row in rows]

    async def _unsubscribe_timed_out(
        self, conn: asyncpg.Connection, waits: Sequence[PointerState]
    ) -> None:
        """A wait whose timeout has passed stops listening; if the router delivered to it
        first, the event wins (as in `store.sprints.load_state`)."""
        removed = {
            row[0] for row in await conn.fetch(_UNSUBSCRIBE_TIMED_OUT, [w.id for w in waits])
        }
        raced = [w for w in waits if w.id not in removed]
        if not raced:
            return
        events = {row[0]: row[1] for row in await conn.fetch(_EVENTS_OF, [w.id for w in raced])}
        for wait in raced:
            event_json = events.get(wait.id)
            if event_json is not None:
                wait.has_event, wait.event = True, orjson.loads(event_json)

    async def save(
        self, state: InstanceState, owner: str, now_ms: int, *, lease_until_ms: int, release: bool
    ) -> bool:
        pool = await self._pool()
        async with pool.acquire(timeout=self._db.pool_timeout_s) as conn:
            if not state.subscribe:
                written = await conn.fetchrow(
                    _SAVE,
                    *_save_arguments(
                        state, owner, now_ms, *_lease(owner, lease_until_ms, release, False), [], {}
                    ),
                )
                delivered = False
            else:
                async with conn.transaction():
                    # The instance row first, as the router and every other writer lock it
                    # (no lock-order cycle with a delivery or a parked-event purge).
                    await conn.execute(_LOCK_INSTANCE, state.id)

                    async def take(key: str) -> str | None:
                        if key.startswith(REPLY_KEY_PREFIX):
                            found = await conn.fetchval(
                                _TAKE_HELD, state.account_id, key, state.definition_id
                            )
                        else:
                            found = await conn.fetchval(_TAKE_PARKED, state.account_id, key, now_ms)
                        return str(found) if found is not None else None

                    subscribing, handed = await hand_over(state, take, now_ms)
                    delivered = bool(handed)
                    written = await conn.fetchrow(
                        _SAVE,
                        *_save_arguments(
                            state,
                            owner,
                            now_ms,
                            *_lease(owner, lease_until_ms, release, delivered),
                            subscribing,
                            handed,
                        ),
                    )
                    if written is None:
                        raise LeaseLost(state.id)  # rolls the taken events back
        if written is None:
            raise LeaseLost(state.id)  # terminated or taken over: nothing was written
        state.status = _INSTANCE_STATUSES[written["status"]]
        state.row_version = int(written["xmin"])
        return delivered

    async def record_attempt(self, message: MessageRow) -> Attempt:
        pointer_id = message.pointer_id
        assert pointer_id is not None, "a send is keyed by its step execution"
        pool = await self._pool()
        async with pool.acquire(timeout=self._db.pool_timeout_s) as conn:
            if await conn.fetchval(_INSERT_MESSAGE, *_message_values(message)) is not None:
                return Attempt(message.id, None)
            existing = await conn.fetchrow(_SENT_BY_POINTER, pointer_id)
            if existing is None:  # deleted meanwhile (retention): record it afresh
                await conn.execute(_INSERT_MESSAGE, *_message_values(message))
                return Attempt(message.id, None)
            if existing["response_json"] is not None and existing["status"] != FAILED:
                return Attempt(existing["id"], orjson.loads(existing["response_json"]))
            await conn.execute(
                _RE_ATTEMPT, pointer_id, _dumps(message.request), message.created_at_ms
            )
            return Attempt(existing["id"], None)

    async def record_answer(
        self, row_id: str, umid: str | None, answer: dict[str, Any], status: str
    ) -> None:
        pool = await self._pool()
        async with pool.acquire(timeout=self._db.pool_timeout_s) as conn:
            if umid:
                await conn.execute(_RECORD_ANSWER_WITH_UMID, row_id, _dumps(answer), status, umid)
            else:
                await conn.execute(_RECORD_ANSWER, row_id, _dumps(answer), status)

    async def record_answered_send(self, message: MessageRow) -> dict[str, Any]:
        pointer_id = message.pointer_id
        assert pointer_id is not None, "a send is keyed by its step execution"
        assert message.response is not None, "recorded with its answer"
        pool = await self._pool()
        async with pool.acquire(timeout=self._db.pool_timeout_s) as conn:
            if await conn.fetchval(_INSERT_MESSAGE, *_message_values(message)) is not None:
                return message.response
            existing = await conn.fetchrow(_SENT_BY_POINTER, pointer_id)
        if existing is not None and existing["response_json"] is not None:
            answer: dict[str, Any] = orjson.loads(existing["response_json"])
            return answer
        # As on SQLite, where the insert fails on the unique step execution.
        raise RuntimeError(f"step execution {pointer_id} has a send recorded without an answer")


def _message_values(message: MessageRow) -> tuple[Any, ...]:
    return (
        message.id,
        message.account_id,
        message.instance_id,
        message.pointer_id,
        message.channel,
        message.provider,
        message.sub_account_id,
        message.recipient,
        message.client_message_id,
        _dumps(message.request),
        _dumps(message.response) if message.response else None,
        message.status,
        message.created_at_ms,
    )


def _lease(
    owner: str, lease_until_ms: int, release: bool, delivered: bool
) -> tuple[int | None, str | None]:
    """The lease after the save: kept (renewed) at a checkpoint or when a handed-over event
    lets the sprint run on; else released."""
    keep = not release or delivered
    return (lease_until_ms if keep else None, owner if keep else None)
