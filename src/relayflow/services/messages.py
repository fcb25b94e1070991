"""Sent messages and their delivery receipts: one way in for the API, the console and the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from relayflow.errors import ApiError, ErrorCode
from relayflow.store import messages as message_store
from relayflow.store.database import Database
from relayflow.store.messages import MessageRow
from relayflow.store.receipts import Receipt, receipts_for, receipts_for_many

MAX_UMID_LENGTH = 64


@dataclass(frozen=True)
class MessageView:
    message: MessageRow
    receipts: list[Receipt]


class MessageService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def list_messages(
        self, account_id: str, *, limit: int, offset: int, instance_id: str | None = None
    ) -> list[MessageRow]:
        """The account's sent messages, newest first (optionally one instance's)."""
        async with self._db.read() as conn:
            return await message_store.list_messages(
                conn, account_id, limit=limit, offset=offset, instance_id=instance_id
            )

    async def for_steps(self, account_id: str, pointer_ids: list[str]) -> dict[str, MessageView]:
        """The message each of these step executions sent, with its receipts, by step
        execution id (two queries, whatever the number of steps)."""
        async with self._db.read() as conn:
            rows = await message_store.messages_for_pointers(conn, account_id, pointer_ids)
            receipts = await receipts_for_many(conn, account_id, [row.id for row in rows])
        return {
            row.pointer_id: MessageView(row, receipts.get(row.id, []))
            for row in rows
            if row.pointer_id is not None
        }

    async def get(self, account_id: str, umid: str) -> MessageView:
        """One message with its status history; 404 for an unknown umid or another account's."""
        umid = umid[:MAX_UMID_LENGTH]
        async with self._db.read() as conn:
            row = await message_store.get_message(conn, account_id, umid)
            receipts = await receipts_for(conn, account_id, umid) if row else []
        if row is None:
            raise ApiError(ErrorCode.RESOURCE_NOT_FOUND, f"Message {umid} not found.")
        return MessageView(row, receipts)
