"""The built-in sandbox provider: 8x8 messaging simulated into a per-account outbox.

It checks requests the way 8x8 would (E.164 destination, subaccount id pattern, required
fields), answers with 8x8's response shapes, and records the exact request body 8x8 would have
received. Sends are idempotent per pointer: a step re-run after a crash gets the first answer
back instead of sending twice.
"""

from __future__ import annotations

import re
from typing import Any

from relayflow.channels.base import ChannelError, SendContext
from relayflow.channels.recorded import OutboundSend, RecordedSends
from relayflow.channels.sms_encoding import detect
from relayflow.clock import iso_from_ms
from relayflow.ids import new_uuid
from relayflow.store.database import Database

SUBACCOUNT_PATTERN = re.compile(r"^[A-Za-z0-9\-._&]{3,50}$")
MSISDN_PATTERN = re.compile(r"^\+?[1-9][0-9]{6,14}$")


def _check_subaccount(sub_account_id: str) -> None:
    if not SUBACCOUNT_PATTERN.match(sub_account_id):
        raise ChannelError("Invalid subaccount id.")


def _check_msisdn(number: Any) -> str:
    if not isinstance(number, str) or not MSISDN_PATTERN.match(number.replace(" ", "")):
        raise ChannelError("Invalid MSISDN format (not E.164 international number)")
    return number.replace(" ", "")


class SandboxProvider:
    name = "sandbox"

    def __init__(self, db: Database) -> None:
        # Request and answer in one transaction: nothing is called out, so nothing can happen
        # between them that a crash could lose.
        self._sends = RecordedSends(db, self.name)

    async def send_sms(
        self, ctx: SendContext, sub_account_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        _check_subaccount(sub_account_id)
        destination = _check_msisdn(body.get("destination"))
        text = body.get("text")
        if not isinstance(text, str) or not text:
            raise ChannelError("Text must not be empty.")
        encoding, parts = detect(text)
        if body.get("encoding") in ("GSM7", "UCS2"):
            encoding = body["encoding"]
        umid = new_uuid()
        response = {
            "umid": umid,
            "clientMessageId": body.get("clientMessageId"),
            "destination": destination.lstrip("+"),
            "encoding": encoding,
            "status": {
                "code": "QUEUED",
                "description": "SMS is accepted and queued for processing",
            },
            "smsCount": parts,
        }
        send = OutboundSend("sms", sub_account_id, destination, body)
        return await self._sends.answered(ctx, send, response, "delivered")

    async def send_chat(
        self, ctx: SendContext, sub_account_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        _check_subaccount(sub_account_id)
        user = body.get("user")
        if not isinstance(user, dict) or not user:
            raise ChannelError("Empty 'user'")
        if "msisdn" in user:
            _check_msisdn(user["msisdn"])
        elif not any(user.get(key) for key in ("channelUserId", "lineUserId")):
            raise ChannelError("Invalid 'user': set msisdn, channelUserId or lineUserId")
        if not isinstance(body.get("type"), str) or not body["type"]:
            raise ChannelError("Empty 'type'")
        if not isinstance(body.get("content"), dict) or not body["content"]:
            raise ChannelError("Empty 'content'")
        response = {
            "umid": new_uuid(),
            "user": user,
            "clientMessageId": body.get("clientMessageId"),
            "status": {"state": "queued", "timestamp": iso_from_ms(ctx.now_ms)},
        }
        recipient = str(user.get("msisdn") or user.get("channelUserId") or user.get("lineUserId"))
        send = OutboundSend("chatapps", sub_account_id, recipient, body)
        return await self._sends.answered(ctx, send, response, "delivered")

    async def send_voice(
        self, ctx: SendContext, sub_account_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        _check_subaccount(sub_account_id)
        callflow = body.get("callflow")
        if not isinstance(callflow, list) or not callflow or not isinstance(callflow[0], dict):
            raise ChannelError("Invalid callflow entry")
        params = callflow[0].get("params") or {}
        destination = _check_msisdn(params.get("destination"))
        session_id = new_uuid()
        response = {
            "uid": session_id,
            "sessionId": session_id,
            "sessionStatus": "CREATED",
            "callFlowRequestId": new_uuid(),
            "clientRequestId": body.get("clientRequestId"),
            "destination": destination,
            "status": "CREATED",
            "statusCode": 1,
            "statusMessage": "Created",
        }
        send = OutboundSend("voice", sub_account_id, destination, body)
        return await self._sends.answered(ctx, send, response, "created")
