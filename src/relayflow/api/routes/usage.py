"""`/usage` and `/usage/history`: started-workflow counters per month."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from relayflow.api.auth import authorized_account
from relayflow.api.context import context_of
from relayflow.api.responses import FastJSONResponse
from relayflow.api.shapes import ERROR_RESPONSES, UsageMonthOut, UsageOut

router = APIRouter(prefix="/api/v1/accounts/{accountId}/usage", tags=["Usage"])


@router.get(
    "",
    operation_id="get-usage",
    summary="This month's usage",
    response_model=UsageOut,
    responses=ERROR_RESPONSES,
)
async def get_usage(request: Request, account_id: str = Depends(authorized_account)) -> Response:
    usage = await context_of(request).usage.current(account_id)
    return FastJSONResponse(
        {
            "accountId": account_id,
            "allowedWorkflowCount": usage.quota,
            "allowedOverage": True,
            "overagePrice": 0,
            "executedWorkflowCount": usage.started,
            "countStartedMonth": usage.month,
            "countStartedYear": usage.year,
        }
    )


@router.get(
    "/history",
    operation_id="get-usage-history",
    summary="Usage per month, newest first",
    response_model=list[UsageMonthOut],
    responses=ERROR_RESPONSES,
)
async def usage_history(
    request: Request, account_id: str = Depends(authorized_account)
) -> Response:
    months = await context_of(request).usage.history(account_id)
    return FastJSONResponse(
        [
            {
                "id": month.id,
                "accountId": month.account_id,
                "executedWorkflowCount": month.started,
                "month": month.month,
                "year": month.year,
            }
            for month in months
        ]
    )
