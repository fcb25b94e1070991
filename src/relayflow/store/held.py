"""Held messages: an inbound message kept back for a customer's instance that is still running
the steps before its WaitForReply (issue 14; the rule is in engine/router.py).

A held message is one row per (message, definition held for, reply key), its primary key.
Whoever deletes the rows owns the message, as with subscriptions: the held instance's new
wait (`take_held`, in the transaction that would have subscribed it), or the release when the
window is over (`release_message`, in the transaction that starts instances instead). Nothing
lives in memory: a held message survives a restart and is released by whichever worker comes
round.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Integer,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from relayflow.instance_state import InstanceStatus
from relayflow.store.direct import hot
from relayflow.store.tables import held_messages, instance_contacts, instances, subscriptions


@dataclass(frozen=True)
class HeldMessage:
    """What routing a released message needs: the event as it arrived, and for which
    definitions it was held."""

    message_id: str
    account_id: str
    trigger: str
    sub_account_id: str | None
    payload: dict[str, Any]
    received_at_ms: int
    trace_parent: str | None
    definition_ids: tuple[str, ...]


def _young_instances(contact_count: int) -> Any:
    """Definitions of the contact's Runnable instances started since `since` that wait for
    nothing yet: the contact index (`instance_contacts` primary key), the instance row by its
    primary key, its subscriptions by `ix_subscriptions_instance`."""
    contacts = or_(
        *(instance_contacts.c.contact == bindparam(f"c{i}") for i in range(contact_count))
    )
    return hot(
        select(instances.c.definition_id)
        .select_from(
            instance_contacts.join(instances, instances.c.id == instance_contacts.c.instance_id)
        )
        .where(
            instance_contacts.c.account_id == bindparam("account_id"),
            contacts,
            instances.c.status == InstanceStatus.RUNNABLE,
            instances.c.started_at_ms >= bindparam("since", type_=BigInteger),
            # Already waiting (for another channel, say): the message was not for it.
            ~exists().where(subscriptions.c.instance_id == instances.c.id),
        )
    )


_YOUNG_INSTANCES = {count: _young_instances(count) for count in (1, 2)}
_TAKE = hot(
    select(held_messages.c.message_id, held_messages.c.payload_json)
    .where(
        held_messages.c.account_id == bindparam("account_id"),
        held_messages.c.event_key == bindparam("event_key"),
        held_messages.c.definition_id == bindparam("definition_id"),
    )
    .order_by(held_messages.c.received_at_ms)
    .limit(1)
)
_DELETE_FOR_DEFINITION = hot(
    delete(held_messages).where(
        held_messages.c.message_id == bindparam("message_id"),
        held_messages.c.definition_id == bindparam("definition_id"),
    )
)
_RELEASE = hot(
    delete(held_messages)
    .where(held_messages.c.message_id == bindparam("message_id"))
    .returning(
        held_messages.c.definition_id,
        held_messages.c.account_id,
        held_messages.c.trigger,
        held_messages.c.sub_account_id,
        held_messages.c.payload_json,
        held_messages.c.received_at_ms,
        held_messages.c.trace_parent,
    )
)
_INSERT = hot(insert(held_messages))
_EARLIEST_RELEASE = hot(select(func.min(held_messages.c.release_at_ms)))


# Read without locks: two workers may list the same message; `release_message`'s DELETE decides.
_DUE = hot(
    select(held_messages.c.message_id)
    .where(held_messages.c.release_at_ms <= bindparam("now", type_=BigInteger))
    .order_by(held_messages.c.release_at_ms)
    .limit(bindparam("limit", type_=Integer))
)


async def definitions_running_for(
    conn: AsyncConnection, account_id: str, contacts: Sequence[str], since_ms: int
) -> set[str]:
    """Definitions with a Runnable instance about one of `contacts`, started at or after
    `since_ms` and not waiting for any event yet (the hold's one indexed lookup)."""
    found: set[str] = set()
    for start in range(0, len(contacts), 2):
        chunk = contacts[start : start + 2]
        parameters = {f"c{i}": contact for i, contact in enumerate(chunk)}
        rows = await conn.execute(
            _YOUNG_INSTANCES[len(chunk)],
            {"account_id": account_id, "since": since_ms, **parameters},
        )
        found.update(row[0] for row in rows)
    return found


async def hold_message(
    conn: AsyncConnection,
    *,
    message_id: str,
    account_id: str,
    definition_ids: Sequence[str],
    keys: Sequence[str],
    trigger: str,
    sub_account_id: str | None,
    payload: Any,
    received_at_ms: int,
    release_at_ms: int,
    trace_parent: str | None,
) -> None:
    """Keep the message for each of `definition_ids` under each of its reply `keys`."""
    payload_json = orjson.dumps(payload).decode()
    await conn.execute(
        _INSERT,
        [
            {
                "message_id": message_id,
                "account_id": account_id,
                "definition_id": definition_id,
                "event_key": key,
                "trigger": trigger,
                "sub_account_id": sub_account_id,
                "payload_json": payload_json,
                "received_at_ms": received_at_ms,
                "release_at_ms": release_at_ms,
                "trace_parent": trace_parent,
            }
            for definition_id in definition_ids
            for key in keys
        ],
    )


async def take_held(
    conn: AsyncConnection, account_id: str, key: str, definition_id: str
) -> str | None:
    """The oldest message held for this definition under `key`, taken (its rows for this
    definition deleted); None when there is none or the release won it.

    Taken until released, not only until `release_at_ms`: a message not yet released has not
    been routed anywhere else, and a wait of its definition is what it was held for.
    """
    parameters = {"account_id": account_id, "event_key": key, "definition_id": definition_id}
    row = (await conn.execute(_TAKE, parameters)).first()
    if row is None:
        return None
    removed = await conn.execute(
        _DELETE_FOR_DEFINITION, {"message_id": row.message_id, "definition_id": definition_id}
    )
    if removed.rowcount == 0:  # released meanwhile (PostgreSQL): it is routed as usual
        return None
    payload: str = row.payload_json
    return payload


async def earliest_release(conn: AsyncConnection) -> int | None:
    """When the next held message's window ends; None when nothing is held."""
    earliest = await conn.scalar(_EARLIEST_RELEASE)
    return int(earliest) if earliest is not None else None


async def due_messages(conn: AsyncConnection, now_ms: int, limit: int) -> list[str]:
    """Ids of messages whose window is over (each may be held for several definitions)."""
    rows = await conn.execute(_DUE, {"now": now_ms, "limit": limit})
    return list(dict.fromkeys(row[0] for row in rows))


async def release_message(conn: AsyncConnection, message_id: str) -> HeldMessage | None:
    """Delete every row of the message and return it; None when nothing was left (taken by
    its waits or released by another worker)."""
    rows = (await conn.execute(_RELEASE, {"message_id": message_id})).all()
    if not rows:
        return None
    first = rows[0]
    return HeldMessage(
        message_id=message_id,
        account_id=first.account_id,
        trigger=first.trigger,
        sub_account_id=first.sub_account_id,
        payload=orjson.loads(first.payload_json),
        received_at_ms=int(first.received_at_ms),
        trace_parent=first.trace_parent,
        definition_ids=tuple(dict.fromkeys(row.definition_id for row in rows)),
    )
