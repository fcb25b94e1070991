"""Liveness/readiness: `GET /healthz` answers 200 only when the database answers."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response

from relayflow import __version__
from relayflow.api.context import context_of
from relayflow.api.responses import FastJSONResponse

router = APIRouter(tags=["Operations"])


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
