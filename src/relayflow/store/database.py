"""One `Database` for both dialects; the differences sit in a few named hooks here.

SQLite runs in WAL mode with `BEGIN IMMEDIATE` transactions (one writer at a time, no
"database is locked" upgrades mid-transaction); PostgreSQL uses asyncpg. Users write plain
URLs (`sqlite:///./relayflow.db`, `postgresql://user@host/db`); the async driver is chosen here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from relayflow.store.migrations import upgrade_to_head

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


class DatabaseUrlError(ValueError):
    """The database URL names a database relayflow does not support."""


def async_url(url: str) -> URL:
    """Map a user-facing URL to the async driver URL, or explain what is supported."""
    try:
        parsed = make_url(url)
    except Exception as error:  # sqlalchemy raises ArgumentError with a terse message
        raise DatabaseUrlError(f"'{url}' is not a database URL ({error}).") from None
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise DatabaseUrlError(
            f"Unsupported database '{parsed.drivername}': use sqlite:///path/to/file.db "
            "or postgresql://user@host:port/dbname."
        )
    if driver.startswith("sqlite") and parsed.database in (None, "", ":memory:"):
        raise DatabaseUrlError(
            "SQLite needs a file (sqlite:///./relayflow.db); in-memory is not durable."
        )
    return parsed.set(drivername=driver)


class Database:
    """An async engine plus the dialect hooks the rest of the store relies on."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = async_url(url)
        self.dialect = "sqlite" if self.url.drivername.startswith("sqlite") else "postgresql"
        options: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if self.dialect == "sqlite":
            Path(self.url.database or "").parent.mkdir(parents=True, exist_ok=True)
            options["connect_args"] = {"timeout": 30}
        else:
            options.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def transaction(self) -> Any:
        """`async with db.transaction() as conn:` — one atomic unit of work."""
        return self.engine.begin()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as connection:
            yield connection

    async def migrate(self) -> None:
        """Bring the schema to the newest revision (safe to call from several processes)."""
        async with self.engine.begin() as connection:
            if self.dialect == "postgresql":
                # Serialise concurrent `serve`/`worker` start-ups on one database.
                await connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7146430002)")
            await connection.run_sync(upgrade_to_head)

    async def dispose(self) -> None:
        await self.engine.dispose()


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA busy_timeout=30000",
            "PRAGMA foreign_keys=ON",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
