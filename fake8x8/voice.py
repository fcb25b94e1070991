"""What 8x8's Voice callflows API accepts and answers (spec §10.3, 8x8's `voice_v1_api.json`).

Two request forms reach `POST /api/v1/subaccounts/{subAccountId}/callflows`:

- legacy (v1.1/v1.2, what relayflow's VoiceMessage step sends): `{clientRequestId?, callflow:
  [{action: say | say&capture | playFile, params: {source, destination, ...}}]}` — one action
  that carries the numbers;
- current: `{validUntil?, callflow: [{action: makeCall, ...}, say | sayAndCapture | playFile |
  hangup, ...]}` — `makeCall` first, at most two.

A callflow without any `makeCall` is read as the legacy form. Voice errors do not use the
platform error body: they are `{sessionStatus: NOT_CREATED, callFlowRequestId, statusCode,
statusMessage}` with 8x8's negative status codes.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Any

from fake8x8.shapes import MSISDN, Answer, is_http_url

LEGACY_ACTIONS = ("say", "say&capture", "playFile")
CURRENT_ACTIONS = ("makeCall", "say", "sayAndCapture", "playFile", "hangup")
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")
VOICE_PROFILE = re.compile(r"^[a-z]{2,3}-[A-Z]{2}-[A-Za-z0-9-]+$")

INVALID_JSON = -1001
INVALID_SPEECH = -1002
MAX_DIGITS_WITH_MIN = -1003
OVERALL_WITH_DIGIT_TIMEOUT = -1005
INVALID_ACTION = -1007
MAX_DIGITS_WITHOUT_HASH = -1008
INVALID_ENTRY = -1009
INVALID_CALLFLOW = -1013


class VoiceInvalid(Exception):
    """A callflow 8x8 would refuse, with its voice `statusCode` and HTTP status."""

    def __init__(self, status_code: int, message: str, http_status: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.http_status = http_status


def voice_error(http_status: int, status_code: int, message: str) -> Answer:
    body = {
        "sessionStatus": "NOT_CREATED",
        "callFlowRequestId": str(uuid.uuid4()),
        "statusCode": status_code,
        "statusMessage": message,
    }
    return Answer(http_status, body)


def answer_voice(raw: bytes) -> Answer:
    """8x8's callflow response for a request body, or the voice error 8x8 would answer."""
    try:
        body, callflow = _parse(raw)
        legacy = not any(entry["action"] == "makeCall" for entry in callflow)
        if legacy:
            _check_legacy(body, callflow)
        else:
            _check_current(callflow)
        valid_until = body.get("validUntil")
        if valid_until is not None:
            _check_datetime("$.validUntil", valid_until)
    except VoiceInvalid as error:
        return voice_error(error.http_status, error.status_code, error.message)
    session_id = str(uuid.uuid4())
    answer: dict[str, Any] = {
        "sessionId": session_id,
        "sessionStatus": "CREATED",
        "callFlowRequestId": str(uuid.uuid4()),
        "statusCode": 1,
        "statusMessage": "Created",
    }
    if valid_until is not None:
        answer["validUntil"] = valid_until
    if legacy:
        answer["uid"] = session_id
        if body.get("clientRequestId") is not None:
            answer["clientRequestId"] = body["clientRequestId"]
    return Answer(200, answer)


def _parse(raw: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise VoiceInvalid(INVALID_JSON, "Invalid JSON") from exc
    if not isinstance(body, dict):
        raise VoiceInvalid(INVALID_JSON, "Invalid JSON: an object is expected")
    callflow = body.get("callflow")
    if not isinstance(callflow, list) or not callflow:
        raise VoiceInvalid(INVALID_ENTRY, "$.callflow must be a non-empty array")
    for index, entry in enumerate(callflow):
        if not isinstance(entry, dict) or not isinstance(entry.get("action"), str):
            raise VoiceInvalid(INVALID_ENTRY, f"$.callflow[{index}] is not a valid callflow entry")
    client_request_id = body.get("clientRequestId")
    if client_request_id is not None and not isinstance(client_request_id, str):
        raise VoiceInvalid(INVALID_ENTRY, "$.clientRequestId must be a string")
    return body, callflow


def _params(entry: dict[str, Any], where: str) -> dict[str, Any]:
    params = entry.get("params")
    if not isinstance(params, dict):
        raise VoiceInvalid(INVALID_ENTRY, f"{where}.params must be an object")
    return params


def _check_legacy(body: dict[str, Any], callflow: list[dict[str, Any]]) -> None:
    if len(callflow) != 1:
        raise VoiceInvalid(INVALID_ENTRY, "$.callflow: the legacy form takes exactly one action")
    action = callflow[0]["action"]
    if action not in LEGACY_ACTIONS:
        allowed = ",".join(LEGACY_ACTIONS)
        raise VoiceInvalid(INVALID_ACTION, f"$.callflow[0].action should be one of: {allowed}")
    where = "$.callflow[0]"
    params = _params(callflow[0], where)
    _check_numbers(params, where)
    if action == "playFile":
        _check_play_file(params, where)
        return
    _check_speech(params, where, "text")
    if action == "say&capture":
        _check_capture(params, where, legacy=True)
        url = params.get("dtmfCallbackUrl")
        if url is not None and (not isinstance(url, str) or not is_http_url(url)):
            raise VoiceInvalid(INVALID_ENTRY, f"{where}.params.dtmfCallbackUrl must be http(s)")


def _check_current(callflow: list[dict[str, Any]]) -> None:
    if callflow[0]["action"] != "makeCall":
        message = "Invalid Callflow : First action should be a MakeCall action"
        raise VoiceInvalid(INVALID_CALLFLOW, message, 422)
    if sum(entry["action"] == "makeCall" for entry in callflow) > 2:
        message = "Invalid Callflow : At most 2 MakeCall actions are allowed"
        raise VoiceInvalid(INVALID_CALLFLOW, message, 422)
    for index, entry in enumerate(callflow):
        where = f"$.callflow[{index}]"
        action = entry["action"]
        if action not in CURRENT_ACTIONS:
            allowed = ",".join(CURRENT_ACTIONS)
            raise VoiceInvalid(INVALID_ACTION, f"{where}.action should be one of: {allowed}")
        if action == "hangup":
            continue
        params = _params(entry, where)
        if action == "makeCall":
            _check_numbers(params, where)
            if set(params) - {"source", "destination"}:
                raise VoiceInvalid(INVALID_ENTRY, f"{where}.params: only source and destination")
        elif action == "say":
            _check_speech(params, where, "text")
        elif action == "sayAndCapture":
            _check_speech(params, where, "promptMessage")
            _check_capture(params, where, legacy=False)
        else:
            _check_play_file(params, where)


def _check_numbers(params: dict[str, Any], where: str) -> None:
    source = params.get("source")
    if not isinstance(source, str) or not source:
        raise VoiceInvalid(INVALID_ENTRY, f"{where}.params.source is required")
    destination = params.get("destination")
    if not isinstance(destination, str) or not MSISDN.match(destination):
        message = f"{where}.params.destination must be an E.164 phone number"
        raise VoiceInvalid(INVALID_ENTRY, message)


def _check_speech(params: dict[str, Any], where: str, text_field: str) -> None:
    text = params.get(text_field)
    if not isinstance(text, str) or not text or len(text) > 3000:
        message = f"{where}.params.{text_field} is required (at most 3000 characters)"
        raise VoiceInvalid(INVALID_ENTRY, message)
    language, profile = params.get("language"), params.get("voiceProfile")
    if language is None and profile is None:
        raise VoiceInvalid(INVALID_SPEECH, "Speech profile or language parameter invalid")
    if language is not None and (not isinstance(language, str) or not LANGUAGE.match(language)):
        raise VoiceInvalid(INVALID_SPEECH, "Speech profile or language parameter invalid")
    if profile is not None and (not isinstance(profile, str) or not VOICE_PROFILE.match(profile)):
        raise VoiceInvalid(INVALID_SPEECH, "Speech profile or language parameter invalid")
    _check_repetition(params, where)
    speed = params.get("speed")
    valid_speed = isinstance(speed, int | float) and not isinstance(speed, bool)
    if speed is not None and not (valid_speed and 0.5 <= speed <= 2):
        raise VoiceInvalid(INVALID_ENTRY, f"{where}.params.speed must be from 0.5 to 2")


def _check_repetition(params: dict[str, Any], where: str) -> None:
    repetition = params.get("repetition")
    if repetition is not None and (not _is_int(repetition) or not 1 <= repetition <= 3):
        raise VoiceInvalid(INVALID_ENTRY, f"{where}.params.repetition must be 1, 2 or 3")


def _check_play_file(params: dict[str, Any], where: str) -> None:
    url = params.get("fileUrl")
    if not isinstance(url, str) or not is_http_url(url):
        raise VoiceInvalid(INVALID_ENTRY, f"{where}.params.fileUrl must be an http(s) URL")
    _check_repetition(params, where)


def _check_capture(params: dict[str, Any], where: str, legacy: bool) -> None:
    """DTMF capture rules; `legacy` adds the v1.2 "needed with" rules (-1003, -1005)."""
    for name in ("minDigits", "maxDigits", "digitTimeout", "overallTimeout", "noOfTries"):
        value = params.get(name)
        if value is not None and (not _is_int(value) or value < 1):
            raise VoiceInvalid(INVALID_ENTRY, f"{where}.params.{name} must be an integer >= 1")
    on_hash = params.get("completeOnHash")
    if on_hash is not None and not isinstance(on_hash, bool):
        raise VoiceInvalid(INVALID_ENTRY, f"{where}.params.completeOnHash must be a boolean")
    has_max = params.get("maxDigits") is not None
    if legacy and params.get("minDigits") is not None and not has_max:
        raise VoiceInvalid(MAX_DIGITS_WITH_MIN, "maxDigits is needed when minDigits is set")
    if legacy and params.get("digitTimeout") is not None and params.get("overallTimeout") is None:
        message = "overallTimeout is needed when digitTimeout is set"
        raise VoiceInvalid(OVERALL_WITH_DIGIT_TIMEOUT, message)
    if on_hash is False and not has_max:
        message = "maxDigits is needed when completeOnHash is false"
        raise VoiceInvalid(MAX_DIGITS_WITHOUT_HASH, message)
    low, high = params.get("minDigits") or 1, params.get("maxDigits") or 1
    if low > high:
        raise VoiceInvalid(INVALID_ENTRY, f"{where}.params.minDigits must not exceed maxDigits")


def _check_datetime(where: str, value: Any) -> None:
    try:
        datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise VoiceInvalid(INVALID_ENTRY, f"{where} must be an ISO 8601 date-time") from exc


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
