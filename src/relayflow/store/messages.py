"""Sent messages: the record of every send (sandbox and 8x8) and the queries on it.

A send is recorded keyed by its step execution (`pointer_id`, unique) so that a step re-run
after a crash finds the first attempt: an answered send is returned instead of being made again.
`channels/recorded.py` is the one caller that records sends; these functions are its SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from relayflow.store.direct import hot
from relayflow.store.tables import messages

SENDING = "sending"  # recorded before the call; the answer is not known yet
FAILED = "failed"  # the provider refused the send (4xx): a later attempt may send it again


@dataclass(frozen=True)
class MessageRow:
    id: str
    account_id: str
    instance_id: str | None
    pointer_id: str | None
    channel: str
    provider: str
    sub_account_id: str | None
    recipient: str | None
    client_message_id: str | None
    request: dict[str, Any]
    response: dict[str, Any] | None
    status: str
    created_at_ms: int


def _row(row: Any) -> MessageRow:
    return MessageRow(
        id=row.id,
        account_id=row.account_id,
        instance_id=row.instance_id,
        pointer_id=row.pointer_id,
        channel=row.channel,
        provider=row.provider,
        sub_account_id=row.sub_account_id,
        recipient=row.recipient,
        client_message_id=row.client_message_id,
        request=orjson.loads(row.request_json),
        response=orjson.loads(row.response_json) if row.response_json else None,
        status=row.status,
        created_at_ms=row.created_at_ms,
    )


_BY_POINTER = hot(select(messages).where(messages.c.pointer_id == bindparam("pointer_id")))
_INSERT = hot(messages.insert())
_ANSWER: dict[str, Any] = {
    "response_json": bindparam("response_json"),
    "status": bindparam("status"),
}
_RECORD_ANSWER = hot(update(messages).where(messages.c.id == bindparam("row_id")).values(**_ANSWER))
# 8x8's umid becomes the row's id: delivery receipts and GET /messages/{umid} find it by that.
_RECORD_ANSWER_WITH_UMID = hot(
    update(messages)
    .where(messages.c.id == bindparam("row_id"))
    .values(id=bindparam("umid"), **_ANSWER)
)


# A send re-attempted after a crash or a refused answer: the request may differ (a re-run
# re-evaluates its inputs); the row keeps the first attempt's id and client_message_id.
# Rare (a crash path), so left to SQLAlchemy rather than marked hot.
_RE_ATTEMPT = (
    update(messages)
    .where(messages.c.pointer_id == bindparam("attempt_pointer_id"))
    .values(
        request_json=bindparam("attempt_request_json"),
        # The refusal being retried is no answer to this attempt: a crash during the new call
        # must find none, or the re-run would return the old refusal without sending.
        response_json=None,
        status=SENDING,
        updated_at_ms=bindparam("attempt_at_ms"),
    )
)


@dataclass(frozen=True)
class Attempt:
    """A send recorded before it is made: its row, or the answer recorded before a crash."""

    row_id: str
    # Set when this step execution's send was already answered: it must not be made again.
    answer: dict[str, Any] | None


async def message_for_pointer(conn: AsyncConnection, pointer_id: str) -> MessageRow | None:
    row = (await conn.execute(_BY_POINTER, {"pointer_id": pointer_id})).first()
    return _row(row) if row is not None else None


async def record_answer(
    conn: AsyncConnection, row_id: str, umid: str | None, answer: dict[str, Any], status: str
) -> None:
    """Store the provider's answer to a send (and its message id, when it gave one)."""
    parameters = {
        "row_id": row_id,
        "response_json": orjson.dumps(answer).decode(),
        "status": status,
    }
    if umid:
        await conn.execute(_RECORD_ANSWER_WITH_UMID, {**parameters, "umid": umid})
    else:
        await conn.execute(_RECORD_ANSWER, parameters)


async def record_attempt(conn: AsyncConnection, message: MessageRow) -> Attempt:
    """Record a send (status `sending`) before it is made, unless it was already answered.

    Why before: a crash during or after the call leaves this row, so the re-run either returns
    the recorded answer or repeats the call under the same row (and its clientMessageId).
    """
    assert message.pointer_id is not None, "a send is keyed by its step execution"
    existing = await message_for_pointer(conn, message.pointer_id)
    if existing is None:
        await insert_message(conn, message)
        return Attempt(message.id, None)
    if existing.response is not None and existing.status != FAILED:
        return Attempt(existing.id, existing.response)
    await conn.execute(
        _RE_ATTEMPT,
        {
            "attempt_pointer_id": message.pointer_id,
            "attempt_request_json": orjson.dumps(message.request).decode(),
            "attempt_at_ms": message.created_at_ms,
        },
    )
    return Attempt(existing.id, None)


async def record_answered_send(conn: AsyncConnection, message: MessageRow) -> dict[str, Any]:
    """Record a send together with its answer, or return the answer recorded first.

    For a provider that answers without calling out (the sandbox): request and answer are one
    write, and the unique `pointer_id` makes a concurrent or re-run duplicate fail, never send.
    """
    assert message.pointer_id is not None, "a send is keyed by its step execution"
    assert message.response is not None, "recorded with its answer"
    existing = await message_for_pointer(conn, message.pointer_id)
    if existing is not None and existing.response is not None:
        return existing.response
    await insert_message(conn, message)
    return message.response


async def insert_message(conn: AsyncConnection, message: MessageRow) -> None:
    await conn.execute(
        _INSERT,
        {
            "id": message.id,
            "account_id": message.account_id,
            "instance_id": message.instance_id,
            "pointer_id": message.pointer_id,
            "channel": message.channel,
            "provider": message.provider,
            "sub_account_id": message.sub_account_id,
            "recipient": message.recipient,
            "client_message_id": message.client_message_id,
            "request_json": orjson.dumps(message.request).decode(),
            "response_json": orjson.dumps(message.response).decode() if message.response else None,
            "status": message.status,
            "created_at_ms": message.created_at_ms,
            "updated_at_ms": message.created_at_ms,
        },
    )


async def list_messages(
    conn: AsyncConnection,
    account_id: str,
    *,
    limit: int,
    offset: int,
    channel: str | None = None,
    instance_id: str | None = None,
) -> list[MessageRow]:
    query = select(messages).where(messages.c.account_id == account_id)
    if channel is not None:
        query = query.where(messages.c.channel == channel)
    if instance_id is not None:
        query = query.where(messages.c.instance_id == instance_id)
    query = query.order_by(messages.c.seq.desc()).limit(limit).offset(offset)
    return [_row(row) for row in await conn.execute(query)]


async def messages_for_pointers(
    conn: AsyncConnection, account_id: str, pointer_ids: list[str]
) -> list[MessageRow]:
    """The messages sent by these step executions (one each at most), by their unique index."""
    if not pointer_ids:
        return []
    # By the unique pointer_id alone: with `account_id = ?` in the WHERE clause SQLite (no
    # ANALYZE statistics) walked the account's index over every message instead. The account
    # is checked on the rows found.
    rows = await conn.execute(
        select(messages).where(messages.c.pointer_id.in_(pointer_ids)).order_by(messages.c.seq)
    )
    return [_row(row) for row in rows if row.account_id == account_id]


async def get_message(conn: AsyncConnection, account_id: str, umid: str) -> MessageRow | None:
    row = (
        await conn.execute(
            select(messages).where(messages.c.account_id == account_id, messages.c.id == umid)
        )
    ).first()
    return _row(row) if row is not None else None
