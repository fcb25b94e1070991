"""Read side of instances for the API: listings, logs (pointers), errors, events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from relayflow.store.tables import (
    instance_contacts,
    instance_events,
    instances,
    pointers,
    workflow_errors,
)


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
    inputs: dict[str, Any] | None = None  # the evaluated inputs
    result: dict[str, Any] | None = None  # what the step returned (`step.*` minus inputs)


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


MAX_CONTACT_INSTANCES = 5000  # a contact filter considers at most this many instances


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
    version: int | None,
    *,
    status: str | None,
    started_from_ms: int | None,
    started_to_ms: int | None,
    limit: int,
    offset: int,
    contact: str | None = None,
    before: tuple[int, str] | None = None,
) -> list[InstanceRow]:
    """Newest first. `version` None: every version. `contact`: instances about this contact
    (a phone number's digits, a chat user id, as recorded at start). `before`: only instances
    older than this (started_at_ms, id): keyset paging, which an index serves at any depth
    where OFFSET walks every row it skips."""
    query = select(*_COLUMNS).where(
        instances.c.account_id == account_id,
        instances.c.definition_id == definition_id,
    )
    if version is not None:
        query = query.where(instances.c.version == version)
    if contact:
        # A customer's instances are few: find them by contact, then by primary key (as one
        # statement SQLite, without statistics, walked every listed instance instead).
        about = await conn.execute(
            select(instance_contacts.c.instance_id)
            .where(
                instance_contacts.c.account_id == account_id,
                instance_contacts.c.contact == contact,
            )
            .limit(MAX_CONTACT_INSTANCES)
        )
        ids = [row[0] for row in about]
        if not ids:
            return []
        by_id = select(*_COLUMNS).where(instances.c.id.in_(ids))
        found = [_instance(row) for row in await conn.execute(by_id)]
        kept = [
            row
            for row in found
            if row.account_id == account_id
            and row.definition_id == definition_id
            and (version is None or row.version == version)
            and (status is None or row.status == status)
            and (started_from_ms is None or row.started_at_ms >= started_from_ms)
            and (started_to_ms is None or row.started_at_ms <= started_to_ms)
            and (before is None or (row.started_at_ms, row.id) < before)
        ]
        kept.sort(key=lambda row: (row.started_at_ms, row.id), reverse=True)
        return kept[offset : offset + limit]
    if before is not None:
        # In this form both databases bound the index scan by started_at_ms.
        started, instance_id = before
        query = query.where(
            instances.c.started_at_ms <= started,
            or_(instances.c.started_at_ms < started, instances.c.id < instance_id),
        )
    if status is not None:
        query = query.where(instances.c.status == status)
    if started_from_ms is not None:
        query = query.where(instances.c.started_at_ms >= started_from_ms)
    if started_to_ms is not None:
        query = query.where(instances.c.started_at_ms <= started_to_ms)
    query = query.order_by(instances.c.started_at_ms.desc(), instances.c.id.desc())
    listed = await conn.execute(query.limit(limit).offset(offset))
    return [_instance(row) for row in listed]


async def counts_by_status(
    conn: AsyncConnection, account_id: str, definition_ids: list[str]
) -> dict[str, dict[str, int]]:
    """Instances per definition and status, for the definitions given."""
    if not definition_ids:
        return {}
    rows = await conn.execute(
        select(instances.c.definition_id, instances.c.status, func.count())
        .where(
            instances.c.account_id == account_id,
            instances.c.definition_id.in_(definition_ids),
        )
        .group_by(instances.c.definition_id, instances.c.status)
    )
    counts: dict[str, dict[str, int]] = {}
    for definition_id, status, count in rows:
        counts.setdefault(definition_id, {})[status] = int(count)
    return counts


async def find_instance(
    conn: AsyncConnection, account_id: str, instance_id: str
) -> InstanceRow | None:
    """An instance of the account by id alone (whatever its definition)."""
    row = (
        await conn.execute(
            select(*_COLUMNS).where(
                instances.c.account_id == account_id, instances.c.id == instance_id
            )
        )
    ).first()
    return _instance(row) if row is not None else None


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


async def logs(
    conn: AsyncConnection, instance_id: str, *, limit: int | None = None, offset: int = 0
) -> list[LogRow]:
    query = (
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
    if limit is not None:
        query = query.limit(limit).offset(offset)
    rows = await conn.execute(query)
    return [_log(row) for row in rows]


async def count_logs(conn: AsyncConnection, instance_id: str) -> int:
    count = await conn.scalar(
        select(func.count()).select_from(pointers).where(pointers.c.instance_id == instance_id)
    )
    return int(count or 0)


def _log(row: Any) -> LogRow:
    state = orjson.loads(row.state_json) if row.state_json else {}
    retry = state.get("retry")
    inputs = state.get("inputs")
    result = state.get("result")
    return LogRow(
        row.id,
        row.step_id,
        row.status,
        row.started_at_ms,
        row.completed_at_ms,
        row.attempt,
        retry if isinstance(retry, dict) else None,
        inputs if isinstance(inputs, dict) else None,
        result if isinstance(result, dict) else None,
    )


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


async def events(
    conn: AsyncConnection,
    instance_id: str,
    *,
    limit: int | None = None,
    offset: int = 0,
    kinds: tuple[str, ...] | None = None,
) -> list[EventRow]:
    """The instance's audit events in order; a page of them, or only `kinds`, when asked."""
    query = (
        select(
            instance_events.c.type,
            instance_events.c.step_id,
            instance_events.c.at_ms,
            instance_events.c.detail_json,
        )
        .where(instance_events.c.instance_id == instance_id)
        .order_by(instance_events.c.id)
    )
    if kinds is not None:
        query = query.where(instance_events.c.type.in_(kinds))
    if limit is not None:
        query = query.limit(limit).offset(offset)
    rows = await conn.execute(query)
    return [
        EventRow(
            row.type,
            row.step_id,
            row.at_ms,
            orjson.loads(row.detail_json) if row.detail_json else None,
        )
        for row in rows
    ]


async def count_events(
    conn: AsyncConnection, instance_id: str, kinds: tuple[str, ...] | None = None
) -> int:
    query = (
        select(func.count())
        .select_from(instance_events)
        .where(instance_events.c.instance_id == instance_id)
    )
    if kinds is not None:
        query = query.where(instance_events.c.type.in_(kinds))
    return int(await conn.scalar(query) or 0)


async def step_counts(conn: AsyncConnection, instance_id: str) -> dict[str, int]:
    """How many times each step ran (step executions per step id)."""
    rows = await conn.execute(
        select(pointers.c.step_id, func.count())
        .where(pointers.c.instance_id == instance_id)
        .group_by(pointers.c.step_id)
    )
    return {step_id: int(count) for step_id, count in rows}


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
