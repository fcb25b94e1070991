"""Delivery receipts: stored per message (history) and reflected in the message's status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from relayflow.store.tables import message_receipts, messages


@dataclass(frozen=True)
class Receipt:
    umid: str
    state: str
    detail: str | None
    error_code: int | None
    error_message: str | None
    status_at: str | None
    payload: dict[str, Any]
    received_at_ms: int


async def record_receipt(conn: AsyncConnection, account_id: str, receipt: Receipt) -> bool:
    """Store the receipt; True when it belongs to a message this service sent."""
    await conn.execute(
        message_receipts.insert().values(
            account_id=account_id,
            umid=receipt.umid,
            state=receipt.state,
            detail=receipt.detail,
            error_code=receipt.error_code,
            error_message=receipt.error_message,
            status_at=receipt.status_at,
            payload_json=orjson.dumps(receipt.payload).decode(),
            received_at_ms=receipt.received_at_ms,
        )
    )
    result = await conn.execute(
        update(messages)
        .where(messages.c.account_id == account_id, messages.c.id == receipt.umid)
        .values(status=receipt.state, updated_at_ms=receipt.received_at_ms)
    )
    return result.rowcount == 1


async def receipts_for(conn: AsyncConnection, account_id: str, umid: str) -> list[Receipt]:
    return (await receipts_for_many(conn, account_id, [umid])).get(umid, [])


async def receipts_for_many(
    conn: AsyncConnection, account_id: str, umids: list[str]
) -> dict[str, list[Receipt]]:
    """The status history of each of these messages, oldest first, in one query."""
    if not umids:
        return {}
    rows = await conn.execute(
        select(message_receipts)
        .where(message_receipts.c.account_id == account_id, message_receipts.c.umid.in_(umids))
        .order_by(message_receipts.c.umid, message_receipts.c.id)
    )
    found: dict[str, list[Receipt]] = {}
    for row in rows:
        found.setdefault(row.umid, []).append(
            Receipt(
                umid=row.umid,
                state=row.state,
                detail=row.detail,
                error_code=row.error_code,
                error_message=row.error_message,
                status_at=row.status_at,
                payload=orjson.loads(row.payload_json),
                received_at_ms=row.received_at_ms,
            )
        )
    return found
