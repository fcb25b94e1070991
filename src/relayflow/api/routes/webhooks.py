"""`/webhooks/{accountId}/sms|chatapps|voice`: where 8x8 (and the fake 8x8) deliver events.

Authenticated by the account's webhook token (`?token=` or `Authorization: Bearer`); the voice
webhook also accepts the signature relayflow puts into the DTMF callback URLs it gives 8x8.
A rejected webhook is stored nowhere.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Path
from starlette.requests import Request
from starlette.responses import Response

from relayflow.api.context import context_of
from relayflow.api.params import json_body
from relayflow.api.responses import FastJSONResponse
from relayflow.api.shapes import ERROR_RESPONSES
from relayflow.channels.providers import voice_signature_message
from relayflow.errors import ApiError, ErrorCode
from relayflow.telemetry import metrics

router = APIRouter(prefix="/webhooks/{accountId}", tags=["Webhooks (where 8x8 posts events)"])
WEBHOOK_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


async def _authenticate(request: Request, account_id: str, *, allow_signature: bool) -> None:
    context = context_of(request)
    token = request.query_params.get("token")
    header = request.headers.get("authorization", "")
    if not token and header.lower().startswith("bearer "):
        token = header[7:].strip()
    if (
        token
        and len(token) <= 200
        and await context.accounts.check_webhook_token(account_id, token)
    ):
        return
    signature = request.query_params.get("sig")
    box = context.secretbox
    if (
        allow_signature
        and signature
        and box
        and box.verify(voice_signature_message(account_id), signature)
    ):
        return
    raise ApiError(ErrorCode.UNAUTHORIZED, "Invalid or missing webhook token.")


async def _handle(
    request: Request,
    account_id: str,
    kind: str,
    handler: Callable[[str, dict[str, Any]], Awaitable[Any]],
    *,
    allow_signature: bool = False,
) -> Response:
    """Authenticate, parse and hand over; `relayflow_webhooks_received_total` counts the outcome."""
    outcome = "unauthorized"
    try:
        await _authenticate(request, account_id, allow_signature=allow_signature)
        outcome = "invalid"
        event = await json_body(request)
        result = await handler(account_id, event)
        outcome = "duplicate" if result.duplicate else "accepted"
    except ApiError as error:
        if error.http_status >= 500 or error.http_status == 429:  # not the event's fault: 8x8
            outcome = "failed"  # retries it
        raise
    except BaseException:
        outcome = "failed"
        raise
    finally:
        metrics.webhooks_received.labels(kind, outcome).inc()
    return FastJSONResponse(result.as_json())


AccountPath = Path(max_length=100, description="relayflow account id.")


@router.post(
    "/sms",
    operation_id="webhook-sms",
    summary="8x8 SMS webhooks: inbound SMS, delivery receipts",
    responses=ERROR_RESPONSES,
    openapi_extra=WEBHOOK_BODY,
)
async def sms_webhook(request: Request, accountId: str = AccountPath) -> Response:
    return await _handle(request, accountId, "sms", context_of(request).webhooks.sms)


@router.post(
    "/chatapps",
    operation_id="webhook-chatapps",
    summary="8x8 Chat Apps webhooks: inbound messages (v2/v3), delivery receipts (v8/v9)",
    responses=ERROR_RESPONSES,
    openapi_extra=WEBHOOK_BODY,
)
async def chatapps_webhook(request: Request, accountId: str = AccountPath) -> Response:
    return await _handle(request, accountId, "chatapps", context_of(request).webhooks.chatapps)


@router.post(
    "/voice",
    operation_id="webhook-voice",
    summary="8x8 Voice webhooks: DTMF callback, call-action (VCA), session summary",
    responses=ERROR_RESPONSES,
    openapi_extra=WEBHOOK_BODY,
)
async def voice_webhook(request: Request, accountId: str = AccountPath) -> Response:
    return await _handle(
        request, accountId, "voice", context_of(request).webhooks.voice, allow_signature=True
    )
