"""Console sessions by token hash (see `tables.console_sessions`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from relayflow.store.tables import api_keys, console_sessions


@dataclass(frozen=True)
class SessionRow:
    account_id: str
    key_id: str
    csrf_token: str
    expires_at_ms: int


async def insert_session(
    conn: AsyncConnection,
    token_hash: str,
    row: SessionRow,
    created_at_ms: int,
) -> None:
    await conn.execute(
        insert(console_sessions).values(
            token_hash=token_hash,
            account_id=row.account_id,
            key_id=row.key_id,
            csrf_token=row.csrf_token,
            created_at_ms=created_at_ms,
            expires_at_ms=row.expires_at_ms,
        )
    )


async def live_session(conn: AsyncConnection, token_hash: str, now_ms: int) -> SessionRow | None:
    """The session, if it has not expired and its API key has not been revoked."""
    row = (
        await conn.execute(
            select(
                console_sessions.c.account_id,
                console_sessions.c.key_id,
                console_sessions.c.csrf_token,
                console_sessions.c.expires_at_ms,
            )
            .join(api_keys, api_keys.c.id == console_sessions.c.key_id)
            .where(
                console_sessions.c.token_hash == token_hash,
                console_sessions.c.expires_at_ms > now_ms,
                api_keys.c.revoked_at_ms.is_(None),
                api_keys.c.account_id == console_sessions.c.account_id,
            )
        )
    ).first()
    return SessionRow(*row) if row is not None else None


async def delete_session(conn: AsyncConnection, token_hash: str) -> None:
    await conn.execute(delete(console_sessions).where(console_sessions.c.token_hash == token_hash))


async def delete_expired(conn: AsyncConnection, now_ms: int) -> int:
    result = await conn.execute(
        delete(console_sessions).where(console_sessions.c.expires_at_ms <= now_ms)
    )
    return int(result.rowcount or 0)
