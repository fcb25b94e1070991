"""What every command shares: the database option, errors, JSON output, process start-up."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer
import uvloop
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError

from relayflow.api.context import AppContext
from relayflow.clock import SystemClock
from relayflow.config import Settings
from relayflow.logs import configure_logging
from relayflow.services.accounts import AccountError
from relayflow.store.database import Database, DatabaseUrlError
from relayflow.telemetry import tracing

err = Console(stderr=True, soft_wrap=True)


T = TypeVar("T")


DbOption = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="RELAYFLOW_DATABASE_URL",
        help="Database URL: sqlite:///path.db or postgresql://user@host:port/db.",
        show_default=True,
    ),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code)


def run_on_database(
    db_url: str, action: Callable[[Database], Awaitable[T]], *, migrate: bool = True
) -> T:
    """Open the database, migrate it, run `action`, close it; user errors exit with code 1."""

    async def main() -> T:
        db = Database(db_url)
        try:
            if migrate:
                await db.migrate()
            return await action(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except DatabaseUrlError as error:
        raise fail(str(error)) from None
    except AccountError as error:
        raise fail(str(error)) from None
    except OSError as error:
        raise fail(f"cannot reach the database: {error}") from None
    except SQLAlchemyError as error:
        raise fail(f"database error: {database_message(error)}") from None


def database_message(error: SQLAlchemyError) -> str:
    """The driver's own words ('database "x" does not exist'), without SQLAlchemy's wrapping."""
    original = getattr(error, "orig", None)
    return str(original if original is not None else error).strip().splitlines()[0]


def print_json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2))


HostOption = Annotated[str, typer.Option(envvar="RELAYFLOW_HOST", help="Listen address.")]


PortOption = Annotated[int, typer.Option(envvar="RELAYFLOW_PORT", help="Listen port.")]


LogOption = Annotated[str, typer.Option(envvar="RELAYFLOW_LOG_LEVEL", help="debug, info, warning.")]


def start(db: str, log_level: str, **settings: Any) -> tuple[Settings, Database]:
    configure_logging(log_level)
    try:
        tracing.configure_from_environment("relayflow")
    except tracing.TracingUnavailable as error:
        raise fail(str(error)) from None
    try:
        config = Settings(database_url=db, log_level=log_level, **settings)
        return config, Database(
            config.database_url,
            echo=config.echo_sql,
            pool_size=config.db_pool_size,
            max_overflow=config.db_max_overflow,
            pool_timeout_s=config.db_pool_timeout_seconds,
        )
    except DatabaseUrlError as error:
        raise fail(str(error)) from None


def until_stopped(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    try:
        # uvloop (installed with uvicorn[standard]) for every long-running process alike.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
    except OSError as error:
        raise fail(f"cannot start: {error}") from None
    except SQLAlchemyError as error:
        raise fail(f"database error: {database_message(error)}") from None


AccountOption = Annotated[str, typer.Option("--account", "-a", help="Account id.")]


def with_runtime(db: str, account: str, action: Callable[[AppContext], Awaitable[Any]]) -> Any:
    """Run `action` with a full runtime (services, engine) on `db`, for an existing account."""

    async def run(database: Database) -> Any:
        runtime = AppContext(settings=Settings(database_url=db), db=database, clock=SystemClock())
        try:
            await runtime.accounts.require(account)
            return await action(runtime)
        finally:
            runtime.evaluator.close()
            await runtime.http.close()

    return run_on_database(db, run)
