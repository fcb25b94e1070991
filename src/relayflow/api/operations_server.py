"""`/metrics`, `/readyz` and `/healthz` for a `relayflow worker` (`--metrics-port`).

A worker serves no API, so it gets a small aiohttp server of its own rather than the whole
FastAPI app: three routes, answered from the same `MonitoringService` as the API's, in the
worker's event loop (no thread, no signal handlers of its own: the worker's SIGTERM handling
stays in charge).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import structlog
from aiohttp import web
from sqlalchemy import text

from relayflow import __version__
from relayflow.runtime import Runtime
from relayflow.telemetry import metrics

log = structlog.get_logger("relayflow.api")


def _json(document: dict[str, object], status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(document), status=status, content_type="application/json")


def operations_app(runtime: Runtime) -> web.Application:
    async def prometheus(_request: web.Request) -> web.Response:
        try:
            await runtime.monitoring.refresh_gauges()
        except Exception as error:  # the process's own series are still worth reading
            log.warning("gauges_unavailable", error=type(error).__name__)
        body, content_type = metrics.exposition()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    async def readiness(_request: web.Request) -> web.Response:
        result = await runtime.monitoring.readiness()
        return _json({**result.as_json(), "version": __version__}, 200 if result.ready else 503)

    async def health(_request: web.Request) -> web.Response:
        try:
            async with runtime.db.read() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as error:
            return _json(
                {"status": "unavailable", "database": type(error).__name__, "version": __version__},
                503,
            )
        return _json({"status": "ok", "database": runtime.db.dialect, "version": __version__})

    app = web.Application()
    app.router.add_get("/metrics", prometheus)
    app.router.add_get("/readyz", readiness)
    app.router.add_get("/healthz", health)
    return app


@asynccontextmanager
async def serving_operations(runtime: Runtime, host: str, port: int) -> AsyncIterator[None]:
    """Serve the operations routes on `host:port` for the duration of the block."""
    runner = web.AppRunner(operations_app(runtime), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        yield
    finally:
        await runner.cleanup()
