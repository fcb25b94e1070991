"""One `Database` for both dialects; the differences sit in a few named hooks here.

PostgreSQL runs on asyncpg through SQLAlchemy's async engine. SQLite runs *inline*: its
statements take 10-50 µs on a local file, while handing each one to aiosqlite's thread costs
~0.4 ms (spec/tech-stack-measurements.md §3), so a synchronous pysqlite connection is driven
directly from the event loop behind the same async interface the store code uses. Writers of
the process take turns on an asyncio lock and `BEGIN IMMEDIATE` (SQLite admits one writer; WAL
lets readers go on); readers use deferred transactions. Users write plain URLs
(`sqlite:///./relayflow.db`, `postgresql://user@host/db`); drivers are chosen here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from relayflow.store.migrations import upgrade_to_head

_DRIVERS = {
    "sqlite": "sqlite+pysqlite",
    "sqlite+pysqlite": "sqlite+pysqlite",
    "sqlite+aiosqlite": "sqlite+pysqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}
# Another process (the CLI, a second server) may hold SQLite's write lock for a moment; an
# inline wait blocks this process's event loop, so keep it short and fail clearly instead.
SQLITE_BUSY_TIMEOUT_MS = 5000


class DatabaseUrlError(ValueError):
    """The database URL names a database relayflow does not support."""


def async_url(url: str) -> URL:
    """Map a user-facing URL to the driver URL, or explain what is supported."""
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


class InlineConnection:
    """The slice of `AsyncConnection` the store uses, over a synchronous connection: each
    awaited call completes without suspending, so a transaction never yields the loop."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    @property
    def dialect(self) -> Any:
        return self._connection.dialect

    async def execute(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return self._connection.execute(statement, parameters, **kwargs)

    async def scalar(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return self._connection.scalar(statement, parameters, **kwargs)

    async def scalars(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return self._connection.scalars(statement, parameters, **kwargs)

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> Any:
        return self._connection.exec_driver_sql(statement, parameters)

    async def run_sync(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return function(self._connection, *args, **kwargs)


class Database:
    """The engine plus the dialect hooks the rest of the store relies on."""

    def __init__(
        self, url: str, *, echo: bool = False, pool_size: int = 16, max_overflow: int = 8
    ) -> None:
        """`pool_size` / `max_overflow`: PostgreSQL connections this process may hold."""
        self.url = async_url(url)
        self.dialect = "sqlite" if self.url.drivername.startswith("sqlite") else "postgresql"
        self._write_lock = asyncio.Lock()
        self._sqlite: Engine | None = None
        self._sqlite_writer: Connection | None = None
        self._postgres: AsyncEngine | None = None
        if self.dialect == "sqlite":
            Path(self.url.database or "").parent.mkdir(parents=True, exist_ok=True)
            self._sqlite = create_engine(
                self.url,
                echo=echo,
                hide_parameters=True,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            )
            _configure_sqlite(self._sqlite)
        else:
            self._postgres = create_async_engine(
                self.url,
                echo=echo,
                hide_parameters=True,
                # A worker runs 32 sprints at once, but a sprint holds a connection only for
                # its short transactions: 16 + 8 keeps overflow connections rare (each is a
                # backend fork) while api + 2 workers stay far below max_connections = 100.
                pool_size=pool_size,
                max_overflow=max_overflow,
                pool_pre_ping=True,
            )

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """`async with db.transaction() as conn:` — one atomic unit of work."""
        if self._postgres is not None:
            async with self._postgres.begin() as connection:
                yield connection
            return
        async with self._write_lock:
            writer = self._writer()
            with writer.begin():
                yield cast(AsyncConnection, InlineConnection(writer))

    def _writer(self) -> Connection:
        """The one connection SQLite writes go through: held, not checked out of the pool per
        transaction (that costs about as much as an empty transaction itself)."""
        if (
            self._sqlite_writer is None
            or self._sqlite_writer.closed
            or self._sqlite_writer.invalidated
        ):
            assert self._sqlite is not None
            self._sqlite_writer = self._sqlite.connect()
        return self._sqlite_writer

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only unit: on SQLite a deferred transaction, which in WAL mode neither waits
        for nor blocks the writer."""
        if self._postgres is not None:
            async with self._postgres.connect() as connection:
                yield connection
            return
        assert self._sqlite is not None
        with self._sqlite.connect() as connection:
            connection.execution_options(relayflow_read=True)
            yield cast(AsyncConnection, InlineConnection(connection))

    async def migrate(self) -> None:
        """Bring the schema to the newest revision (safe to call from several processes)."""
        if self._postgres is not None:
            async with self._postgres.begin() as connection:
                # Serialise concurrent `serve`/`worker` start-ups on one database.
                await connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7146430002)")
                await connection.run_sync(upgrade_to_head)
            return
        async with self.transaction() as connection:
            await connection.run_sync(upgrade_to_head)

    async def dispose(self) -> None:
        if self._postgres is not None:
            await self._postgres.dispose()
        if self._sqlite_writer is not None:
            self._sqlite_writer.close()
            self._sqlite_writer = None
        if self._sqlite is not None:
            self._sqlite.dispose()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
            "PRAGMA foreign_keys=ON",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers take the write lock up front (no deadlock-prone lock upgrades); readers defer.
        # Straight to the driver: SQLAlchemy's statement machinery would double the cost.
        read = connection.get_execution_options().get("relayflow_read")
        connection.connection.dbapi_connection.execute("BEGIN" if read else "BEGIN IMMEDIATE")
