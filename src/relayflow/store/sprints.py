"""A sprint's load and save: a leased instance read with its active pointers, and the sprint's
changes written back in one transaction that also renews or releases the lease.

A save whose lease was lost (a terminate, a takeover) raises `LeaseLost`, and the caller's
transaction rolls everything back. These are SQLite's (store/hotpath.SqliteHotPath); PostgreSQL
has its own statements (store/postgres_hotpath.py) and shares `LeaseLost` and `hand_over`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from sqlalchemy import (
    String,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from relayflow.audit import AuditEvent
from relayflow.instance_state import (
    REPLY_KEY_PREFIX,
    InstanceState,
    InstanceStatus,
    PointerState,
    PointerStatus,
)
from relayflow.store.direct import hot
from relayflow.store.held import take_held
from relayflow.store.lifecycle import INSERT_EVENTS, INSERT_POINTERS
from relayflow.store.next_run import ACTIVE_POINTER, NEXT_RUN
from relayflow.store.subscriptions import SUBSCRIBE, UNSUBSCRIBE, take_parked
from relayflow.store.tables import instances, pointers, subscriptions, workflow_errors


class LeaseLost(Exception):
    """Another worker (or a terminate) took the instance; this worker's changes are dropped."""


# Stored statuses as members: `PointerStatus(value)` costs ~1 µs, a dict lookup ~30 ns.
_POINTER_STATUSES = {status.value: status for status in PointerStatus}
_INSTANCE_STATUSES = {status.value: status for status in InstanceStatus}


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# Hot-path statements are built once (see store/direct.py).
_SELECT_INSTANCE = hot(select(instances).where(instances.c.id == bindparam("instance_id")))
_SELECT_ACTIVE_POINTERS = hot(
    select(pointers)
    .where(pointers.c.instance_id == bindparam("instance_id"), ACTIVE_POINTER)
    .order_by(pointers.c.seq)
)
_MAX_SEQ = hot(
    select(func.max(pointers.c.seq)).where(pointers.c.instance_id == bindparam("instance_id"))
)
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
    "next_run_at_ms": NEXT_RUN,
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


# --- loading ---------------------------------------------------------------------------------


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
            removed = await conn.execute(UNSUBSCRIBE, {"pointer_id": pointer.id})
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
        loaded_at_ms=now_ms,
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


async def hand_over(
    state: InstanceState, take: Callable[[str], Awaitable[str | None]], now_ms: int
) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Decide the sprint's new waits: a wait whose event is already there (a held message, a
    parked callback; `take(key)` removes and returns its JSON) gets it now, the others
    subscribe. Returns the (pointer id, key) pairs to subscribe, and the event JSON handed to
    each wait that got one, by pointer id. Shared by both databases' saves: one rule."""
    subscribing: list[tuple[str, str]] = []
    handed: dict[str, str] = {}
    for pointer_id, key in state.subscribe:
        pointer = state.pointers[pointer_id]
        if pointer.status != PointerStatus.WAITING_FOR_EVENT:
            continue  # cancelled later in the same sprint
        found = await take(key)
        if found is None:
            subscribing.append((pointer_id, key))
            continue
        pointer.has_event, pointer.event = True, orjson.loads(found)
        if key.startswith(REPLY_KEY_PREFIX):  # as when the router delivers a reply
            state.record(AuditEvent.REPLY_RECEIVED, pointer.step_id, now_ms)
        handed[pointer_id] = found
    return subscribing, handed


async def save_state(
    conn: AsyncConnection,
    state: InstanceState,
    owner: str,
    now_ms: int,
    *,
    lease_until_ms: int,
    release: bool,
) -> bool:
    """Write the sprint's changes in the caller's transaction (SQLite's save: one writer at a
    time, so the final UPDATE's WHERE checks the lease; PostgreSQL saves with one statement,
    store/postgres_hotpath.py).

    `release` ends the lease (end of sprint); otherwise it is renewed to `lease_until_ms`
    (checkpoint). Returns True when a parked event or a held message (store/held.py) was
    handed to a new wait: the lease is then kept, and the caller should run the sprint on.
    """
    new_rows = [p for p in state.pointers.values() if p.new]
    if new_rows:
        await conn.execute(
            INSERT_POINTERS,
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

    async def take(key: str) -> str | None:
        # A reply wait may find a message held for its definition (store/held.py), a DTMF wait
        # a parked callback: one lookup each, never both (only DTMF callbacks are parked).
        if key.startswith(REPLY_KEY_PREFIX):
            return await take_held(conn, state.account_id, key, state.definition_id)
        return await take_parked(conn, state.account_id, key, now_ms)

    subscribing, handed = await hand_over(state, take, now_ms)
    for pointer_id, event_json in handed.items():
        await conn.execute(
            update(pointers).where(pointers.c.id == pointer_id).values(event_json=event_json)
        )
    for pointer_id, key in subscribing:
        await conn.execute(
            SUBSCRIBE,
            {
                "pointer_id": pointer_id,
                "account_id": state.account_id,
                "event_key": key,
                "instance_id": state.id,
                "created_at_ms": now_ms,
            },
        )
    delivered = bool(handed)
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
            INSERT_EVENTS,
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
