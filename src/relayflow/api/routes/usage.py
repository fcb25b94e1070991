"""`/usage` and `/usage/history`: started-workflow counters per month."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from relayflow.api.auth import authorized_account
from relayflow.api.context import context_of
from relayflow.api.responses import FastJSONResponse
from relayflow.api.shapes import ERROR_RESPONSES
from relayflow.store import usage as usage_store

router = APIRouter(prefix="/api/v1/accounts/{accountId}/usage", tags=["Usage"])


@router.get("", operation_id="get-usage", summary="This month's usage", responses=ERROR_RESPONSES)
async def get_usage(request: Request, account_id: str = Depends(authorized_account)) -> Response:
    context = context_of(request)
    now = context.clock.now_ms()
    async with context.db.read() as conn:
        started = await usage_store.this_month(conn, account_id, now)
    year, month = usage_store.month_of(now)
    quota = context.settings.allowed_workflow_count
    return FastJSONResponse(
        {
            "accountId": account_id,
            "allowedWorkflowCount": quota,
            "allowedOverage": True,
            "overagePrice": 0,
            "executedWorkflowCount": started,
            "countStartedMonth": month,
            "countStartedYear": year,
        }
    )


@router.get(
    "/history",
    operation_id="get-usage-history",
    summary="Usage per month, newest first",
    responses=ERROR_RESPONSES,
)
async def usage_history(
    request: Request, account_id: str = Depends(authorized_account)
) -> Response:
    context = context_of(request)
    async with context.db.read() as conn:
        months = await usage_store.monthly(conn, account_id)
    return FastJSONResponse(
        [
            {
                # 8x8 ids are 24-hex; derive a stable one per account and month.
                "id": hashlib.sha256(f"{account_id}/{year}/{month}".encode()).hexdigest()[:24],
                "accountId": account_id,
                "executedWorkflowCount": started,
                "month": month,
                "year": year,
            }
            for year, month, started in months
        ]
    )
