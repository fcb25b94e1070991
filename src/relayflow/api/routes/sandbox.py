"""Sandbox provider endpoints (relayflow extension): read the outbox, play the customer."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request
from starlette.responses import Response

from relayflow.api.auth import authorized_account
from relayflow.api.context import context_of
from relayflow.api.params import body_schema, limit_param, model_body, offset_param
from relayflow.api.responses import FastJSONResponse
from relayflow.api.shapes import ERROR_RESPONSES, MessageOut, RouteResultOut, message_json
from relayflow.services.inputs import Dtmf, InboundChat, InboundSms

router = APIRouter(
    prefix="/api/v1/accounts/{accountId}/sandbox", tags=["Sandbox (relayflow extension)"]
)


@router.get(
    "/outbox",
    operation_id="sandbox-outbox",
    summary="Messages sent by workflows, newest first",
    response_model=list[MessageOut],
    responses=ERROR_RESPONSES,
)
async def outbox(
    request: Request,
    account_id: str = Depends(authorized_account),
    limit: int = limit_param(),
    offset: int = offset_param(),
    channel: Literal["sms", "chatapps", "voice"] | None = Query(None),
    workflowId: str | None = Query(None, max_length=24),
) -> Response:
    rows = await context_of(request).sandbox.outbox(
        account_id, limit=limit, offset=offset, channel=channel, workflow_id=workflowId
    )
    return FastJSONResponse([message_json(row) for row in rows])


@router.post(
    "/inbound/sms",
    operation_id="sandbox-inbound-sms",
    summary="A customer sends an SMS (routed like 8x8's inbound webhook)",
    response_model=RouteResultOut,
    responses=ERROR_RESPONSES,
    openapi_extra=body_schema(InboundSms),
)
async def inbound_sms(request: Request, account_id: str = Depends(authorized_account)) -> Response:
    body = await model_body(request, InboundSms)
    event, result = await context_of(request).sandbox.inbound_sms(
        account_id, body.from_, body.to, body.text, body.subAccountId
    )
    return FastJSONResponse({"event": event, **result.as_json()})


@router.post(
    "/inbound/chatapps",
    operation_id="sandbox-inbound-chatapps",
    summary="A customer sends a chat-apps message or presses a button",
    response_model=RouteResultOut,
    responses=ERROR_RESPONSES,
    openapi_extra=body_schema(InboundChat),
)
async def inbound_chat(request: Request, account_id: str = Depends(authorized_account)) -> Response:
    body = await model_body(request, InboundChat)
    event, result = await context_of(request).sandbox.inbound_chat(
        account_id, body.channel, body.from_, body.text, body.payload, body.subAccountId
    )
    return FastJSONResponse({"event": event, **result.as_json()})


@router.post(
    "/dtmf",
    operation_id="sandbox-dtmf",
    summary="The callee presses keys during a say&capture call",
    response_model=RouteResultOut,
    responses=ERROR_RESPONSES,
    openapi_extra=body_schema(Dtmf),
)
async def dtmf(request: Request, account_id: str = Depends(authorized_account)) -> Response:
    body = await model_body(request, Dtmf)
    callback, result = await context_of(request).sandbox.dtmf(
        account_id, body.clientRequestId, body.uid, body.digits
    )
    return FastJSONResponse({"event": callback, **result.as_json()})
