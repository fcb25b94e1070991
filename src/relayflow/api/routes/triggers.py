"""`POST /triggers/http_request`: external systems start workflows."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request
from starlette.responses import Response

from relayflow.api.auth import authorized_account
from relayflow.api.context import context_of
from relayflow.api.params import json_body
from relayflow.api.responses import FastJSONResponse
from relayflow.api.shapes import ERROR_RESPONSES, ErrorOut, TriggerResultOut

router = APIRouter(prefix="/api/v1/accounts/{accountId}/triggers", tags=["Triggers"])


@router.post(
    "/http_request",
    operation_id="http_request_trigger",
    summary="Start every enabled http_request definition with this body as `data`",
    description="The JSON body appears at the root of `data` (`{{data.price}}`). Without "
    "`subAccountId` only definitions without a subaccount start. Answers the started workflow "
    "ids (extension; 8x8 sends no body).",
    response_model=TriggerResultOut,
    responses={
        **ERROR_RESPONSES,
        429: {"model": ErrorOut, "description": "Rate limited (code 1429, Retry-After)."},
    },
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}
    },
)
async def http_request_trigger(
    request: Request,
    account_id: str = Depends(authorized_account),
    subAccountId: str | None = Query(
        None, max_length=200, description="Trigger only this subaccount's definitions."
    ),
) -> Response:
    body = await json_body(request, empty_ok=True)
    started = await context_of(request).instances.trigger_http(
        account_id, body, subAccountId or None
    )
    return FastJSONResponse({"workflowIds": started})
