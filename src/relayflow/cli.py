"""The `relayflow` command line: serve, manage accounts and keys, validate, migrate."""

from __future__ import annotations

import asyncio
import json
import math
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, TypeVar

import typer
import uvicorn
import uvloop
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from relayflow.api.app import create_app
from relayflow.api.context import AppContext
from relayflow.api.operations_server import serving_operations
from relayflow.api.shapes import message_json
from relayflow.clock import SystemClock, iso_from_ms
from relayflow.config import DEFAULT_DATABASE_URL, Settings
from relayflow.errors import error_table_markdown
from relayflow.jsonbody import JsonBodyError, parse_json_object
from relayflow.logs import configure_logging
from relayflow.model.validation import validate_definition_input
from relayflow.services.accounts import PROVIDERS, AccountError, AccountService
from relayflow.services.retention import (
    PurgeReport,
    RetentionError,
    RetentionService,
    parse_age,
)
from relayflow.store.backup import BackupError, backup_sqlite
from relayflow.store.database import Database, DatabaseUrlError
from relayflow.telemetry import tracing
from relayflow.testing.command import run_command as run_flow_tests
from relayflow.testing.simulate import run_simulation

app = typer.Typer(
    help="relayflow: workflow automation for messaging (8x8 Automation API).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
accounts_app = typer.Typer(help="Manage accounts.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
docs_app = typer.Typer(help="Print generated documentation.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(docs_app, name="docs")
sandbox_app = typer.Typer(
    help="Play the customer against the sandbox provider.", no_args_is_help=True
)
app.add_typer(sandbox_app, name="sandbox")

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


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def _run(db_url: str, action: Callable[[Database], Awaitable[T]], *, migrate: bool = True) -> T:
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
        raise _fail(str(error)) from None
    except AccountError as error:
        raise _fail(str(error)) from None
    except OSError as error:
        raise _fail(f"cannot reach the database: {error}") from None
    except SQLAlchemyError as error:
        raise _fail(f"database error: {_database_message(error)}") from None


def _database_message(error: SQLAlchemyError) -> str:
    """The driver's own words ('database "x" does not exist'), without SQLAlchemy's wrapping."""
    original = getattr(error, "orig", None)
    return str(original if original is not None else error).strip().splitlines()[0]


def _print_json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2))


HostOption = Annotated[str, typer.Option(envvar="RELAYFLOW_HOST", help="Listen address.")]
PortOption = Annotated[int, typer.Option(envvar="RELAYFLOW_PORT", help="Listen port.")]
LogOption = Annotated[str, typer.Option(envvar="RELAYFLOW_LOG_LEVEL", help="debug, info, warning.")]


def _start(db: str, log_level: str, **settings: Any) -> tuple[Settings, Database]:
    configure_logging(log_level)
    try:
        tracing.configure_from_environment("relayflow")
    except tracing.TracingUnavailable as error:
        raise _fail(str(error)) from None
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
        raise _fail(str(error)) from None


def _until_stopped(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    try:
        # uvloop (installed with uvicorn[standard]) for every long-running process alike.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
    except OSError as error:
        raise _fail(f"cannot start: {error}") from None
    except SQLAlchemyError as error:
        raise _fail(f"database error: {_database_message(error)}") from None


class _Server(uvicorn.Server):
    """uvicorn's server, telling the app when a stop begins (uvicorn waits for open
    connections before the app's own shutdown runs, so the app could not know otherwise).

    On SIGTERM or Ctrl-C uvicorn closes its listening sockets (new connections are refused),
    lets requests under way finish within `timeout_graceful_shutdown`, then runs the app's
    shutdown, where the embedded worker drains (it stopped claiming at the signal already)."""

    def __init__(self, config: uvicorn.Config, stopping: asyncio.Event) -> None:
        super().__init__(config)
        self._stopping = stopping
        self._loop = asyncio.get_running_loop()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # A signal handler: set the event from the loop, not from inside whatever it interrupted.
        self._loop.call_soon_threadsafe(self._stopping.set)
        super().handle_exit(sig, frame)


def _exit_cleanly(_sig: int, _frame: FrameType | None) -> None:
    """SIGTERM outside uvicorn's own handling: before it starts, or re-raised by uvicorn once
    it has shut down (it hands a caught signal on to the handler it found). A stop asked for
    and carried out is a success: exit 0 rather than die of the signal (-15)."""
    raise SystemExit(0)


def _serve_http(settings: Settings, database: Database, *, run_worker: bool) -> None:
    async def main() -> None:
        signal.signal(signal.SIGTERM, _exit_cleanly)
        await database.migrate()
        context = AppContext(settings=settings, db=database, clock=SystemClock())
        demo = await context.accounts.create_demo_if_empty()
        if demo is not None:
            typer.echo(
                "Created account 'demo' on this new database. "
                "Save these now; they are not shown again:"
            )
            _print_json(demo.as_json())
        config = uvicorn.Config(
            create_app(context, run_worker=run_worker, close_on_shutdown=True),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            access_log=False,
            lifespan="on",
            # Requests under way (and a console page's live stream, which ends at once on
            # `stopping`) delay a stop at most this long.
            timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_seconds),
        )
        typer.echo(f"relayflow listening on http://{settings.host}:{settings.port} (docs at /docs)")
        await _Server(config, context.stopping).serve()

    _until_stopped(main)


@app.command()
def serve(
    db: DbOption = DEFAULT_DATABASE_URL,
    host: HostOption = "127.0.0.1",
    port: PortOption = 8080,
    log_level: LogOption = "info",
) -> None:
    """Run everything in one process: migrate, serve the HTTP API, run the engine."""
    settings, database = _start(db, log_level, host=host, port=port)
    _serve_http(settings, database, run_worker=True)


@app.command()
def api(
    db: DbOption = DEFAULT_DATABASE_URL,
    host: HostOption = "127.0.0.1",
    port: PortOption = 8080,
    log_level: LogOption = "info",
) -> None:
    """Serve the HTTP API only (scale-out: run workers with `relayflow worker`)."""
    settings, database = _start(db, log_level, host=host, port=port)
    _serve_http(settings, database, run_worker=False)


@app.command()
def worker(
    db: DbOption = DEFAULT_DATABASE_URL,
    log_level: LogOption = "info",
    metrics_port: Annotated[
        int | None,
        typer.Option(
            envvar="RELAYFLOW_METRICS_PORT",
            min=1,
            max=65535,
            help="Serve /metrics, /readyz and /healthz on this port (off by default).",
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(envvar="RELAYFLOW_HOST", help="Listen address of --metrics-port.")
    ] = "127.0.0.1",
) -> None:
    """Run the engine only: claim and run workflow instances until SIGTERM / Ctrl-C, then let
    sprints under way finish (RELAYFLOW_SHUTDOWN_GRACE_SECONDS), release leases, exit 0."""
    settings, database = _start(db, log_level, metrics_port=metrics_port, host=host)

    async def main() -> None:
        await database.migrate()
        runtime = AppContext(settings=settings, db=database, clock=SystemClock())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        typer.echo(f"relayflow worker {runtime.worker.owner} running")
        try:
            async with AsyncExitStack() as stack:
                if settings.metrics_port is not None:
                    await stack.enter_async_context(
                        serving_operations(runtime, settings.host, settings.metrics_port)
                    )
                    typer.echo(f"metrics on http://{settings.host}:{settings.metrics_port}/metrics")
                await runtime.run_worker(stop)
        finally:
            await runtime.close()

    _until_stopped(main)


@db_app.command("upgrade")
def db_upgrade(db: DbOption = DEFAULT_DATABASE_URL) -> None:
    """Create or migrate the schema to the newest revision."""

    async def noop(_db: Database) -> None:
        return None

    _run(db, noop)
    typer.echo("database is up to date")


@db_app.command("purge")
def db_purge(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than", help="Purge what ended longer ago than this: 30d, 12h or 30 (days)."
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be removed; change nothing.")
    ] = False,
    db: DbOption = DEFAULT_DATABASE_URL,
) -> None:
    """Purge Complete and Terminated instances that ended before --older-than, with their
    logs, events, messages and receipts (Runnable and Suspended instances are always kept)."""
    try:
        age_ms = parse_age(older_than)
    except RetentionError as error:
        raise _fail(f"--older-than: {error}") from None
    settings = Settings()

    def purge(database: Database) -> Awaitable[PurgeReport]:
        service = RetentionService.from_settings(database, SystemClock(), settings)
        return service.purge(age_ms, dry_run=dry_run)

    report = _run(db, purge)
    verb = "would remove" if dry_run else "removed"
    typer.echo(f"ended before {iso_from_ms(report.cutoff_ms)}: {verb}")
    for table, count in report.removed.items():
        typer.echo(f"  {table:<18} {count}")
    if report.pages_reclaimed:
        typer.echo(f"reclaimed {report.pages_reclaimed} free pages (incremental vacuum)")


@db_app.command("backup")
def db_backup(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="Where to write the copy (new).")],
    db: DbOption = DEFAULT_DATABASE_URL,
) -> None:
    """Copy a live SQLite database consistently (SQLite's online backup) while `serve` runs;
    for PostgreSQL use pg_dump."""
    try:
        result = _run(db, lambda database: backup_sqlite(database, file), migrate=False)
    except BackupError as error:
        raise _fail(str(error)) from None
    typer.echo(f"backed up {result.pages} pages ({result.bytes} bytes) to {result.path}")


@accounts_app.command("create")
def accounts_create(
    account_id: Annotated[
        str, typer.Argument(metavar="ID", help="Account id, e.g. your 8x8 account id.")
    ],
    provider: Annotated[
        str, typer.Option(help=f"Messaging provider: {', '.join(PROVIDERS)}.")
    ] = "sandbox",
    db: DbOption = DEFAULT_DATABASE_URL,
) -> None:
    """Create an account; prints {"accountId", "apiKey", "webhookToken"} (shown only once)."""
    created = _run(
        db, lambda database: AccountService(database, SystemClock()).create(account_id, provider)
    )
    _print_json(created.as_json())


@accounts_app.command("list")
def accounts_list(
    db: DbOption = DEFAULT_DATABASE_URL,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List accounts with their provider and number of active keys."""
    rows = _run(db, lambda database: AccountService(database, SystemClock()).list_all())
    if as_json:
        _print_json(
            [
                {
                    "accountId": r.id,
                    "provider": r.provider,
                    "activeKeys": r.active_keys,
                    "createdAt": iso_from_ms(r.created_at_ms),
                }
                for r in rows
            ]
        )
        return
    table = Table("account", "provider", "active keys", "created")
    for r in rows:
        table.add_row(r.id, r.provider, str(r.active_keys), iso_from_ms(r.created_at_ms))
    # Never cut ids short when stdout is not a terminal (80 columns by default).
    Console(width=max(100, 60 + max((len(r.id) for r in rows), default=0))).print(table)


@accounts_app.command("set-provider")
def accounts_set_provider(
    account_id: Annotated[str, typer.Argument(metavar="ID")],
    provider: Annotated[str, typer.Argument(metavar="PROVIDER", help="sandbox or 8x8.")],
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="RELAYFLOW_8X8_API_KEY", help="The 8x8 API key."),
    ] = None,
    region: Annotated[str | None, typer.Option(help="apac (default), us, uk or id.")] = None,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="One URL for all three 8x8 APIs (proxy, tests)."),
    ] = None,
    sms_url: Annotated[str | None, typer.Option("--sms-url", help="8x8 SMS API base URL.")] = None,
    chatapps_url: Annotated[
        str | None, typer.Option("--chatapps-url", help="8x8 Chat Apps API base URL.")
    ] = None,
    voice_url: Annotated[
        str | None, typer.Option("--voice-url", help="8x8 Voice API base URL.")
    ] = None,
    db: DbOption = DEFAULT_DATABASE_URL,
) -> None:
    """Send through the sandbox or through 8x8 with the account's API key (stored encrypted
    with RELAYFLOW_SECRET_KEY; never printed)."""
    if provider not in ("sandbox", "8x8"):
        raise _fail("PROVIDER must be 'sandbox' or '8x8'")
    if provider == "8x8" and not api_key:
        raise _fail("--api-key (or RELAYFLOW_8X8_API_KEY) is required for 8x8")

    async def apply(runtime: AppContext) -> Any:
        if provider == "sandbox":
            return await runtime.provider_settings.use_sandbox(account_id)
        assert api_key is not None
        return await runtime.provider_settings.use_8x8(
            account_id,
            api_key,
            region=region,
            base_url=base_url,
            sms_url=sms_url,
            chatapps_url=chatapps_url,
            voice_url=voice_url,
        )

    view = _with_runtime(db, account_id, apply)
    _print_json(view.as_json())


@accounts_app.command("show-provider")
def accounts_show_provider(
    account_id: Annotated[str, typer.Argument(metavar="ID")], db: DbOption = DEFAULT_DATABASE_URL
) -> None:
    """The account's provider settings (the API key is never shown)."""
    view = _with_runtime(db, account_id, lambda runtime: runtime.provider_settings.get(account_id))
    _print_json(view.as_json())


@keys_app.command("create")
def keys_create(
    account_id: Annotated[str, typer.Argument(metavar="ACCOUNT")],
    name: Annotated[str | None, typer.Option(help="A label to recognise the key by.")] = None,
    admin: Annotated[
        bool, typer.Option("--admin", help="May also change provider settings.")
    ] = False,
    db: DbOption = DEFAULT_DATABASE_URL,
) -> None:
    """Create another API key for an account; prints it once."""
    key = _run(
        db,
        lambda database: AccountService(database, SystemClock()).create_key(
            account_id, name, admin=admin
        ),
    )
    _print_json(key.as_json())


@keys_app.command("list")
def keys_list(
    account_id: Annotated[str, typer.Argument(metavar="ACCOUNT")],
    db: DbOption = DEFAULT_DATABASE_URL,
) -> None:
    """List an account's keys (ids only: secrets are never stored)."""
    rows = _run(db, lambda database: AccountService(database, SystemClock()).list_keys(account_id))
    _print_json(
        [
            {
                "keyId": r.id,
                "name": r.name,
                "createdAt": iso_from_ms(r.created_at_ms),
                "revokedAt": iso_from_ms(r.revoked_at_ms) if r.revoked_at_ms else None,
                "admin": r.is_admin,
            }
            for r in rows
        ]
    )


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID")], db: DbOption = DEFAULT_DATABASE_URL
) -> None:
    """Revoke an API key by its id; requests with it get 401 from now on."""
    _run(db, lambda database: AccountService(database, SystemClock()).revoke_key(key_id))
    typer.echo(f"revoked {key_id}")


@app.command()
def validate(
    file: Annotated[
        Path, typer.Argument(help="Definition JSON file ('-' for stdin).", allow_dash=True)
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Validate a definition offline; if invalid, list every problem and exit with code 1."""
    try:
        raw = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
        document = parse_json_object(raw, what=str(file))
    except OSError as error:
        raise _fail(f"cannot read {file}: {error.strerror}") from None
    except JsonBodyError as error:
        raise _fail(str(error)) from None
    result = validate_definition_input(document, Settings().limits)
    if as_json:
        _print_json({"valid": result.valid, "errors": [p.as_json() for p in result.problems]})
    elif result.valid:
        typer.echo(f"{file}: valid")
    else:
        for problem in result.problems:
            typer.echo(f"{problem.path or '(body)'}: [{int(problem.code)}] {problem.message}")
    if not result.valid:
        raise typer.Exit(1)


AccountOption = Annotated[str, typer.Option("--account", "-a", help="Account id.")]


def _with_runtime(db: str, account: str, action: Callable[[AppContext], Awaitable[Any]]) -> Any:
    """Run `action` with a full runtime (services, engine) on `db`, for an existing account."""

    async def run(database: Database) -> Any:
        runtime = AppContext(settings=Settings(database_url=db), db=database, clock=SystemClock())
        try:
            await runtime.accounts.require(account)
            return await action(runtime)
        finally:
            runtime.evaluator.close()
            await runtime.http.close()

    return _run(db, run)


@sandbox_app.command("sms")
def sandbox_sms(
    sender: Annotated[
        str, typer.Argument(metavar="FROM", help="Customer number, e.g. +6591234567.")
    ],
    text: Annotated[str, typer.Argument(help="Message text.")],
    to: Annotated[str, typer.Option(help="Your virtual number.")] = "+6580000000",
    sub_account: Annotated[str | None, typer.Option("--sub-account", help="subAccountId.")] = None,
    account: AccountOption = "demo",
    db: DbOption = DEFAULT_DATABASE_URL,
) -> None:
    """A customer sends an SMS: routed like 8x8's inbound SMS webhook."""
    event, result = _with_runtime(
        db, account, lambda rt: rt.sandbox.inbound_sms(account, sender, to, text, sub_account)
    )
    _print_json({"event": event, **result.as_json()})


@sandbox_app.command("chat")
def sandbox_chat(
    channel: Annotated[str, typer.Argument(help="whatsapp, viber, line, RCS, ...")],
    sender: Annotated[str, typer.Argument(metavar="FROM", help="Phone number or channel user id.")],
    text: Annotated[str | None, typer.Argument(help="Message text.")] = None,
    payload: Annotated[str | None, typer.Option(help="Quick-reply button payload.")] = None,
    sub_account: Annotated[str | None, typer.Option("--sub-account", help="subAccountId.")] = None,
    account: AccountOption = "demo",
    db: DbOption = DEFAULT_DATABASE_URL,
) -> None:
    """A customer sends a chat-apps message (or presses a button with --payload)."""
    if text is None and payload is None:
        raise _fail("give the message TEXT and/or --payload")
    event, result = _with_runtime(
        db,
        account,
        lambda rt: rt.sandbox.inbound_chat(account, channel, sender, text, payload, sub_account),
    )
    _print_json({"event": event, **result.as_json()})


@sandbox_app.command("dtmf")
def sandbox_dtmf(
    digits: Annotated[str, typer.Argument(help="Keys pressed, e.g. 1.")],
    client_request_id: Annotated[str | None, typer.Option("--client-request-id")] = None,
    uid: Annotated[str | None, typer.Option("--uid")] = None,
    account: AccountOption = "demo",
    db: DbOption = DEFAULT_DATABASE_URL,
) -> None:
    """The callee of a say&capture call presses keys."""
    if not client_request_id and not uid:
        raise _fail("give --client-request-id or --uid of the voice message")
    if not digits or any(c not in "0123456789*#" for c in digits):
        raise _fail("digits may only contain 0-9, * and #")
    event, result = _with_runtime(
        db, account, lambda rt: rt.sandbox.dtmf(account, client_request_id, uid, digits)
    )
    _print_json({"event": event, **result.as_json()})


@sandbox_app.command("outbox")
def sandbox_outbox(
    account: AccountOption = "demo",
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    channel: Annotated[str | None, typer.Option(help="sms, chatapps or voice.")] = None,
    db: DbOption = DEFAULT_DATABASE_URL,
) -> None:
    """Messages your workflows sent, newest first, with the exact 8x8 request bodies."""
    rows = _with_runtime(
        db,
        account,
        lambda rt: rt.sandbox.outbox(
            account, limit=limit, offset=0, channel=channel, workflow_id=None
        ),
    )
    _print_json([message_json(row) for row in rows])


@app.command("test")
def flow_test(
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="PATH", help="*.flowtest.json files, or directories searched recursively."
        ),
    ],
    junit_xml: Annotated[
        Path | None, typer.Option("--junit-xml", metavar="FILE", help="Also write JUnit XML.")
    ] = None,
    keyword: Annotated[
        str | None,
        typer.Option(
            "-k", metavar="SUBSTRING", help="Only tests whose name or file name contains it."
        ),
    ] = None,
    update: Annotated[
        bool, typer.Option("--update", help="Write what happened into each file's expect.")
    ] = False,
) -> None:
    """Run flow tests on the real engine with a virtual clock and mocks; exit 0 if all pass,
    1 if any fails, 2 for an unreadable or invalid test file."""
    # Engine logs go to stderr as JSON, warnings and worse only: the report stays on stdout.
    configure_logging("warning")
    code = run_flow_tests(
        paths,
        keyword=keyword,
        junit=junit_xml,
        update=update,
        out=typer.echo,
        err=lambda line: typer.echo(line, err=True),
    )
    raise typer.Exit(code)


@app.command("simulate")
def flow_simulate(
    flow: Annotated[
        Path,
        typer.Argument(metavar="FLOW.json", help="A definition (the body of POST /definitions)."),
    ],
    script: Annotated[
        Path | None,
        typer.Option(
            "--script",
            metavar="FILE",
            help="Run these commands (one a line) and print the transcript.",
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--start", metavar="ISO", help="Virtual start time (default 2026-01-05T09:00:00Z)."
        ),
    ] = None,
    mocks: Annotated[
        Path | None,
        typer.Option(
            "--mocks", metavar="FILE", help="A flow test's mocks object (HTTP, provider answers)."
        ),
    ] = None,
) -> None:
    """Play the customer against a flow in virtual time; /save writes a flow test. Exit 1 when an
    action of --script fails, 2 for an unreadable or invalid flow, mocks or script file."""
    configure_logging("warning")
    code = run_simulation(
        flow,
        script=script,
        start=start,
        mocks=mocks,
        out=typer.echo,
        err=lambda line: typer.echo(line, err=True),
    )
    raise typer.Exit(code)


@docs_app.command("errors")
def docs_errors() -> None:
    """The error-code table in Markdown (the README's table is generated with this)."""
    typer.echo(error_table_markdown())


def main() -> None:
    app()
