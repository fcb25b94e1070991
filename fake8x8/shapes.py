"""What 8x8's SMS and Chat Apps APIs accept and answer (spec §10.1, §10.2, §12; 8x8's OpenAPI).

The fake is an oracle for relayflow's connectors, so it is deliberately strict where 8x8
documents a rule (patterns, lengths, required fields, enums) and exact-case on property names
(8x8 itself may be laxer). Each rule raises `Invalid` with 8x8's error code; `answer_sms` and
`answer_chat` turn a body into the `Answer` 8x8 would give.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import gsm0338  # noqa: F401 - registers the 'gsm03.38' codec

SUBACCOUNT = re.compile(r"^[A-Za-z0-9\-._&]{3,50}$")
MSISDN = re.compile(r"^\+{0,1}[1-9]{1}[0-9]{6,14}$")
BSUID = re.compile(r"^[A-Z]{2}\.[A-Za-z0-9]+$")
NATIONAL = re.compile(r"^\+?[0-9]{4,15}$")  # a chat `msisdn` given with `country`

# 8x8 platform error codes (spec §12) and the messages 8x8 documents for them.
INVALID_PARAMETER = 1000
ILLEGAL_SUBACCOUNT = 1001
INVALID_MSISDN = 1002
UNAUTHORIZED = 1200
NOT_FOUND = 1300
INTERNAL_ERROR = 2000
MISSED_USER = 3001
MSISDN_MESSAGE = "Invalid MSISDN format (not E.164 international number)"
UNAUTHORIZED_MESSAGE = "Request was not authenticated properly"  # 8x8's OpenAPI example text
FOREIGN_SUBACCOUNT_MESSAGE = "Provided subAccountId doesn't belongs to your account"

SMS_ENCODINGS = ("AUTO", "GSM7", "UCS2")
CHAT_TYPES = (
    "text",
    "audio",
    "video",
    "image",
    "location",
    "file",
    "interactive",
    "template",
    "carousel",
    "richCard",
)
CHAT_CHANNELS = (
    "SMS",
    "WhatsApp",
    "Facebook",
    "RCS",
    "Viber",
    "Line",
    "WeChat",
    "Zalo",
    "Instagram",
)
SUCCESS_STATUSES = ("Accepted", "Sent", "Delivered", "Read")


class Invalid(Exception):
    """A request 8x8 would refuse: `code` and `message` go into 8x8's error body."""

    def __init__(self, code: int, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Answer:
    """An HTTP answer of the fake: status, JSON body and extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def iso_now(digits: int = 2) -> str:
    """UTC now as 8x8 writes it: `yyyy-MM-ddTHH:mm:ss.ffZ` (2 digits; webhooks use 3)."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}"[:digits] + "Z"


def error_body(code: int, message: str) -> dict[str, Any]:
    """8x8's error body (spec §2): all four fields, `errorId` a UUID."""
    return {"code": code, "message": message, "errorId": str(uuid.uuid4()), "timestamp": iso_now()}


def error_answer(error: Invalid) -> Answer:
    return Answer(error.status, error_body(error.code, error.message))


def sms_encoding(text: str) -> tuple[str, int]:
    """(encoding, SMS parts) as 8x8 detects them for `encoding: AUTO`."""
    try:
        units, single, part, encoding = len(text.encode("gsm03.38")), 160, 153, "GSM7"
    except UnicodeEncodeError:
        units, single, part, encoding = len(text.encode("utf-16-le")) // 2, 70, 67, "UCS2"
    return encoding, 1 if units <= single else -(-units // part)


# ---------------------------------------------------------------------------------------------
# Field rules shared by SMS and Chat Apps


def check_subaccount(sub_account_id: str) -> None:
    if not SUBACCOUNT.match(sub_account_id):
        raise Invalid(ILLEGAL_SUBACCOUNT, "Illegal SubAccountId")


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The request body as an object; anything else is 8x8's invalid-parameter error."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Invalid(INVALID_PARAMETER, f"Invalid request body: malformed JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise Invalid(INVALID_PARAMETER, "Invalid request body: a JSON object is expected")
    return body


def _invalid(name: str, problem: str) -> Invalid:
    return Invalid(INVALID_PARAMETER, f"Invalid parameter '{name}': {problem}.")


def optional_str(body: dict[str, Any], name: str, max_length: int | None = None) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(name, "must be a string")
    if max_length is not None and len(value) > max_length:
        raise _invalid(name, f"must be at most {max_length} characters")
    return value


def required_str(body: dict[str, Any], name: str, max_length: int | None = None) -> str:
    value = optional_str(body, name, max_length)
    if not value:
        raise _invalid(name, "is required")
    return value


def optional_enum(body: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str | None:
    """An enum value, matched case-insensitively like 8x8's .NET binder; returns the canonical."""
    value = optional_str(body, name)
    if value is None:
        return None
    for option in allowed:
        if option.lower() == value.lower():
            return option
    raise _invalid(name, "must be one of " + ", ".join(allowed))


def optional_datetime(body: dict[str, Any], name: str) -> None:
    value = optional_str(body, name)
    if value is None:
        return
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _invalid(name, "must be an ISO 8601 date-time") from exc


def is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def optional_url(body: dict[str, Any], name: str) -> str | None:
    value = optional_str(body, name)
    if value is not None and not is_http_url(value):
        raise _invalid(name, "must be an absolute http(s) URI")
    return value


def check_msisdn(value: Any) -> str:
    if not isinstance(value, str) or not MSISDN.match(value):
        raise Invalid(INVALID_MSISDN, MSISDN_MESSAGE)
    return value


# ---------------------------------------------------------------------------------------------
# SMS: POST /api/v1/subaccounts/{subAccountId}/messages on the SMS host


def answer_sms(body: dict[str, Any]) -> Answer:
    """8x8's `SmsResponse` for an `SmsRequest`, or the error 8x8 would answer."""
    try:
        if body.get("destination") is None:
            raise _invalid("destination", "is required")
        destination = check_msisdn(body["destination"])
        text = body.get("text")
        if not isinstance(text, str) or not text:
            raise _invalid("text", "is required" if text in (None, "") else "must be a string")
        optional_str(body, "country", 2)
        optional_str(body, "source", 16)
        client_message_id = optional_str(body, "clientMessageId", 350)
        requested = optional_enum(body, "encoding", SMS_ENCODINGS) or "AUTO"
        optional_datetime(body, "scheduled")
        optional_datetime(body, "expiry")
        optional_url(body, "dlrCallbackUrl")
        optional_str(body, "clientIp")
        optional_enum(body, "track", ("None", "Outcome"))
    except Invalid as error:
        return error_answer(error)
    answer: dict[str, Any] = {"umid": str(uuid.uuid4())}
    if client_message_id is not None:
        answer["clientMessageId"] = client_message_id
    answer["destination"] = destination.lstrip("+")
    answer["encoding"] = sms_encoding(text)[0] if requested == "AUTO" else requested
    answer["status"] = {
        "code": "QUEUED",
        "description": "SMS is accepted and queued for processing",
    }
    return Answer(200, answer)


# ---------------------------------------------------------------------------------------------
# Chat Apps: POST /api/v1/subaccounts/{subAccountId}/messages on the Chat Apps host


def _check_user(user: Any) -> dict[str, Any]:
    if not isinstance(user, dict) or not any(
        user.get(key) for key in ("msisdn", "channelUserId", "lineUserId")
    ):
        raise Invalid(
            MISSED_USER, "Missed user: 'user' needs 'msisdn', 'channelUserId' or 'lineUserId'."
        )
    for key in ("msisdn", "channelUserId", "lineUserId"):
        optional_str(user, key)
    optional_str(user, "country", 2)
    if user.get("msisdn"):
        if not user.get("country"):
            check_msisdn(user["msisdn"])
        elif not NATIONAL.match(user["msisdn"]):  # a national number needs `country`
            raise Invalid(INVALID_MSISDN, MSISDN_MESSAGE)
    elif user.get("channelUserId") and not BSUID.match(user["channelUserId"]):
        raise _invalid("user.channelUserId", "must be a WhatsApp BSUID like 'US.1349120865'")
    return user


def _check_content(kind: str, content: Any) -> None:
    """The `type` ↔ `content` rules of 8x8's Send-Message description."""
    if not isinstance(content, dict) or not content:
        raise _invalid("content", "is required")
    optional_str(content, "text", 35000)
    optional_str(content, "fallbackText")
    if kind == "text":
        required_str(content, "text", 35000)
    elif kind in ("image", "audio", "video", "file"):
        url = required_str(content, "url")
        if not is_http_url(url):
            raise _invalid("content.url", "must be an absolute http(s) URI")
    elif kind == "location":
        location = content.get("location")
        if not isinstance(location, dict) or not all(
            isinstance(location.get(key), int | float) for key in ("latitude", "longitude")
        ):
            raise _invalid("content.location", "needs numeric 'latitude' and 'longitude'")
    elif kind == "template":
        template = content.get("template")
        if not isinstance(template, dict):
            raise _invalid("content.template", "is required for type 'template'")
        required_str(template, "name")
        required_str(template, "language")
    elif not isinstance(content.get(kind), dict | list):
        raise _invalid(f"content.{kind}", f"is required for type '{kind}'")


def _check_channels(channels: Any) -> None:
    if channels is None:
        return
    if not isinstance(channels, list):
        raise _invalid("channels", "must be an array")
    for item in channels:
        if not isinstance(item, dict) or item.get("channel") is None:
            raise _invalid("channels.channel", "is required")
        optional_enum(item, "channel", CHAT_CHANNELS)
        optional_enum(item, "successStatus", SUCCESS_STATUSES)
        after = item.get("fallbackAfter")
        if after is not None and (not isinstance(after, int) or not 10 <= after <= 86400):
            raise _invalid("channels.fallbackAfter", "must be an integer from 10 to 86400")


def answer_chat(body: dict[str, Any]) -> Answer:
    """8x8's single-message response for a Chat Apps send, or the error 8x8 would answer."""
    try:
        user = _check_user(body.get("user"))
        if body.get("type") is None:
            raise _invalid("type", "is required")
        kind = optional_enum(body, "type", CHAT_TYPES)
        assert kind is not None
        _check_content(kind, body.get("content"))
        client_message_id = optional_str(body, "clientMessageId", 50)
        optional_datetime(body, "scheduled")
        optional_datetime(body, "expiry")
        optional_url(body, "dlrCallbackUrl")
        _check_channels(body.get("channels"))
        context = body.get("context")
        if context is not None and (not isinstance(context, dict) or not context.get("umid")):
            raise _invalid("context.umid", "is required")
    except Invalid as error:
        return error_answer(error)
    answer: dict[str, Any] = {"umid": str(uuid.uuid4()), "user": user}
    if client_message_id is not None:
        answer["clientMessageId"] = client_message_id
    answer["status"] = {"state": "queued", "timestamp": iso_now()}
    return Answer(200, answer)
