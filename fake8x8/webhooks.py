"""The webhooks 8x8 posts (spec §11), built field for field, and their delivery over HTTP.

Builders are pure functions of explicit arguments so that tests can predict every field except
generated ids and timestamps. `deliver` posts like 8x8 does: JSON, and — only when asked —
8x8's retries on connection errors, timeouts and 4xx/5xx answers (8x8 uses 1, 10, 30, 90 s).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Any

import aiohttp
import phonenumbers

from fake8x8.shapes import iso_now, sms_encoding

Json = dict[str, Any]
SMS_STATES = ("queued", "rejected", "sent", "delivered", "undelivered", "read")
CHAT_STATES = (*SMS_STATES, "unknown", "failed", "ok", "error")
INBOUND_CHANNELS = ("sms", "whatsapp", "viber", "line", "RCS")
DEFAULT_DETAIL = {
    "delivered": "delivered_to_recipient",
    "undelivered": "rejected_by_operator",
    "rejected": "rejected_by_operator",
}
DEFAULT_ERROR = {
    "undelivered": (15, "Invalid destination"),
    "rejected": (15, "Invalid destination"),
}
SMS_PRICE, SMS_CURRENCY = 0.0125, "USD"


def envelope(namespace: str, event_type: str, description: str, payload: dict[str, Any]) -> Json:
    return {
        "namespace": namespace,
        "eventType": event_type,
        "description": description,
        "payload": payload,
    }


def plus(number: str) -> str:
    """A phone number in international form with '+' (what 8x8 puts in webhooks)."""
    return "+" + number.lstrip("+")


def bsuid(number: str) -> str:
    """A stable WhatsApp business-scoped user id (`CC.digits`) for a phone number."""
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(plus(number))) or "US"
    except phonenumbers.NumberParseException:
        region = "US"
    digest = int(hashlib.sha256(number.lstrip("+").encode()).hexdigest()[:15], 16)
    return f"{region}.{digest}"


def _status(state: str, detail: str | None, error: tuple[int, str] | None) -> dict[str, Any]:
    status: dict[str, Any] = {"state": state}
    detail = detail or DEFAULT_DETAIL.get(state)
    if detail:
        status["detail"] = detail
    status["timestamp"] = iso_now()
    error = error or DEFAULT_ERROR.get(state)
    if error:
        status["errorCode"], status["errorMessage"] = error
    return status


# ---------------------------------------------------------------------------------------------
# SMS (spec §11.1, §11.2)


def inbound_sms(source: str, destination: str, text: str, sub_account_id: str) -> Json:
    encoding, count = sms_encoding(text)
    payload = {
        "umid": str(uuid.uuid4()),
        "subAccountId": sub_account_id,
        "timestamp": iso_now(3),
        "source": plus(source),
        "destination": plus(destination),
        "body": text,
        "encoding": encoding,
        "smsCount": count,
        "price": _price(count),
    }
    return envelope("SMS", "inbound_message_received", "SMS inbound message", payload)


def _price(count: int) -> dict[str, Any]:
    return {"total": round(SMS_PRICE * count, 7), "perSms": SMS_PRICE, "currency": SMS_CURRENCY}


def sms_receipt(
    sent: dict[str, Any],
    answer: dict[str, Any],
    sub_account_id: str,
    state: str,
    detail: str | None = None,
    error: tuple[int, str] | None = None,
) -> Json:
    """The DR of an SMS the fake accepted: `sent` is its request body, `answer` its response."""
    payload: dict[str, Any] = {"umid": answer["umid"]}
    if sent.get("clientMessageId") is not None:
        payload["clientMessageId"] = sent["clientMessageId"]
    count = sms_encoding(sent["text"])[1]
    payload.update(
        subAccountId=sub_account_id,
        source=sent.get("source") or "8x8",
        destination=plus(sent["destination"]),
        status=_status(state, detail, error),
        price=_price(count),
        smsCount=count,
    )
    description = "SMS outbound message delivery receipt"
    return envelope("SMS", "outbound_message_status_changed", description, payload)


# ---------------------------------------------------------------------------------------------
# Chat Apps (spec §11.3, §11.4)


def channel_name(value: str) -> str:
    for name in INBOUND_CHANNELS:
        if name.lower() == value.lower():
            return name
    raise ValueError(f"channel must be one of {', '.join(INBOUND_CHANNELS)}")


def inbound_user(version: int, channel: str, sender: str, extra: dict[str, Any]) -> Json:
    """`payload.user` of an inbound chat message, v2 or v3 (spec §11.3)."""
    phone = channel != "line"
    user: dict[str, Any] = {}
    if version == 2:
        if phone:
            user["msisdn"] = plus(sender)
        user["channelUserId"] = sender.lstrip("+") if phone else sender
    else:
        if phone:
            user["msisdn"] = plus(sender)
        if channel == "whatsapp":
            user["channelUserId"] = extra.get("channelUserId") or bsuid(sender)
        elif channel == "line":
            user["channelUserId"] = sender
        if extra.get("username"):
            user["username"] = extra["username"]
    if extra.get("name"):
        user["name"] = extra["name"]
    return user


def inbound_chat(
    version: int,
    channel: str,
    sender: str,
    sub_account_id: str,
    content: dict[str, Any],
    extra: dict[str, Any],
) -> Json:
    """An inbound Chat Apps message; `extra` holds the optional builder fields."""
    kind = extra.get("type") or ("Interactive" if "interactive" in content else "Text")
    payload: dict[str, Any] = {
        "umid": str(uuid.uuid4()),
        "subAccountId": sub_account_id,
        "timestamp": iso_now(3),
        "user": inbound_user(version, channel, sender, extra),
        "recipient": {"channel": channel, "channelId": extra.get("channelId") or f"{channel}-1"},
        "type": kind,
        "content": content,
    }
    if extra.get("replyToUmid"):
        payload["replyToUmid"] = extra["replyToUmid"]
    body = envelope("ChatApps", "inbound_message_received", "ChatApps inbound message", payload)
    return {"version": 3, **body} if version == 3 else body


def receipt_user(version: int, sent_user: dict[str, Any]) -> dict[str, Any]:
    """`payload.user` of a chat DR: v8 carries msisdn + channelUserId, v9 v3-style ids."""
    msisdn = sent_user.get("msisdn")
    user: dict[str, Any] = {}
    if msisdn:
        user["msisdn"] = plus(msisdn)
    own_id = sent_user.get("channelUserId") or sent_user.get("lineUserId")
    if own_id:
        user["channelUserId"] = own_id
    elif version == 8 and msisdn:
        user["channelUserId"] = msisdn.lstrip("+")
    return user


def chat_receipt(
    version: int,
    sent: dict[str, Any],
    answer: dict[str, Any],
    sub_account_id: str,
    channel: str,
    state: str,
    detail: str | None = None,
    error: tuple[int, str] | None = None,
    whatsapp: dict[str, Any] | None = None,
) -> Json:
    """The DR of a chat message the fake accepted, v8 or v9 (spec §11.4)."""
    payload: dict[str, Any] = {"umid": answer["umid"]}
    if sent.get("clientMessageId") is not None:
        payload["clientMessageId"] = sent["clientMessageId"]
    payload.update(
        subAccountId=sub_account_id,
        channel=channel,
        user=receipt_user(version, sent.get("user") or {}),
        status=_status(state, detail, error),
    )
    if whatsapp:
        payload["whatsapp"] = whatsapp
    if (
        version == 9
        and channel == "whatsapp"
        and payload["status"].get("detail") == ("delivered_to_recipient")
    ):
        payload["outboundContent"] = {"type": sent.get("type"), "content": sent.get("content")}
    description = "ChatApps outbound message delivery receipt"
    body = envelope("ChatApps", "outbound_message_status_changed", description, payload)
    return {"version": 9, **body} if version == 9 else body


# ---------------------------------------------------------------------------------------------
# Voice (spec §11.7, §11.8)


def dtmf_callback(uid: str, destination: str, client_request_id: str | None, digits: str) -> Json:
    """The legacy DTMF callback POSTed to a `say&capture` action's `dtmfCallbackUrl`."""
    body: dict[str, Any] = {
        "uid": uid,
        "status": {"code": "DTMF", "timestamp": iso_now(3)},
        "destination": plus(destination),
    }
    if client_request_id is not None:
        body["clientRequestId"] = client_request_id
    body["actionDetails"] = {"dtmf": digits}
    return body


def call_action(call: dict[str, Any], digits: str | None, extra: dict[str, Any]) -> Json:
    """A VCA `CALL_ACTION` event; `call` holds sessionId, subAccountId, source, destination."""
    payload = {
        "eventId": extra.get("eventId") or str(uuid.uuid4()),
        "callId": extra.get("callId") or str(uuid.uuid4()),
        "sessionId": call["sessionId"],
        "subAccountId": call["subAccountId"],
        "callStatus": extra.get("callStatus") or "ACTION_COMPLETED",
        "callDirection": "OUTBOUND",
        "callType": "PSTN",
        "source": plus(call["source"]),
        "destination": plus(call["destination"]),
        "sourceFormat": "MSISDN",
        "destinationFormat": "MSISDN",
        "sourceCountryCode": _region(call["source"]),
        "destinationCountryCode": _region(call["destination"]),
        "sourceRefId": extra.get("sourceRefId"),
        "destinationRefId": extra.get("destinationRefId"),
        "callDuration": extra.get("callDuration", 0),
        "eventData": {"dtmf": digits},
        "sipCode": 200,
        "timestamp": iso_now(3),
        "clientActionId": extra.get("clientActionId"),
    }
    return envelope("VOICE", "CALL_ACTION", "Action request of a call", payload)


def session_summary(call: dict[str, Any], status: str, extra: dict[str, Any]) -> Json:
    """A VSS `SESSION_SUMMARY` event (spec §11.8) for a session the fake created."""
    payload: dict[str, Any] = {
        "sessionId": call["sessionId"],
        "subAccountId": call["subAccountId"],
        "sessionStatus": status,
        "startTime": extra.get("startTime") or iso_now(3),
        "endTime": extra.get("endTime") or iso_now(3),
        "lastAction": extra.get("lastAction") or "hangup",
        "callCount": 1,
        "errorDetails": extra.get("errorDetails"),
        "details": {
            "callA": {
                "callId": str(uuid.uuid4()),
                "source": plus(call["source"]),
                "destination": plus(call["destination"]),
                "callDuration": extra.get("callDuration", 0),
            }
        },
    }
    return envelope("VOICE", "SESSION_SUMMARY", "Session summary of a call", payload)


def _region(number: str) -> str | None:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(plus(number)))
    except phonenumbers.NumberParseException:
        return None


# ---------------------------------------------------------------------------------------------
# Delivery


async def deliver(
    session: aiohttp.ClientSession,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
    retries: list[float] | None = None,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """POST `body` to `url`; with `retries` (seconds between attempts) retry like 8x8 does.

    Returns `{status, body, url, response, attempts}`; `status` is the last answer's HTTP status,
    or None when no answer came (connection error or timeout).
    """
    attempts: list[dict[str, Any]] = []
    waits = [0.0, *(retries or [])]
    result: dict[str, Any] = {"status": None, "response": None}
    for wait in waits:
        await asyncio.sleep(wait)
        result = await _post(session, url, body, headers or {}, timeout)
        attempts.append({"status": result["status"], "error": result.get("error")})
        if result["status"] is not None and result["status"] < 400:
            break
    return {
        "status": result["status"],
        "body": body,
        "url": url,
        **_rest(result),
        "attempts": attempts,
    }


def _rest(result: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in result.items() if key != "status"}


async def _post(
    session: aiohttp.ClientSession,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    timeout: float,
) -> dict[str, Any]:
    all_headers = {"Content-Type": "application/json", "User-Agent": "fake8x8-webhooks", **headers}
    try:
        async with session.post(
            url,
            data=json.dumps(body),
            headers=all_headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            text = await response.text()
            return {"status": response.status, "response": _maybe_json(text)}
    except (aiohttp.ClientError, TimeoutError) as exc:
        return {"status": None, "response": None, "error": f"{type(exc).__name__}: {exc}"}


def _maybe_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
