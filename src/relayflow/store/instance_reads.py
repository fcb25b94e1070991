"""Read side of instances for the API: listings, logs (pointers), errors, events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from relayflow.store.tables import instance_events, instances, pointers, workflow_errors


@dataclass(frozen=True)
class InstanceRow:
    id: str
    account_id: str
    definition_id: str
    version: int
    status: str
    data: dict[str, Any]
    started_at_ms: int
    completed_at_ms: int | None


@dataclass(frozen=True)
class LogRow:
    id: str
    step_id: str
    status: str
    started_at_ms: int | None
    completed_at_ms: int | None
    attempts: int = 0
    # A step that met transient failures: {"lastError", "nextAttemptAt" (ms, while retrying)}.
    retry: dict[str, Any] | None = None


@dataclass(frozen=True)
class ErrorRow:
    instance_id: str
    step_id: str
    message: str
    error_time_ms: int


@dataclass(frozen=True)
class EventRow:
    type: str
    step_id: str | None
    at_ms: int
    detail: dict[str, Any] | None


_COLUMNS = (
    instances.c.id,
    instances.c.account_id,
    instances.c.definition_id,
    instances.c.version,
    instances.c.status,
    instances.c.data_json,
    instances.c.started_at_ms,
    instances.c.completed_at_ms,
)


def _instance(row: Any) -> InstanceRow:
    return InstanceRow(
        row.id,
        row.account_id,
        row.definition_id,
        row.version,
        row.status,
        orjson.loads(row.data_json),
        row.started_at_ms,
        row.completed_at_ms,
    )


async def list_instances(
    conn: AsyncConnection,
    account_id: str,
    definition_id: str,
    version: int,
    *,
    status: str | None,
    started_from_ms: int | None,
    started_to_ms: int | None,
    limit: int,
    offset: int,
) -> list[InstanceRow]:
    query = select(*_COLUMNS).where(
        instances.c.account_id == account_id,
        instances.c.definition_id == definition_id,
        instances.c.version == version,
    )
    if status is not None:
        query = query.where(instances.c.status == status)
    if started_from_ms is not None:
        query = query.where(instances.c.started_at_ms >= started_from_ms)
    if started_to_ms is not None:
        query = query.where(instances.c.started_at_ms <= started_to_ms)
    query = query.order_by(instances.c.started_at_ms.desc(), instances.c.id.desc())
    rows = await conn.execute(query.limit(limit).offset(offset))
    return [_instance(row) for row in rows]


async def get_instance(
    conn: AsyncConnection, account_id: str, definition_id: str, instance_id: str
) -> InstanceRow | None:
    row = (
        await conn.execute(
            select(*_COLUMNS).where(
                instances.c.account_id == account_id,
                instances.c.definition_id == definition_id,
                instances.c.id == instance_id,
            )
        )
    ).first()
    return _instance(row) if row is not None else None


async def logs(conn: AsyncConnection, instance_id: str) -> list[LogRow]:
    rows = await conn.execute(
        select(
            pointers.c.id,
            pointers.c.step_id,
            pointers.c.status,
            pointers.c.started_at_ms,
            pointers.c.completed_at_ms,
            pointers.c.attempt,
            pointers.c.state_json,
        )
        .where(pointers.c.instance_id == instance_id)
        .order_by(pointers.c.seq)
    )
    return [LogRow(*row[:6], retry=_retry_of(row.state_json)) for row in rows]


def _retry_of(state_json: str | None) -> dict[str, Any] | None:
    if not state_json or '"retry"' not in state_json:
        return None
    retry = orjson.loads(state_json).get("retry")
    return retry if isinstance(retry, dict) else None


async def errors(conn: AsyncConnection, instance_id: str) -> list[ErrorRow]:
    rows = await conn.execute(
        select(
            workflow_errors.c.instance_id,
            workflow_errors.c.step_id,
            workflow_errors.c.message,
            workflow_errors.c.error_time_ms,
        )
        .where(workflow_errors.c.instance_id == instance_id)
        .order_by(workflow_errors.c.id)
    )
    return [ErrorRow(*row) for row in rows]


async def events(conn: AsyncConnection, instance_id: str) -> list[EventRow]:
    rows = await conn.execute(
        select(
            instance_events.c.type,
            instance_events.c.step_id,
            instance_events.c.at_ms,
            instance_events.c.detail_json,
        )
        .where(instance_events.c.instance_id == instance_id)
        .order_by(instance_events.c.id)
    )
    return [
        EventRow(
            row.type,
            row.step_id,
            row.at_ms,
            orjson.loads(row.detail_json) if row.detail_json else None,
        )
        for row in rows
    ]


async def delete_instances_of(
    conn: AsyncConnection, account_id: str, definition_id: str, versions: list[int]
) -> int:
    """Remove the instances of deleted versions with their logs, waits and timers (cascade)."""
    result = await conn.execute(
        delete(instances).where(
            instances.c.account_id == account_id,
            instances.c.definition_id == definition_id,
            instances.c.version.in_(versions),
        )
    )
    return int(result.rowcount or 0)
