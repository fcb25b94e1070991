"""`/console/sandbox`: play the customer against the account's flows. Sends go through the
same services (and the same input models) as `POST /sandbox/...` and the HTTP trigger; the
flow's replies are read from the sandbox outbox, which the page polls."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from relayflow.clock import iso_from_ms
from relayflow.console.render import context_of, json_of, render, session_of
from relayflow.errors import ApiError, ErrorCode
from relayflow.services.inputs import Dtmf, InboundChat, InboundSms, parse_input
from relayflow.services.sandbox import is_capture_call, sent_text
from relayflow.store.messages import MessageRow

OUTBOX_LIMIT = 100
CHANNELS = ("whatsapp", "viber", "line", "rcs", "messenger", "telegram", "zalo")


async def page(request: Request) -> Response:
    session = await session_of(request)
    definitions = await context_of(request).definitions.list_latest(session.account_id, 500, 0)
    return render(request, "sandbox.html", session, channels=CHANNELS, definitions=definitions)


async def send(request: Request) -> Response:
    """One customer action: `{"kind": "sms"|"chat"|"dtmf"|"http", ...}` as the REST API's
    sandbox bodies (plus `body` and `subAccountId` for an HTTP trigger)."""
    session = await session_of(request)
    body = await json_of(request, session)
    if not isinstance(body, dict):
        raise ApiError(ErrorCode.INVALID_BODY, "Send a JSON object.")
    kind = body.pop("kind", None)
    context = context_of(request)
    account = session.account_id
    if kind == "sms":
        sms = parse_input(InboundSms, body)
        _, result = await context.sandbox.inbound_sms(
            account, sms.from_, sms.to, sms.text, sms.subAccountId
        )
        return _json(result.as_json())
    if kind == "chat":
        chat = parse_input(InboundChat, body)
        _, result = await context.sandbox.inbound_chat(
            account, chat.channel, chat.from_, chat.text, chat.payload, chat.subAccountId
        )
        return _json(result.as_json())
    if kind == "dtmf":
        keys = parse_input(Dtmf, body)
        _, result = await context.sandbox.dtmf(account, keys.clientRequestId, keys.uid, keys.digits)
        return _json(result.as_json())
    if kind == "http":
        trigger_body = body.get("body", {})
        sub_account = body.get("subAccountId") or None
        if not isinstance(trigger_body, dict):
            raise ApiError(ErrorCode.INVALID_BODY, "The trigger body must be a JSON object.")
        if sub_account is not None and (not isinstance(sub_account, str) or len(sub_account) > 200):
            raise ApiError(ErrorCode.INVALID_BODY, "subAccountId must be text (≤ 200).")
        started = await context.instances.trigger_http(account, trigger_body, sub_account)
        return _json({"started": started, "resumed": []})
    raise ApiError(ErrorCode.INVALID_BODY, "kind must be sms, chat, dtmf or http.")


async def outbox(request: Request) -> Response:
    """The newest sandbox messages as chat bubbles' data (the page renders them as text)."""
    session = await session_of(request)
    rows = await context_of(request).sandbox.outbox(
        session.account_id, limit=OUTBOX_LIMIT, offset=0, channel=None, workflow_id=None
    )
    return _json([_bubble(row) for row in reversed(rows)])


def _bubble(row: MessageRow) -> dict[str, Any]:
    request = row.request or {}
    text = sent_text(row.channel, request)
    return {
        "id": row.id,
        "channel": row.channel,
        "to": row.recipient,
        "text": text if isinstance(text, str) else json.dumps(text),
        "status": row.status,
        "capture": row.channel == "voice" and is_capture_call(request),
        "clientRequestId": row.client_message_id,
        "workflowId": row.instance_id,
        "stepLogId": row.pointer_id,
        "at": iso_from_ms(row.created_at_ms),
    }


def _json(body: Any) -> Response:
    return Response(json.dumps(body), media_type="application/json")
