"""Queries on definition versions. Every query is scoped by account id (isolation)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, bindparam, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from relayflow.store.direct import hot
from relayflow.store.tables import definitions


@dataclass(frozen=True)
class DefinitionRow:
    id: str
    version: int
    account_id: str
    sub_account_id: str | None
    trigger: str
    status: str
    name: str
    steps: list[Any]
    created_at_ms: int


_COLUMNS = (
    definitions.c.id,
    definitions.c.version,
    definitions.c.account_id,
    definitions.c.sub_account_id,
    definitions.c.trigger,
    definitions.c.status,
    definitions.c.name,
    definitions.c.steps_json,
    definitions.c.created_at_ms,
)


def _row(row: Any) -> DefinitionRow:
    return DefinitionRow(
        id=row.id,
        version=row.version,
        account_id=row.account_id,
        sub_account_id=row.sub_account_id,
        trigger=row.trigger,
        status=row.status,
        name=row.name,
        steps=orjson.loads(row.steps_json),
        created_at_ms=row.created_at_ms,
    )


def _live(account_id: str, definition_id: str) -> Any:
    return and_(
        definitions.c.account_id == account_id,
        definitions.c.id == definition_id,
        definitions.c.deleted_at_ms.is_(None),
    )


async def lock_definition(conn: AsyncConnection, definition_id: str) -> None:
    """Serialise writers of one definition until the transaction ends.

    SQLite's `BEGIN IMMEDIATE` already admits one writer at a time. On PostgreSQL two updates
    could otherwise both compute version N+1; the advisory lock makes the second one wait and
    its next statement sees the first one's committed version.
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:id, 0))"), {"id": definition_id}
        )


async def next_version(conn: AsyncConnection, account_id: str, definition_id: str) -> int | None:
    """Version number for an update, or None when the definition has no live version.

    Numbers are never reused, not even those of deleted versions, so a version number always
    names the same immutable body. Call `lock_definition` first in the same transaction.
    """
    live = await conn.scalar(select(func.count()).where(_live(account_id, definition_id)))
    if not live:
        return None
    highest = await conn.scalar(
        select(func.max(definitions.c.version)).where(
            definitions.c.account_id == account_id, definitions.c.id == definition_id
        )
    )
    return int(highest or 0) + 1


async def insert_version(
    conn: AsyncConnection,
    *,
    definition_id: str,
    version: int,
    account_id: str,
    sub_account_id: str | None,
    trigger: str,
    status: str,
    name: str,
    steps: list[Any],
    now_ms: int,
) -> DefinitionRow:
    """Insert a new latest version (call inside the transaction that computed `version`)."""
    await conn.execute(
        update(definitions)
        .where(definitions.c.account_id == account_id, definitions.c.id == definition_id)
        .values(is_latest=False)
    )
    steps_json = orjson.dumps(steps).decode()
    await conn.execute(
        definitions.insert().values(
            id=definition_id,
            version=version,
            account_id=account_id,
            sub_account_id=sub_account_id,
            trigger=trigger,
            status=status,
            name=name,
            steps_json=steps_json,
            created_at_ms=now_ms,
            is_latest=True,
        )
    )
    return DefinitionRow(
        definition_id, version, account_id, sub_account_id, trigger, status, name, steps, now_ms
    )


async def list_latest(
    conn: AsyncConnection, account_id: str, limit: int, offset: int
) -> list[DefinitionRow]:
    """The latest live version of every definition of the account, newest definition first."""
    first_created = (
        select(definitions.c.id, func.min(definitions.c.created_at_ms).label("first_ms"))
        .where(definitions.c.account_id == account_id)
        .group_by(definitions.c.id)
        .subquery()
    )
    rows = await conn.execute(
        select(*_COLUMNS)
        .join(first_created, first_created.c.id == definitions.c.id)
        .where(
            definitions.c.account_id == account_id,
            definitions.c.is_latest.is_(True),
            definitions.c.deleted_at_ms.is_(None),
        )
        .order_by(first_created.c.first_ms.desc(), definitions.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [_row(row) for row in rows]


async def history(
    conn: AsyncConnection, account_id: str, definition_id: str, limit: int, offset: int
) -> list[DefinitionRow]:
    """Live versions of one definition, newest first."""
    rows = await conn.execute(
        select(*_COLUMNS)
        .where(_live(account_id, definition_id))
        .order_by(definitions.c.version.desc())
        .limit(limit)
        .offset(offset)
    )
    return [_row(row) for row in rows]


async def get_version(
    conn: AsyncConnection, account_id: str, definition_id: str, version: int | None
) -> DefinitionRow | None:
    """One live version, or the latest live one when `version` is None."""
    condition = _live(account_id, definition_id)
    if version is None:
        condition = and_(condition, definitions.c.is_latest.is_(True))
    else:
        condition = and_(condition, definitions.c.version == version)
    row = (await conn.execute(select(*_COLUMNS).where(condition))).first()
    return _row(row) if row is not None else None


async def mark_deleted(
    conn: AsyncConnection, account_id: str, definition_id: str, version: int | None, now_ms: int
) -> list[int]:
    """Soft-delete one version (or all); returns the versions deleted, and moves `is_latest`."""
    condition = _live(account_id, definition_id)
    if version is not None:
        condition = and_(condition, definitions.c.version == version)
    doomed = list(await conn.scalars(select(definitions.c.version).where(condition)))
    if not doomed:
        return []
    await conn.execute(
        update(definitions).where(condition).values(deleted_at_ms=now_ms, is_latest=False)
    )
    newest_left = await conn.scalar(
        select(func.max(definitions.c.version)).where(_live(account_id, definition_id))
    )
    if newest_left is not None:
        await conn.execute(
            update(definitions)
            .where(_live(account_id, definition_id), definitions.c.version == newest_left)
            .values(is_latest=True)
        )
    return doomed


async def get_any_version(
    conn: AsyncConnection, account_id: str, definition_id: str, version: int
) -> DefinitionRow | None:
    """A version whether deleted or not: running instances keep the body they started on."""
    row = (
        await conn.execute(
            select(*_COLUMNS).where(
                definitions.c.account_id == account_id,
                definitions.c.id == definition_id,
                definitions.c.version == version,
            )
        )
    ).first()
    return _row(row) if row is not None else None


def _triggered(for_subaccount: bool) -> Any:
    sub_condition: ColumnElement[bool] = definitions.c.sub_account_id.is_(None)
    if for_subaccount:
        sub_condition = or_(
            sub_condition, definitions.c.sub_account_id == bindparam("sub_account_id")
        )
    return hot(
        select(*_COLUMNS)
        .where(
            definitions.c.account_id == bindparam("account_id"),
            definitions.c.trigger == bindparam("trigger"),
            definitions.c.status == "enabled",
            definitions.c.is_latest.is_(True),
            definitions.c.deleted_at_ms.is_(None),
            sub_condition,
        )
        .order_by(definitions.c.created_at_ms, definitions.c.id)
    )


# Built once: the router looks these up for every inbound event.
_TRIGGERED_ANY_SUB = _triggered(for_subaccount=False)
_TRIGGERED_FOR_SUB = _triggered(for_subaccount=True)


@dataclass(frozen=True, slots=True)
class TriggerMatch:
    """What starting an instance of a definition version needs: which version, where to begin."""

    id: str
    version: int
    entry_step: str

    @classmethod
    def of(cls, row: DefinitionRow) -> TriggerMatch:
        return cls(row.id, row.version, row.steps[0]["id"])


# Versions are immutable, so their entry step can be remembered instead of parsing the whole
# definition for every inbound event. The memory belongs to the caller (one per router, so one
# per database: ids are unique within a database, not across the flow tests of one process).
EntrySteps = dict[tuple[str, int], str]
_ENTRY_STEPS_KEPT = 4096


def _entry_step(row: Any, remembered: EntrySteps) -> str:
    key = (row.id, row.version)
    entry = remembered.get(key)
    if entry is None:
        if len(remembered) >= _ENTRY_STEPS_KEPT:
            remembered.clear()
        entry = remembered[key] = str(orjson.loads(row.steps_json)[0]["id"])
    return entry


async def enabled_for_trigger(
    conn: AsyncConnection,
    account_id: str,
    trigger: str,
    sub_account_id: str | None,
    entry_steps: EntrySteps,
) -> list[TriggerMatch]:
    """Latest enabled versions this trigger starts (DESIGN.md §5 "Trigger matching").

    A definition without subAccountId matches any subaccount; one with a subAccountId only
    events of that subaccount. An event without a subaccount matches only the former.
    """
    statement = _TRIGGERED_ANY_SUB if sub_account_id is None else _TRIGGERED_FOR_SUB
    rows = await conn.execute(
        statement, {"account_id": account_id, "trigger": trigger, "sub_account_id": sub_account_id}
    )
    return [TriggerMatch(row.id, row.version, _entry_step(row, entry_steps)) for row in rows]


async def versions_with_instances(
    conn: AsyncConnection, account_id: str, definition_id: str
) -> list[int]:
    """Every version of the definition that may have instances (deleted versions lose theirs)."""
    rows = await conn.execute(
        select(definitions.c.version).where(
            definitions.c.account_id == account_id,
            definitions.c.id == definition_id,
            definitions.c.deleted_at_ms.is_(None),
        )
    )
    return sorted(row[0] for row in rows)
