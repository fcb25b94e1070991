"""One `Database` for both dialects; the differences sit in a few named hooks here.

PostgreSQL runs on asyncpg through SQLAlchemy's async engine. SQLite runs *inline*: its
statements take 10-50 µs on a local file, while handing each one to aiosqlite's thread costs
~0.4 ms (spec/tech-stack-measurements.md §3), so a synchronous pysqlite connection is driven
directly from the event loop behind the same async interface the store code uses. Writers of
the process take turns on an asyncio lock on one held connection; units that are ready together
share one `BEGIN IMMEDIATE` ... `COMMIT` (group commit, each unit in a savepoint; SQLite admits
one writer; WAL lets readers go on); readers use deferred transactions. Users write plain URLs
(`sqlite:///./relayflow.db`, `postgresql://user@host/db`); drivers are chosen here.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, cast

import asyncpg
from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, RootTransaction, make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolProxiedConnection

from relayflow.store.direct import CompiledStatements, is_hot
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

# Session settings of every PostgreSQL connection. JIT compilation (on by default since
# PostgreSQL 12) pays off for long analytic queries, never for relayflow's short statements:
# the planner's row estimates for `unnest` of arrays made it compile the one-statement start
# (store/postgres_starts.py) at every execution, 90 ms of server CPU each, and asyncpg's type
# introspection query is a known victim too.
SERVER_SETTINGS = {"jit": "off"}
# Options of SQLAlchemy's asyncpg dialect that a user may put in the URL; not asyncpg's.
_SQLALCHEMY_ONLY = {"prepared_statement_cache_size", "prepared_statement_name_func"}


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

    def __init__(self, connection: Connection, compiled: CompiledStatements) -> None:
        self._connection = connection
        self._compiled = compiled

    @property
    def dialect(self) -> Any:
        return self._connection.dialect

    async def execute(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        if not kwargs and is_hot(statement):
            result = self._compiled.execute(self._connection, statement, parameters)
            if result is not None:
                return result
        return self._connection.execute(statement, parameters, **kwargs)

    async def scalar(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return (await self.execute(statement, parameters, **kwargs)).scalar()

    async def scalars(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return self._connection.scalars(statement, parameters, **kwargs)

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> Any:
        return self._connection.exec_driver_sql(statement, parameters)

    async def run_sync(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return function(self._connection, *args, **kwargs)


def _lost_transaction() -> OperationalError:
    return OperationalError(
        "COMMIT", None, Exception("the shared SQLite transaction was lost; nothing was saved")
    )


class _CommitGroup:
    """One SQLite transaction shared by the units that were ready together."""

    def __init__(self, writer: Connection, transaction: RootTransaction) -> None:
        self.writer = writer
        self.transaction = transaction
        self.broken: BaseException | None = None
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def finish(self, error: BaseException | None) -> None:
        if error is None:
            self._done.set_result(None)
        else:
            self._done.set_exception(error)

    async def committed(self) -> None:
        """Wait for the COMMIT; its failure is every unit's failure."""
        await asyncio.shield(self._done)


class Database:
    """The engine plus the dialect hooks the rest of the store relies on."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        pool_size: int = 12,
        max_overflow: int = 0,
        pool_timeout_s: float = 10.0,
    ) -> None:
        """`pool_size` / `max_overflow`: PostgreSQL connections this process may hold;
        `pool_timeout_s`: how long a unit waits for one of them before failing."""
        self.url = async_url(url)
        self.dialect = "sqlite" if self.url.drivername.startswith("sqlite") else "postgresql"
        self._write_lock = asyncio.Lock()
        self._sqlite: Engine | None = None
        self._sqlite_writer: Connection | None = None
        self._group: _CommitGroup | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self._postgres: AsyncEngine | None = None
        self._pool: asyncpg.Pool | None = None  # the hot path's (store/postgres_hotpath.py)
        self._pool_opening: asyncio.Lock | None = None
        self._pool_size = pool_size
        self.pool_timeout_s = pool_timeout_s
        self._compiled = CompiledStatements(enabled=not echo)  # echo logs only what SQLAlchemy runs
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
                # The API's units and the engine's cold queries (the engine's hot path has
                # its own asyncpg pool). No overflow by default: opening and closing overflow
                # connections per burst cost more server CPU than the units themselves.
                pool_size=pool_size,
                max_overflow=max_overflow,
                pool_timeout=pool_timeout_s,
                connect_args={"server_settings": SERVER_SETTINGS},
            )
            _replace_closed_connections(self._postgres)

    async def asyncpg_pool(self) -> asyncpg.Pool:
        """PostgreSQL only: asyncpg's own pool, for the hot path: the engine's claims, loads
        and saves (store/hotpath.py) and the router's one-statement route
        (store/postgres_starts.py).

        Opened on first use, so a process that neither runs the engine nor routes an inbound
        event holds no extra connections. No check on checkout (SQLAlchemy's `pool_pre_ping`
        costs a round trip per unit): asyncpg replaces a connection the server has closed when
        it is acquired, and a connection lost in use fails that operation, which the engine
        runs again (the API answers 503).
        """
        if self._postgres is None:
            raise TypeError("not a PostgreSQL database")
        if self._pool is not None:
            return self._pool
        if self._pool_opening is None:
            self._pool_opening = asyncio.Lock()
        async with self._pool_opening:
            if self._pool is None:
                # SQLAlchemy's own URL options would reach asyncpg as server settings.
                query = {k: v for k, v in self.url.query.items() if k not in _SQLALCHEMY_ONLY}
                url = self.url.set(drivername="postgresql", query=query)
                dsn = url.render_as_string(hide_password=False)
                self._pool = await asyncpg.create_pool(
                    dsn,
                    min_size=1,
                    max_size=self._pool_size,
                    max_inactive_connection_lifetime=300,
                    server_settings={**SERVER_SETTINGS, "application_name": "relayflow-hot-path"},
                    reset=_keep_session,
                )
        return self._pool

    @property
    def compiled_statements(self) -> CompiledStatements:
        """The direct path's compiled hot statements (used on SQLite only)."""
        return self._compiled

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """`async with db.transaction() as conn:` — one atomic unit of work, durable (committed)
        when the block has exited without an exception.

        On SQLite, units that are ready together share one COMMIT (group commit, DESIGN.md §6):
        each unit runs in a SAVEPOINT of the open transaction (so it rolls back alone), and its
        block exits only after the COMMIT that holds it; a failed COMMIT fails every unit in it.
        """
        if self._postgres is not None:
            async with self._postgres.begin() as connection:
                yield connection
            return
        async with self._write_lock:
            group = self._group if self._group is not None else self._open_group()
            writer = group.writer
            driver = writer.connection.dbapi_connection
            if group.broken is not None or driver is None or not driver.in_transaction:
                # SQLite gave the shared transaction up (after SQLITE_FULL, an I/O error, ...):
                # a SAVEPOINT now would run and commit on its own, outside the group.
                group.broken = group.broken or _lost_transaction()
                raise _lost_transaction()
            driver.execute("SAVEPOINT unit")
            try:
                yield cast(AsyncConnection, InlineConnection(writer, self._compiled))
            except BaseException:
                try:
                    driver.execute("ROLLBACK TO unit")
                    driver.execute("RELEASE unit")
                except Exception as rollback_error:
                    group.broken = rollback_error
                raise
            try:
                driver.execute("RELEASE unit")
            except Exception as release_error:
                group.broken = release_error
                raise
        await group.committed()

    def _open_group(self) -> _CommitGroup:
        """BEGIN IMMEDIATE a transaction that units join until its flush task commits it."""
        writer = self._writer()
        group = _CommitGroup(writer, _begin(writer, "BEGIN IMMEDIATE"))
        self._group = group
        task = asyncio.get_running_loop().create_task(self._flush(group))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)
        return group

    async def _flush(self, group: _CommitGroup) -> None:
        await asyncio.sleep(0)  # units that are ready now queue on the lock before us
        async with self._write_lock:
            self._group = None
            driver = group.writer.connection.dbapi_connection
            try:
                if group.broken is not None:
                    raise _lost_transaction() from group.broken
                if driver is None or not driver.in_transaction:
                    raise _lost_transaction()
                group.transaction.commit()
            except BaseException as error:
                try:
                    group.transaction.rollback()
                except Exception:  # the connection is unusable: the next unit opens another
                    group.writer.invalidate()
                group.finish(error)
            else:
                group.finish(None)

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
        with self._sqlite.connect() as reader, _begin(reader, "BEGIN"):
            yield cast(AsyncConnection, InlineConnection(reader, self._compiled))

    @contextmanager
    def sqlite_driver_connection(self) -> Iterator[sqlite3.Connection]:
        """A pooled reader's own `sqlite3.Connection`, for what SQLAlchemy does not wrap (the
        online backup API). Not the writer: using it never joins or holds up a commit group."""
        if self._sqlite is None:
            raise TypeError("not a SQLite database")
        raw = self._sqlite.raw_connection()
        try:
            driver = raw.driver_connection
            assert isinstance(driver, sqlite3.Connection)
            yield driver
        finally:
            raw.close()

    async def migrate(self) -> None:
        """Bring the schema to the newest revision (safe to call from several processes)."""
        if self._postgres is not None:
            async with self._postgres.begin() as connection:
                # Serialise concurrent `serve`/`worker` start-ups on one database.
                await connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7146430002)")
                await connection.run_sync(upgrade_to_head)
            return
        async with self._write_lock:  # outside any commit group: DDL in its own transaction
            assert self._group is None
            writer = self._writer()
            with _begin(writer, "BEGIN IMMEDIATE"):
                upgrade_to_head(writer)

    async def dispose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._postgres is not None:
            await self._postgres.dispose()
        if self._flushes:  # units waiting for their COMMIT get it before the writer closes
            await asyncio.gather(*self._flushes, return_exceptions=True)
        if self._sqlite_writer is not None:
            self._sqlite_writer.close()
            self._sqlite_writer = None
        if self._sqlite is not None:
            self._sqlite.dispose()


async def _keep_session(_connection: asyncpg.Connection) -> None:
    """Nothing to reset when the hot path hands a connection back: it sets no session state
    (no SET, LISTEN, advisory lock or cursor), and asyncpg has already rolled back a
    transaction left open. The default reset is a round trip per operation."""


def _replace_closed_connections(engine: AsyncEngine) -> None:
    """Hand out no connection the server has closed (a restart, an idle timeout), without
    `pool_pre_ping`'s round trip per check-out: asyncpg marks a connection closed as soon as
    the event loop reads the server's goodbye, so checking that flag is enough; raising
    `DisconnectionError` makes the pool open a fresh one instead. A connection that dies while
    in use fails its unit (503 + Retry-After in the API), and SQLAlchemy then recycles every
    connection of the pool that is older."""

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _on_checkout(_dbapi: Any, _record: Any, proxy: PoolProxiedConnection) -> None:
        driver = proxy.driver_connection
        if driver is None or driver.is_closed():
            raise DisconnectionError("the server closed this pooled connection")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if cursor.execute("PRAGMA page_count").fetchone()[0] == 0:
            # A new, empty file: before WAL and before the first table is the only moment
            # SQLite takes this (an existing database keeps its mode until a one-off VACUUM;
            # setting it there would even wait for the write lock). Lets retention hand purged
            # pages back to the file system with `PRAGMA incremental_vacuum`.
            cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
            "PRAGMA foreign_keys=ON",
        ):
            cursor.execute(pragma)
        cursor.close()


def _begin(connection: Connection, statement: str) -> RootTransaction:
    """Begin a SQLite transaction the way relayflow needs it: writers take the write lock up
    front (`BEGIN IMMEDIATE`, no deadlock-prone lock upgrades), readers defer (`BEGIN`).

    Sent straight to the driver after SQLAlchemy's own (no-op) begin. Not an engine "begin"
    event: any engine-level event listener makes SQLAlchemy dispatch events around every
    statement, ~15 % of a statement's cost.
    """
    transaction = connection.begin()
    dbapi_connection = connection.connection.dbapi_connection
    try:
        assert dbapi_connection is not None
        dbapi_connection.execute(statement)
    except BaseException:
        transaction.rollback()  # e.g. busy: the next unit must be able to begin again
        raise
    return transaction
