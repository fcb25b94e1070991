"""Queries on per-account provider settings (secrets arrive here already encrypted)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from relayflow.store.tables import accounts, provider_settings


@dataclass(frozen=True)
class ProviderRow:
    account_id: str
    provider: str
    api_key_encrypted: str | None
    region: str | None
    sms_url: str | None
    chatapps_url: str | None
    voice_url: str | None
    updated_at_ms: int


async def get_settings(conn: AsyncConnection, account_id: str) -> ProviderRow | None:
    row = (
        await conn.execute(
            select(provider_settings).where(provider_settings.c.account_id == account_id)
        )
    ).first()
    return ProviderRow(*row) if row is not None else None


async def put_settings(conn: AsyncConnection, row: ProviderRow) -> None:
    """Replace the account's settings and keep `accounts.provider` in step."""
    await conn.execute(
        delete(provider_settings).where(provider_settings.c.account_id == row.account_id)
    )
    if row.provider != "sandbox":
        await conn.execute(
            provider_settings.insert().values(
                account_id=row.account_id,
                provider=row.provider,
                api_key_encrypted=row.api_key_encrypted,
                region=row.region,
                sms_url=row.sms_url,
                chatapps_url=row.chatapps_url,
                voice_url=row.voice_url,
                updated_at_ms=row.updated_at_ms,
            )
        )
    await conn.execute(
        update(accounts).where(accounts.c.id == row.account_id).values(provider=row.provider)
    )
