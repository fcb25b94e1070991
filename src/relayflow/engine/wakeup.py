"""Cross-process wake-ups on PostgreSQL: `NOTIFY` in the transaction that adds work, `LISTEN`
in every worker, so a worker in another process starts within milliseconds instead of at its
next poll. (On SQLite the router wakes the in-process worker directly; polling covers the rest.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import asyncpg
import structlog
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection

from relayflow.store.postgres_starts import WORK_CHANNEL

CHANNEL = WORK_CHANNEL
log = structlog.get_logger("relayflow.engine")


async def notify_work(conn: AsyncConnection) -> None:
    """Delivered at commit, so listeners never look before the work is visible."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text(f"SELECT pg_notify('{CHANNEL}', '')"))


class PostgresListener:
    """LISTEN on its own connection, reconnecting after the database restarts or fails over
    (until then, and whenever LISTEN is impossible, the worker's polling covers)."""

    RECONNECT_EVERY_S = 2.0

    def __init__(self, url: URL, on_work: Callable[[], None]) -> None:
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._on_work = on_work
        self._connection: Any = None
        self._keeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._connect()
        self._keeper = asyncio.create_task(self._keep_connected())

    async def _connect(self) -> bool:
        try:
            self._connection = await asyncpg.connect(self._dsn, timeout=5)
            await self._connection.add_listener(CHANNEL, self._notified)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            self._connection = None
            return False
        return True

    async def _keep_connected(self) -> None:
        while True:
            await asyncio.sleep(self.RECONNECT_EVERY_S)
            if self._connection is not None and not self._connection.is_closed():
                continue
            if self._connection is not None:
                log.warning("listen_connection_lost", detail="polling until it is back")
                self._connection = None
            if await self._connect():
                log.info("listen_reconnected")
                self._on_work()  # work may have arrived while nobody listened

    def _notified(self, *_args: Any) -> None:
        self._on_work()

    @property
    def listening(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()

    async def stop(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
            self._connection = None
