"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.responses import RedirectResponse

from relayflow import __version__
from relayflow.api.body_limit import BodySizeLimit
from relayflow.api.context import AppContext
from relayflow.api.errors import install_error_handlers
from relayflow.api.metering import RequestMetrics
from relayflow.api.params import document_page_size
from relayflow.api.routes import (
    definitions,
    health,
    instances,
    messages,
    provider,
    sandbox,
    steps,
    triggers,
    usage,
    webhooks,
)
from relayflow.console.app import create_console
from relayflow.model.definition import DefinitionInput
from relayflow.telemetry import tracing

DESCRIPTION = """\
relayflow implements the 8x8 CPaaS **Automation API** (`/api/v1/accounts/{accountId}/...`).
Authenticate with `Authorization: Bearer <API key>`; a key opens only its own account.
Every error is `{code, message, errorId, timestamp}` (validation errors add `errors[]`).
Operations marked *relayflow extension* are not part of 8x8's API.
"""

# The order /docs shows the groups in (independent of the order routes are matched in).
TAG_ORDER = (
    "Operations",
    "Workflow Definition Management",
    "Workflow Instance Management",
    "Triggers",
    "Steps",
    "Usage",
    "Sandbox (relayflow extension)",
    "Provider (relayflow extension)",
    "Messages (relayflow extension)",
    "Webhooks (where 8x8 posts events)",
)


def create_app(
    context: AppContext, *, run_worker: bool = False, close_on_shutdown: bool = False
) -> FastAPI:
    """The ASGI app; with `run_worker` the engine's worker runs in the same event loop."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        worker = asyncio.create_task(context.run_worker(stop)) if run_worker else None
        # uvicorn lets open requests finish before the lifespan ends: the worker stops claiming
        # as soon as the process starts stopping, and drains alongside the requests.
        stopping = asyncio.create_task(context.stopping.wait())
        stopping.add_done_callback(lambda _: stop.set())
        try:
            yield
        finally:
            stopping.cancel()
            stop.set()
            if worker is not None:
                await worker
            await console.state.virtual.close()  # a mounted app gets no lifespan of its own
            if close_on_shutdown:
                await context.close()

    console = create_console(context)
    app = FastAPI(
        title="relayflow",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        openapi_tags=[{"name": tag} for tag in TAG_ORDER],
    )
    app.state.context = context
    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimit, max_bytes=context.settings.limits.max_request_body_bytes, clock=context.clock
    )
    # Added last, so outermost: refusals of the middleware above are counted and traced too.
    app.add_middleware(RequestMetrics)
    tracing.add_server_spans(app)
    # Starlette tries routes in order: the routes 8x8 and callers hit most come first (every
    # webhook used to be matched against every other route's pattern before its own).
    for module in (
        webhooks,
        triggers,
        health,
        definitions,
        instances,
        steps,
        usage,
        sandbox,
        provider,
        messages,
    ):
        app.include_router(module.router)
    # `/console` itself (the mount only serves `/console/...`): straight to the definitions.
    app.add_api_route(
        "/console",
        lambda: RedirectResponse("/console/definitions", status_code=303),
        include_in_schema=False,
    )
    app.mount("/console", console)
    app.openapi = lambda: _openapi(app, context)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI, context: AppContext) -> dict[str, Any]:
    """FastAPI's document plus the definition schema our raw-body routes accept, and the
    configured page sizes."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        schema = DefinitionInput.model_json_schema(ref_template="#/components/schemas/{model}")
        components = document.setdefault("components", {}).setdefault("schemas", {})
        components.update(schema.pop("$defs", {}))
        components["DefinitionInput"] = schema
        limits = context.settings.limits
        document_page_size(document, limits.default_page_size, limits.max_page_size)
        app.openapi_schema = document
    return app.openapi_schema
