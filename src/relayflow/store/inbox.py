"""The durable inbox: every inbound event is stored (and deduplicated) before it is routed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from relayflow.store.direct import hot
from relayflow.store.tables import inbox


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """An inbound event as the inbox stores it (`kind`: the trigger or callback it came as)."""

    id: str
    account_id: str
    kind: str
    dedupe_key: str | None
    payload: Any
    received_at_ms: int


def _insert_statement(dialect: str) -> Any:
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return hot(
        dialect_insert(inbox).on_conflict_do_nothing(
            index_elements=[inbox.c.account_id, inbox.c.dedupe_key]
        )
    )


# Built once per dialect: the router runs this for every inbound event.
_INSERTS = {dialect: _insert_statement(dialect) for dialect in ("postgresql", "sqlite")}


async def record_event(conn: AsyncConnection, event: InboundEvent) -> bool:
    """Store the event as processed-now; False if an event with this dedupe key exists."""
    statement = _INSERTS[conn.dialect.name]
    values = {
        "id": event.id,
        "account_id": event.account_id,
        "kind": event.kind,
        "dedupe_key": event.dedupe_key,
        "payload_json": orjson.dumps(event.payload).decode(),
        "received_at_ms": event.received_at_ms,
        "processed_at_ms": event.received_at_ms,
    }
    result = await conn.execute(statement, values)
    return result.rowcount == 1
