"""Operations: `/healthz` (liveness), `/readyz` (readiness) and `/metrics` (Prometheus).

`/healthz` answers 200 whenever the database answers: a load balancer's or container's liveness
probe. `/readyz` also wants the newest schema and, where the process runs the engine, a worker
loop that is alive and keeping up (the reasons are in the 503's body). Neither needs a key:
they reveal no account data; `/metrics` neither (its labels hold no ids, numbers or names).
"""

from __future__ import annotations

import structlog
from fastapi import APIRouter
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response

from relayflow import __version__
from relayflow.api.context import context_of
from relayflow.api.responses import FastJSONResponse
from relayflow.telemetry import metrics

router = APIRouter(tags=["Operations"])
log = structlog.get_logger("relayflow.api")


@router.get("/healthz", operation_id="health", summary="Health check (relayflow extension)")
async def health(request: Request) -> Response:
    context = context_of(request)
    try:
        async with context.db.read() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as error:  # any database failure means "not ready"
        return FastJSONResponse(
            {"status": "unavailable", "database": type(error).__name__, "version": __version__},
            status_code=503,
        )
    return FastJSONResponse(
        {"status": "ok", "database": context.db.dialect, "version": __version__}
    )


@router.get(
    "/readyz",
    operation_id="readiness",
    summary="Readiness check (relayflow extension)",
    responses={503: {"description": "Not ready; `reasons` says why."}},
)
async def readiness(request: Request) -> Response:
    result = await context_of(request).monitoring.readiness()
    return FastJSONResponse(
        {**result.as_json(), "version": __version__}, status_code=200 if result.ready else 503
    )


@router.get(
    "/metrics",
    operation_id="metrics",
    summary="Prometheus metrics (relayflow extension)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def prometheus_metrics(request: Request) -> Response:
    try:
        await context_of(request).monitoring.refresh_gauges()
    except Exception as error:  # the database is down: the process's own series still count
        log.warning("gauges_unavailable", error=type(error).__name__)
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)
