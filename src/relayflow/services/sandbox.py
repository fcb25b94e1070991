"""The sandbox provider's inbound side: simulated customers, turned into real 8x8 webhook
objects and routed exactly like webhooks from 8x8 (DESIGN.md §4.4)."""

from __future__ import annotations

from typing import Any

from relayflow.channels.sms_encoding import detect
from relayflow.clock import Clock, iso_from_ms
from relayflow.engine.router import Router, RouteResult
from relayflow.ids import new_uuid
from relayflow.services.admission import admitted
from relayflow.store import messages as message_store
from relayflow.store.database import Database
from relayflow.store.messages import MessageRow


def sent_text(channel: str, request: dict[str, Any]) -> Any:
    """What the customer reads or hears of a sent message (the body 8x8's API received): the
    SMS text, the chat `content.text`, or the first voice prompt."""
    if channel == "chatapps":
        content = request.get("content")
        return content.get("text") if isinstance(content, dict) else None
    if channel == "voice":
        for action in request.get("callflow") or []:
            params = action.get("params") if isinstance(action, dict) else None
            if isinstance(params, dict) and params.get("text") is not None:
                return params["text"]
        return None
    return request.get("text")


def is_capture_call(request: dict[str, Any]) -> bool:
    """A voice call that waits for keys (`say&capture`): what DTMF answers."""
    actions = request.get("callflow") or []
    return any(isinstance(a, dict) and a.get("action") == "say&capture" for a in actions)


def sms_event(
    umid: str, sender: str, recipient: str, text: str, sub_account_id: str | None, now_ms: int
) -> dict[str, Any]:
    """8x8's inbound SMS webhook object (spec §11.1)."""
    encoding, parts = detect(text)
    payload: dict[str, Any] = {"umid": umid}
    if sub_account_id:
        payload["subAccountId"] = sub_account_id
    payload.update(
        {
            "timestamp": iso_from_ms(now_ms),
            "source": sender,
            "destination": recipient,
            "body": text,
            "encoding": encoding,
            "smsCount": parts,
            "price": {"total": 0.0, "perSms": 0.0, "currency": "EUR"},
        }
    )
    return {
        "namespace": "SMS",
        "eventType": "inbound_message_received",
        "description": "SMS inbound message",
        "payload": payload,
    }


def chat_event(
    umid: str,
    channel: str,
    sender: str,
    text: str | None,
    button_payload: str | None,
    sub_account_id: str | None,
    now_ms: int,
) -> dict[str, Any]:
    """8x8's chat-apps inbound webhook object, v2 (spec §11.3); a quick-reply press carries
    the title in `content.text` and the payload in `content.payload`."""
    content: dict[str, Any] = {}
    if text is not None:
        content["text"] = text
    if button_payload is not None:
        content["payload"] = button_payload
    digits = sender.lstrip("+").replace(" ", "")
    payload: dict[str, Any] = {"umid": umid}
    if sub_account_id:
        payload["subAccountId"] = sub_account_id
    payload.update(
        {
            "timestamp": iso_from_ms(now_ms),
            "user": {"msisdn": sender, "channelUserId": digits},
            "recipient": {"channel": channel, "channelId": "sandbox"},
            "type": "Text",
            "content": content,
        }
    )
    return {
        "namespace": "ChatApps",
        "eventType": "inbound_message_received",
        "description": "ChatApps inbound message",
        "payload": payload,
    }


class SandboxService:
    def __init__(self, db: Database, clock: Clock, router: Router) -> None:
        self._db = db
        self._clock = clock
        self._router = router

    async def inbound_sms(
        self, account_id: str, sender: str, recipient: str, text: str, sub_account_id: str | None
    ) -> tuple[dict[str, Any], RouteResult]:
        umid = new_uuid()
        event = sms_event(umid, sender, recipient, text, sub_account_id, self._clock.now_ms())
        result = await admitted(
            self._router.inbound_message(account_id, event, trigger="inbound_sms", dedupe_key=umid)
        )
        return event, result

    async def inbound_chat(
        self,
        account_id: str,
        channel: str,
        sender: str,
        text: str | None,
        button_payload: str | None,
        sub_account_id: str | None,
    ) -> tuple[dict[str, Any], RouteResult]:
        umid = new_uuid()
        event = chat_event(
            umid, channel, sender, text, button_payload, sub_account_id, self._clock.now_ms()
        )
        result = await admitted(
            self._router.inbound_message(
                account_id, event, trigger="inbound_chat_apps", dedupe_key=umid
            )
        )
        return event, result

    async def dtmf(
        self, account_id: str, client_request_id: str | None, uid: str | None, digits: str
    ) -> tuple[dict[str, Any], RouteResult]:
        """The legacy DTMF callback (spec §11.7) for a say&capture call the sandbox placed."""
        call = await self._find_call(account_id, client_request_id, uid)
        response = (call.response or {}) if call else {}
        callback: dict[str, Any] = {
            "uid": uid or response.get("uid") or new_uuid().upper(),
            "status": {"code": "DTMF", "timestamp": iso_from_ms(self._clock.now_ms())},
            "destination": call.recipient if call else None,
            "clientRequestId": client_request_id or response.get("clientRequestId"),
            "actionDetails": {"dtmf": digits},
        }
        result = await self._router.dtmf(account_id, callback, dedupe_key=None)
        return callback, result

    async def _find_call(
        self, account_id: str, client_request_id: str | None, uid: str | None
    ) -> MessageRow | None:
        async with self._db.read() as conn:
            calls = await message_store.list_messages(
                conn, account_id, limit=200, offset=0, channel="voice"
            )
        for call in calls:
            response = call.response or {}
            if client_request_id and call.client_message_id == client_request_id:
                return call
            if uid and response.get("uid") == uid:
                return call
        return None

    async def outbox(
        self,
        account_id: str,
        *,
        limit: int,
        offset: int,
        channel: str | None,
        workflow_id: str | None,
    ) -> list[MessageRow]:
        async with self._db.read() as conn:
            return await message_store.list_messages(
                conn,
                account_id,
                limit=limit,
                offset=offset,
                channel=channel,
                instance_id=workflow_id,
            )
