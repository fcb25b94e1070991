"""Subscriptions and parked events: how an inbound event reaches the wait it is for.

A wait subscribes `(account, event key)`; the router delivers by *deleting* the subscription
(the winner of that delete owns the event) and storing the event on the pointer. DTMF
callbacks without a subscriber are parked for a while, and the next wait with their key takes
them instead of subscribing (store/sprints.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import BigInteger, bindparam, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from relayflow.audit import AuditEvent
from relayflow.instance_state import LIVE_INSTANCE_STATUSES
from relayflow.store.direct import hot
from relayflow.store.leases import lock_instance
from relayflow.store.lifecycle import INSERT_EVENTS
from relayflow.store.next_run import refresh_next_run
from relayflow.store.tables import instances, parked_events, pointers, subscriptions


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
# Subscribing and unsubscribing one wait (`pointer_id`): the sprint save and a timed-out
# wait's load (store/sprints.py) use them too.
SUBSCRIBE = hot(insert(subscriptions))
UNSUBSCRIBE = hot(
    delete(subscriptions).where(subscriptions.c.pointer_id == bindparam("pointer_id"))
)
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
    kind: AuditEvent,
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
    payload_json = orjson.dumps(payload).decode()
    deliveries: list[Delivery] = []
    for row in rows:
        locked = await lock_instance(conn, row.instance_id)
        if locked is None or locked.status not in LIVE_INSTANCE_STATUSES:
            continue
        taken = await conn.execute(UNSUBSCRIBE, {"pointer_id": row.pointer_id})
        if taken.rowcount != 1:
            continue  # the wait timed out or another event won
        await conn.execute(_DELIVER, {"pointer_id": row.pointer_id, "event_json": payload_json})
        await conn.execute(
            INSERT_EVENTS,
            {"instance_id": row.instance_id, "type": kind, "step_id": row.step_id, "at_ms": now_ms},
        )
        await refresh_next_run(conn, row.instance_id, now_ms)
        deliveries.append(Delivery(row.instance_id, row.definition_id, row.step_id))
    return deliveries


# --- parked events ---------------------------------------------------------------------------


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
            payload_json=orjson.dumps(payload).decode(),
            expires_at_ms=expires_at_ms,
        )
    )


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


async def take_parked(conn: AsyncConnection, account_id: str, key: str, now_ms: int) -> str | None:
    """The oldest unexpired event parked under `key`, deleted (its taker owns it): its JSON."""
    parameters = {"account_id": account_id, "event_key": key, "now": now_ms}
    row = (await conn.execute(_PARKED, parameters)).first()
    if row is None:
        return None
    await conn.execute(delete(parked_events).where(parked_events.c.id == row.id))
    payload: str = row.payload_json
    return payload


async def purge_expired_parked(conn: AsyncConnection, now_ms: int) -> None:
    await conn.execute(delete(parked_events).where(parked_events.c.expires_at_ms <= now_ms))
