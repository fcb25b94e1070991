"""Cross-process wake-ups on PostgreSQL: `NOTIFY` in the transaction that adds work, `LISTEN`
in every worker, so a worker in another process starts within milliseconds instead of at its
next poll. (On SQLite the router wakes the in-process worker directly; polling covers the rest.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import structlog
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection

CHANNEL = "relayflow_work"
log = structlog.get_logger("relayflow.engine")


async def notify_work(conn: AsyncConnection) -> None:
    """Delivered at commit, so listeners never look before the work is visible."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text(f"SELECT pg_notify('{CHANNEL}', '')"))


class PostgresListener:
    def __init__(self, url: URL, on_work: Callable[[], None]) -> None:
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._on_work = on_work
        self._connection: Any = None

    async def start(self) -> None:
        try:
            self._connection = await asyncpg.connect(self._dsn)
            await self._connection.add_listener(CHANNEL, self._notified)
        except (OSError, asyncpg.PostgresError):
            log.warning("listen_unavailable", detail="falling back to polling")
            self._connection = None

    def _notified(self, *_args: Any) -> None:
        self._on_work()

    async def stop(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
