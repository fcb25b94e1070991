"""Queries on instances, pointers, subscriptions and their audit rows.

Concurrency rules (DESIGN.md §6): a worker owns an instance while its lease lasts; every
transaction that changes an instance first locks the instance row (PostgreSQL `FOR UPDATE`;
SQLite's `BEGIN IMMEDIATE` already admits one writer), and `next_run_at_ms` is always
recomputed from the pointer rows inside that transaction, so a reply delivered by the router
and a worker's write can never hide each other's wake-ups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from relayflow.instance_state import (
    ACTIVE_POINTER_STATUSES,
    REPLY_KEY_PREFIX,
    InstanceState,
    InstanceStatus,
    PointerState,
    PointerStatus,
)
from relayflow.store.direct import hot
from relayflow.store.held import take_held
from relayflow.store.tables import (
    instance_contacts,
    instance_events,
    instances,
    parked_events,
    pointers,
    subscriptions,
    workflow_errors,
)
from relayflow.telemetry import metrics


class LeaseLost(Exception):
    """Another worker (or a terminate) took the instance; this worker's changes are dropped."""


# Stored statuses as members: `PointerStatus(value)` costs ~1 µs, a dict lookup ~30 ns.
_POINTER_STATUSES = {status.value: status for status in PointerStatus}
_INSTANCE_STATUSES = {status.value: status for status in InstanceStatus}
# Statuses in which an instance can still take events, skips and a terminate.
_LIVE = (InstanceStatus.RUNNABLE, InstanceStatus.SUSPENDED)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


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


# Hot-path statements are built once: SQLAlchemy then reuses their compiled form instead of
# rebuilding and re-keying a statement per call (most of the CPU of a transition, measured).
# Plain equalities, not `in_()`: an IN list is re-expanded at every execution of a hot statement.
_ACTIVE = or_(*(pointers.c.status == status for status in ACTIVE_POINTER_STATUSES))
_NEXT_RUN = (
    select(
        func.min(
            case(
                (
                    or_(
                        pointers.c.status == PointerStatus.PENDING,
                        pointers.c.event_json.is_not(None),
                    ),
                    bindparam("now", type_=BigInteger),
                ),
                else_=pointers.c.wake_at_ms,
            )
        )
    )
    .where(pointers.c.instance_id == bindparam("instance_id"), _ACTIVE)
    .scalar_subquery()
)
_REFRESH_NEXT_RUN = hot(
    update(instances)
    .where(instances.c.id == bindparam("instance_id"))
    .values(next_run_at_ms=_NEXT_RUN)
)
_SELECT_INSTANCE = hot(select(instances).where(instances.c.id == bindparam("instance_id")))
_SELECT_ACTIVE_POINTERS = hot(
    select(pointers)
    .where(pointers.c.instance_id == bindparam("instance_id"), _ACTIVE)
    .order_by(pointers.c.seq)
)
_MAX_SEQ = hot(
    select(func.max(pointers.c.seq)).where(pointers.c.instance_id == bindparam("instance_id"))
)
_INSERT_POINTERS = hot(insert(pointers))
_INSERT_INSTANCES = hot(insert(instances))
_INSERT_EVENTS = hot(insert(instance_events))
_INSERT_CONTACTS = hot(insert(instance_contacts))
_UPDATE_POINTER = hot(
    update(pointers)
    .where(pointers.c.id == bindparam("pointer_id"))
    .values(
        status=bindparam("p_status"),
        started_at_ms=bindparam("p_started"),
        completed_at_ms=bindparam("p_completed"),
        wake_at_ms=bindparam("p_wake"),
        event_key=bindparam("p_event_key"),
        state_json=bindparam("p_state"),
        attempt=bindparam("p_attempt"),
    )
)
_SAVE_VALUES = {
    "data_json": bindparam("data_json"),
    "completed_at_ms": bindparam("completed_at_ms"),
    "executions": bindparam("executions"),
    "lease_owner": bindparam("new_owner"),
    "lease_until_ms": bindparam("lease_until"),
    "next_run_at_ms": _NEXT_RUN,
}
_SAVE_WHERE = (
    instances.c.id == bindparam("instance_id"),
    instances.c.lease_owner == bindparam("owner"),
    instances.c.status != InstanceStatus.TERMINATED,
)
# A Runnable instance suspended by the API during the sprint stays suspended. The literals
# are typed: a bare enum member would be an untyped bind (no cast on asyncpg).
_SUSPENDED = literal(InstanceStatus.SUSPENDED, String)
_RUNNABLE = literal(InstanceStatus.RUNNABLE, String)
_SAVE_RUNNABLE = hot(
    update(instances)
    .where(*_SAVE_WHERE)
    .values(
        status=case((instances.c.status == InstanceStatus.SUSPENDED, _SUSPENDED), else_=_RUNNABLE),
        **_SAVE_VALUES,
    )
    .returning(instances.c.status)
)
_SAVE_FINAL = hot(
    update(instances)
    .where(*_SAVE_WHERE)
    .values(status=bindparam("new_status"), **_SAVE_VALUES)
    .returning(instances.c.status)
)


async def refresh_next_run(conn: AsyncConnection, instance_id: str, now_ms: int) -> None:
    """Derive `next_run_at_ms` from the pointers: now for pending work or delivered events,
    else the earliest wake-up; NULL when nothing is due."""
    await conn.execute(_REFRESH_NEXT_RUN, {"instance_id": instance_id, "now": now_ms})


# --- starting --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewInstance:
    id: str
    account_id: str
    definition_id: str
    version: int
    sub_account_id: str | None
    data: dict[str, Any]
    entry_step: str
    first_pointer_id: str
    now_ms: int
    contacts: tuple[str, ...] = ()  # who the instance is about (engine/contacts.py)
    trace_parent: str | None = None  # the starting request's span (telemetry/tracing.py)


async def insert_instances(conn: AsyncConnection, new: Sequence[NewInstance]) -> None:
    if not new:
        return
    await conn.execute(
        _INSERT_INSTANCES,
        [
            {
                "id": item.id,
                "account_id": item.account_id,
                "definition_id": item.definition_id,
                "version": item.version,
                "sub_account_id": item.sub_account_id,
                "status": InstanceStatus.RUNNABLE,
                "data_json": _dumps(item.data),
                "started_at_ms": item.now_ms,
                "completed_at_ms": None,
                "next_run_at_ms": item.now_ms,
                "executions": 0,
                "trace_parent": item.trace_parent,
            }
            for item in new
        ],
    )
    await conn.execute(
        _INSERT_POINTERS,
        [
            {
                "id": item.first_pointer_id,
                "instance_id": item.id,
                "seq": 0,
                "step_id": item.entry_step,
                "parent_id": None,
                "status": PointerStatus.PENDING,
                "attempt": 0,
            }
            for item in new
        ],
    )
    await conn.execute(
        _INSERT_EVENTS,
        [
            {"instance_id": item.id, "type": "instance_started", "at_ms": item.now_ms}
            for item in new
        ],
    )
    contacts = [
        {"account_id": item.account_id, "contact": contact, "instance_id": item.id}
        for item in new
        for contact in item.contacts
    ]
    if contacts:
        await conn.execute(_INSERT_CONTACTS, contacts)


# --- claiming and loading --------------------------------------------------------------------


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


def _pointer(row: Any) -> PointerState:
    return PointerState(
        id=row.id,
        seq=row.seq,
        step_id=row.step_id,
        parent_id=row.parent_id,
        status=_POINTER_STATUSES[row.status],
        started_at_ms=row.started_at_ms,
        completed_at_ms=row.completed_at_ms,
        wake_at_ms=row.wake_at_ms,
        event_key=row.event_key,
        has_event=row.event_json is not None,
        event=orjson.loads(row.event_json) if row.event_json is not None else None,
        state=orjson.loads(row.state_json) if row.state_json else {},
        attempt=row.attempt,
    )


async def load_state(
    conn: AsyncConnection, instance_id: str, owner: str, now_ms: int, *, read_only: bool = False
) -> InstanceState | None:
    """Load a leased instance with its active pointers. Waits whose timeout has passed lose
    their subscription here, so the router cannot also deliver to them; a wait the router
    reached first keeps its event.

    `read_only`: `conn` may not write; None when a timed-out wait needs that write (load again
    in a transaction). Most loads write nothing, and a read costs no write lock or commit.
    """
    row = (await conn.execute(_SELECT_INSTANCE, {"instance_id": instance_id})).first()
    if row is None or row.lease_owner != owner:
        raise LeaseLost(instance_id)
    pointer_rows = await conn.execute(_SELECT_ACTIVE_POINTERS, {"instance_id": instance_id})
    loaded = {p.id: p for p in map(_pointer, pointer_rows)}
    for pointer in loaded.values():
        if pointer.event_key and not pointer.has_event and (pointer.wake_at_ms or 0) <= now_ms:
            if read_only:
                return None
            removed = await conn.execute(_UNSUBSCRIBE, {"pointer_id": pointer.id})
            if removed.rowcount == 0:  # delivered just before the timeout: the event wins
                event_json = await conn.scalar(
                    select(pointers.c.event_json).where(pointers.c.id == pointer.id)
                )
                if event_json is not None:
                    pointer.has_event, pointer.event = True, orjson.loads(event_json)
    next_seq = await conn.scalar(_MAX_SEQ, {"instance_id": instance_id})
    return InstanceState(
        id=row.id,
        account_id=row.account_id,
        definition_id=row.definition_id,
        version=row.version,
        sub_account_id=row.sub_account_id,
        status=_INSTANCE_STATUSES[row.status],
        data=orjson.loads(row.data_json),
        started_at_ms=row.started_at_ms,
        completed_at_ms=row.completed_at_ms,
        executions=row.executions,
        pointers=loaded,
        next_seq=int(next_seq or 0) + 1,
        trace_parent=row.trace_parent,
    )


# --- saving ----------------------------------------------------------------------------------


def _pointer_changes(pointer: PointerState) -> dict[str, Any]:
    values = _pointer_values(pointer)
    return {
        "status": values["status"],
        "started": values["started_at_ms"],
        "completed": values["completed_at_ms"],
        "wake": values["wake_at_ms"],
        "event_key": values["event_key"],
        "state": values["state_json"],
        "attempt": values["attempt"],
    }


def _pointer_values(pointer: PointerState) -> dict[str, Any]:
    return {
        "status": pointer.status,
        "started_at_ms": pointer.started_at_ms,
        "completed_at_ms": pointer.completed_at_ms,
        "wake_at_ms": pointer.wake_at_ms,
        "event_key": pointer.event_key,
        "state_json": _dumps(pointer.state) if pointer.state else None,
        "attempt": pointer.attempt,
    }


async def save_state(
    conn: AsyncConnection,
    state: InstanceState,
    owner: str,
    now_ms: int,
    *,
    lease_until_ms: int,
    release: bool,
) -> bool:
    """Write the sprint's changes in the caller's transaction.

    `release` ends the lease (end of sprint); otherwise it is renewed to `lease_until_ms`
    (checkpoint). Returns True when a parked event or a held message (store/held.py) was
    handed to a new wait: the lease is then kept, and the caller should run the sprint on.
    """
    if conn.dialect.name == "postgresql":
        # Lock the instance before its pointers, in the router's order (no deadlocks). SQLite
        # has one writer at a time; there the final UPDATE's WHERE does the checking.
        current = await lock_instance(conn, state.id)
        terminated = current is not None and current.status == InstanceStatus.TERMINATED
        if current is None or current.lease_owner != owner or terminated:
            raise LeaseLost(state.id)
    new_rows = [p for p in state.pointers.values() if p.new]
    if new_rows:
        await conn.execute(
            _INSERT_POINTERS,
            [
                {
                    "id": p.id,
                    "instance_id": state.id,
                    "seq": p.seq,
                    "step_id": p.step_id,
                    "parent_id": p.parent_id,
                    **_pointer_values(p),
                }
                for p in new_rows
            ],
        )
    changed = [p for p in state.pointers.values() if p.dirty and not p.new]
    if changed:
        await conn.execute(
            _UPDATE_POINTER,
            [
                {"pointer_id": p.id, **{f"p_{k}": v for k, v in _pointer_changes(p).items()}}
                for p in changed
            ],
        )
    if state.unsubscribe:
        await conn.execute(
            delete(subscriptions).where(subscriptions.c.pointer_id.in_(state.unsubscribe))
        )
    delivered = False
    for pointer_id, key in state.subscribe:
        if state.pointers[pointer_id].status != PointerStatus.WAITING_FOR_EVENT:
            continue  # cancelled later in the same sprint
        # A reply wait may find a message held for its definition (store/held.py), a DTMF wait
        # a parked callback: one lookup each, never both (only DTMF callbacks are parked).
        if key.startswith(REPLY_KEY_PREFIX):
            parked = await take_held(conn, state.account_id, key, state.definition_id)
        else:
            parked = await _take_parked(conn, state.account_id, key, now_ms)
        if parked is not None:
            await conn.execute(
                update(pointers).where(pointers.c.id == pointer_id).values(event_json=parked)
            )
            pointer = state.pointers[pointer_id]
            pointer.has_event, pointer.event = True, orjson.loads(parked)
            if key.startswith(REPLY_KEY_PREFIX):  # as when the router delivers a reply
                state.events.append(("reply_received", pointer.step_id, now_ms, None))
            delivered = True
            continue
        await conn.execute(
            _SUBSCRIBE,
            {
                "pointer_id": pointer_id,
                "account_id": state.account_id,
                "event_key": key,
                "instance_id": state.id,
                "created_at_ms": now_ms,
            },
        )
    if state.errors:
        await conn.execute(
            insert(workflow_errors),
            [
                {"instance_id": state.id, "step_id": s, "message": m, "error_time_ms": t}
                for s, m, t in state.errors
            ],
        )
    if state.events:
        await conn.execute(
            _INSERT_EVENTS,
            [
                {
                    "instance_id": state.id,
                    "type": kind,
                    "step_id": step,
                    "at_ms": at,
                    "detail_json": _dumps(detail) if detail is not None else None,
                }
                for kind, step, at, detail in state.events
            ],
        )
    keep_lease = not release or delivered
    parameters = {
        "instance_id": state.id,
        "owner": owner,
        "now": now_ms,
        "data_json": _dumps(state.data),
        "completed_at_ms": state.completed_at_ms,
        "executions": state.executions,
        "new_owner": owner if keep_lease else None,
        "lease_until": lease_until_ms if keep_lease else None,
    }
    if state.status == InstanceStatus.RUNNABLE:
        written = (await conn.execute(_SAVE_RUNNABLE, parameters)).first()
    else:
        written = (
            await conn.execute(_SAVE_FINAL, {**parameters, "new_status": state.status})
        ).first()
    if written is None:
        raise LeaseLost(state.id)  # terminated or taken over meanwhile: roll everything back
    state.status = _INSTANCE_STATUSES[written[0]]
    return delivered


_PARKED = hot(
    select(parked_events.c.id, parked_events.c.payload_json)
    .where(
        parked_events.c.account_id == bindparam("account_id"),
        parked_events.c.event_key == bindparam("event_key"),
        parked_events.c.expires_at_ms > bindparam("now", type_=BigInteger),
    )
    .order_by(parked_events.c.expires_at_ms)
    .limit(1)
)


async def _take_parked(conn: AsyncConnection, account_id: str, key: str, now_ms: int) -> str | None:
    parameters = {"account_id": account_id, "event_key": key, "now": now_ms}
    row = (await conn.execute(_PARKED, parameters)).first()
    if row is None:
        return None
    await conn.execute(delete(parked_events).where(parked_events.c.id == row.id))
    payload: str = row.payload_json
    return payload


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


# --- events from outside ---------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    instance_id: str
    definition_id: str
    step_id: str


def _subscribers(key_count: int | None) -> Any:
    """Waits subscribed to any of the keys: a fixed number of key parameters (`k0`, `k1`, ...)
    for the usual one or two keys of an event, an expanding list (`keys`) otherwise."""
    keys: ColumnElement[bool]
    if key_count is None:
        keys = subscriptions.c.event_key.in_(bindparam("keys", expanding=True))
    else:
        keys = or_(*(subscriptions.c.event_key == bindparam(f"k{i}") for i in range(key_count)))
    statement = (
        select(
            subscriptions.c.pointer_id,
            subscriptions.c.instance_id,
            instances.c.definition_id,
            pointers.c.step_id,
        )
        .join(instances, instances.c.id == subscriptions.c.instance_id)
        .join(pointers, pointers.c.id == subscriptions.c.pointer_id)
        .where(subscriptions.c.account_id == bindparam("account_id"), keys)
        .order_by(subscriptions.c.created_at_ms)
    )
    # An expanding IN cannot take the direct SQLite path (store/direct.py): not marked hot.
    return statement if key_count is None else hot(statement)


_SUBSCRIBERS_OF = {count: _subscribers(count) for count in (1, 2)}
_SUBSCRIBERS_ANY = _subscribers(None)
_UNSUBSCRIBE = hot(
    delete(subscriptions).where(subscriptions.c.pointer_id == bindparam("pointer_id"))
)
_SUBSCRIBE = hot(insert(subscriptions))
_DELIVER = hot(
    update(pointers)
    .where(pointers.c.id == bindparam("pointer_id"))
    .values(event_json=bindparam("event_json"))
)


async def deliver_event(
    conn: AsyncConnection,
    account_id: str,
    keys: Sequence[str],
    payload: Any,
    kind: str,
    now_ms: int,
) -> list[Delivery]:
    """Hand an inbound event to every wait subscribed to one of `keys` (each wait once)."""
    if not keys:
        return []
    fixed = _SUBSCRIBERS_OF.get(len(keys))
    if fixed is not None:
        by_position = {f"k{i}": key for i, key in enumerate(keys)}
        rows = (await conn.execute(fixed, {"account_id": account_id, **by_position})).all()
    else:
        listed = {"account_id": account_id, "keys": list(keys)}
        rows = (await conn.execute(_SUBSCRIBERS_ANY, listed)).all()
    payload_json = _dumps(payload)
    deliveries: list[Delivery] = []
    for row in rows:
        locked = await lock_instance(conn, row.instance_id)
        if locked is None or locked.status not in _LIVE:
            continue
        taken = await conn.execute(_UNSUBSCRIBE, {"pointer_id": row.pointer_id})
        if taken.rowcount != 1:
            continue  # the wait timed out or another event won
        await conn.execute(_DELIVER, {"pointer_id": row.pointer_id, "event_json": payload_json})
        await conn.execute(
            _INSERT_EVENTS,
            {"instance_id": row.instance_id, "type": kind, "step_id": row.step_id, "at_ms": now_ms},
        )
        await refresh_next_run(conn, row.instance_id, now_ms)
        deliveries.append(Delivery(row.instance_id, row.definition_id, row.step_id))
    return deliveries


async def park_event(
    conn: AsyncConnection,
    event_id: str,
    account_id: str,
    key: str,
    payload: Any,
    expires_at_ms: int,
) -> None:
    await conn.execute(
        insert(parked_events).values(
            id=event_id,
            account_id=account_id,
            event_key=key,
            payload_json=_dumps(payload),
            expires_at_ms=expires_at_ms,
        )
    )


async def purge_expired_parked(conn: AsyncConnection, now_ms: int) -> None:
    await conn.execute(delete(parked_events).where(parked_events.c.expires_at_ms <= now_ms))


# --- control (suspend / resume / terminate) ---------------------------------------------------


async def set_status(
    conn: AsyncConnection,
    instance_id: str,
    from_statuses: Sequence[InstanceStatus],
    to_status: InstanceStatus,
    now_ms: int,
    event: str,
) -> bool:
    result = await conn.execute(
        update(instances)
        .where(instances.c.id == instance_id, instances.c.status.in_(from_statuses))
        .values(status=to_status)
    )
    if result.rowcount != 1:
        return False
    await conn.execute(
        insert(instance_events).values(instance_id=instance_id, type=event, at_ms=now_ms)
    )
    await refresh_next_run(conn, instance_id, now_ms)
    return True


async def skip_waits(conn: AsyncConnection, instance_id: str, now_ms: int) -> int | None:
    """Make every timer of the instance due now: Wait sleeps, wait-for-event timeouts, retry
    backoffs (an operator skipping a timeout). The number of steps made due; None when the
    instance has ended."""
    locked = await lock_instance(conn, instance_id)
    if locked is None or locked.status not in _LIVE:
        return None
    result = await conn.execute(
        update(pointers)
        .where(
            pointers.c.instance_id == instance_id,
            pointers.c.status.in_(
                (PointerStatus.SLEEPING, PointerStatus.WAITING_FOR_EVENT, PointerStatus.RUNNING)
            ),
            pointers.c.wake_at_ms > now_ms,
        )
        .values(wake_at_ms=now_ms)
    )
    skipped = int(result.rowcount or 0)
    if skipped:
        await conn.execute(
            insert(instance_events).values(
                instance_id=instance_id,
                type="waits_skipped",
                at_ms=now_ms,
                detail_json=_dumps({"steps": skipped}),
            )
        )
        await refresh_next_run(conn, instance_id, now_ms)
    return skipped


async def terminate(
    conn: AsyncConnection, instance_id: str, now_ms: int, event: str = "instance_terminated"
) -> bool:
    """Terminate: cancel every active pointer, subscription and timer; final."""
    locked = await lock_instance(conn, instance_id)
    if locked is None or locked.status not in _LIVE:
        return False
    await conn.execute(
        update(pointers)
        .where(
            pointers.c.instance_id == instance_id, pointers.c.status.in_(ACTIVE_POINTER_STATUSES)
        )
        .values(status=PointerStatus.CANCELLED, completed_at_ms=now_ms)
    )
    await conn.execute(delete(subscriptions).where(subscriptions.c.instance_id == instance_id))
    await conn.execute(
        update(instances)
        .where(instances.c.id == instance_id)
        .values(
            status=InstanceStatus.TERMINATED,
            next_run_at_ms=None,
            lease_owner=None,
            lease_until_ms=None,
        )
    )
    await conn.execute(
        insert(instance_events).values(instance_id=instance_id, type=event, at_ms=now_ms)
    )
    # Every user-made termination passes here (the runner's faults are counted by the worker).
    metrics.ended(InstanceStatus.TERMINATED, False, (now_ms - locked.started_at_ms) / 1000)
    return True
