"""Queries on accounts and API keys. Secrets arrive here already hashed."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from relayflow.store.tables import accounts, api_keys


@dataclass(frozen=True)
class AccountRow:
    id: str
    provider: str
    created_at_ms: int
    active_keys: int


@dataclass(frozen=True)
class ApiKeyRow:
    id: str
    account_id: str
    name: str | None
    created_at_ms: int
    revoked_at_ms: int | None
    is_admin: bool


async def insert_account(
    conn: AsyncConnection, account_id: str, webhook_token_hash: str, provider: str, now_ms: int
) -> None:
    await conn.execute(
        accounts.insert().values(
            id=account_id,
            webhook_token_hash=webhook_token_hash,
            provider=provider,
            created_at_ms=now_ms,
        )
    )


async def account_exists(conn: AsyncConnection, account_id: str) -> bool:
    found = await conn.scalar(select(accounts.c.id).where(accounts.c.id == account_id))
    return found is not None


async def count_accounts(conn: AsyncConnection) -> int:
    return int(await conn.scalar(select(func.count()).select_from(accounts)) or 0)


async def list_accounts(conn: AsyncConnection) -> list[AccountRow]:
    active = (
        select(api_keys.c.account_id, func.count().label("n"))
        .where(api_keys.c.revoked_at_ms.is_(None))
        .group_by(api_keys.c.account_id)
        .subquery()
    )
    rows = await conn.execute(
        select(
            accounts.c.id,
            accounts.c.provider,
            accounts.c.created_at_ms,
            func.coalesce(active.c.n, 0),
        )
        .select_from(accounts.outerjoin(active, active.c.account_id == accounts.c.id))
        .order_by(accounts.c.id)
    )
    return [AccountRow(r[0], r[1], r[2], int(r[3])) for r in rows]


async def insert_api_key(
    conn: AsyncConnection,
    key_id: str,
    account_id: str,
    key_hash: str,
    name: str | None,
    now_ms: int,
    *,
    is_admin: bool,
) -> None:
    await conn.execute(
        api_keys.insert().values(
            id=key_id,
            account_id=account_id,
            key_hash=key_hash,
            name=name,
            created_at_ms=now_ms,
            is_admin=is_admin,
        )
    )


async def key_owner(conn: AsyncConnection, key_hash: str) -> tuple[str, bool] | None:
    """(account id, is admin) of an active (not revoked) key with this hash."""
    row = (
        await conn.execute(
            select(api_keys.c.account_id, api_keys.c.is_admin).where(
                api_keys.c.key_hash == key_hash, api_keys.c.revoked_at_ms.is_(None)
            )
        )
    ).first()
    return (row.account_id, bool(row.is_admin)) if row is not None else None


async def list_api_keys(conn: AsyncConnection, account_id: str) -> list[ApiKeyRow]:
    rows = await conn.execute(
        select(
            api_keys.c.id,
            api_keys.c.account_id,
            api_keys.c.name,
            api_keys.c.created_at_ms,
            api_keys.c.revoked_at_ms,
            api_keys.c.is_admin,
        )
        .where(api_keys.c.account_id == account_id)
        .order_by(api_keys.c.created_at_ms, api_keys.c.id)
    )
    return [ApiKeyRow(*row) for row in rows]


async def revoke_api_key(conn: AsyncConnection, key_id: str, now_ms: int) -> bool:
    """Revoke an active key; False when no active key has this id."""
    result = await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at_ms.is_(None))
        .values(revoked_at_ms=now_ms)
    )
    return result.rowcount == 1


async def webhook_token_hash(conn: AsyncConnection, account_id: str) -> str | None:
    return await conn.scalar(
        select(accounts.c.webhook_token_hash).where(accounts.c.id == account_id)
    )
