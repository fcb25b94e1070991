"""`/api/v1/accounts/{accountId}/messages` (relayflow extension): what workflows sent, with
the delivery-receipt history 8x8 reported for each message."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request
from starlette.responses import Response

from relayflow.api.auth import authorized_account
from relayflow.api.context import context_of
from relayflow.api.params import limit_param, offset_param
from relayflow.api.paths import umid_path
from relayflow.api.responses import FastJSONResponse
from relayflow.api.shapes import (
    ERROR_RESPONSES,
    ErrorOut,
    MessageOut,
    MessageWithReceiptsOut,
    message_json,
    receipt_json,
)

router = APIRouter(
    prefix="/api/v1/accounts/{accountId}/messages", tags=["Messages (relayflow extension)"]
)


@router.get(
    "",
    operation_id="list-messages",
    summary="Sent messages, newest first",
    response_model=list[MessageOut],
    responses=ERROR_RESPONSES,
)
async def list_messages(
    request: Request,
    account_id: str = Depends(authorized_account),
    limit: int = limit_param(),
    offset: int = offset_param(),
    workflowId: str | None = Query(None, max_length=24),
) -> Response:
    rows = await context_of(request).messages.list_messages(
        account_id, limit=limit, offset=offset, instance_id=workflowId
    )
    return FastJSONResponse([message_json(row) for row in rows])


@router.get(
    "/{umid}",
    operation_id="get-message",
    summary="A sent message and its status history",
    response_model=MessageWithReceiptsOut,
    responses={
        **ERROR_RESPONSES,
        404: {"model": ErrorOut, "description": "Message not found (code 1302)."},
    },
)
async def get_message(
    request: Request,
    umid: str = umid_path(),
    account_id: str = Depends(authorized_account),
) -> Response:
    view = await context_of(request).messages.get(account_id, umid)
    return FastJSONResponse(
        {**message_json(view.message), "receipts": [receipt_json(r) for r in view.receipts]}
    )
