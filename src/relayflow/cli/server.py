"""`serve`, `api` and `worker`: the long-running processes, and how they stop."""

from __future__ import annotations

import asyncio
import math
import signal
from contextlib import AsyncExitStack
from types import FrameType
from typing import Annotated

import typer
import uvicorn

from relayflow.api.app import create_app
from relayflow.api.context import AppContext
from relayflow.api.operations_server import serving_operations
from relayflow.cli.apps import app
from relayflow.cli.common import (
    DbOption,
    HostOption,
    LogOption,
    PortOption,
    print_json,
    start,
    until_stopped,
)
from relayflow.clock import SystemClock
from relayflow.config import DEFAULT_DATABASE_URL, Settings
from relayflow.store.database import Database


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
            print_json(demo.as_json())
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

    until_stopped(main)


@app.command()
def serve(
    db: DbOption = DEFAULT_DATABASE_URL,
    host: HostOption = "127.0.0.1",
    port: PortOption = 8080,
    log_level: LogOption = "info",
) -> None:
    """Run everything in one process: migrate, serve the HTTP API, run the engine."""
    settings, database = start(db, log_level, host=host, port=port)
    _serve_http(settings, database, run_worker=True)


@app.command()
def api(
    db: DbOption = DEFAULT_DATABASE_URL,
    host: HostOption = "127.0.0.1",
    port: PortOption = 8080,
    log_level: LogOption = "info",
) -> None:
    """Serve the HTTP API only (scale-out: run workers with `relayflow worker`)."""
    settings, database = start(db, log_level, host=host, port=port)
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
    settings, database = start(db, log_level, metrics_port=metrics_port, host=host)

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

    until_stopped(main)
