"""The `mocks` object of a flow test, typed and checked: HTTP mocks and the provider's answers.

Each answer must be exactly one of the documented shapes, so a mock that could never answer as
its author meant (`{"status": 200}` without a body, `{"timeout": false}`) is reported before the
test runs rather than misbehaving inside it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from relayflow.testing.checks import Checker, describe
from relayflow.testing.matching import child_path

MOCK_KEYS = ("http", "sms", "chatapps", "voice")
HTTP_MOCK_KEYS = ("method", "url", "urlPrefix", "respond")
_METHOD = re.compile(r"^[A-Za-z]+$")
_MISSING = object()


@dataclass(frozen=True)
class JsonAnswer:
    status: int
    json: Any


@dataclass(frozen=True)
class TextAnswer:
    status: int
    text: str
    content_type: str | None = None


@dataclass(frozen=True)
class TimeoutAnswer:
    pass


@dataclass(frozen=True)
class ConnectionErrorAnswer:
    pass


HttpAnswer = JsonAnswer | TextAnswer | TimeoutAnswer | ConnectionErrorAnswer


@dataclass(frozen=True)
class HttpMockSpec:
    """Answers calls whose method (any case; None = any) and exact `url` or `urlPrefix` match."""

    respond: tuple[HttpAnswer, ...]
    method: str | None = None
    url: str | None = None
    url_prefix: str | None = None


@dataclass(frozen=True)
class ProviderAnswer:
    """A send's answer: 200 accepted, 4xx rejected (step fails), 5xx/429 or timeout retried."""

    http_status: int | None = None  # None: a timeout
    message: str | None = None

    @property
    def timeout(self) -> bool:
        return self.http_status is None


@dataclass(frozen=True)
class MockSpec:
    http: tuple[HttpMockSpec, ...] = ()
    sms: tuple[ProviderAnswer, ...] = ()
    chatapps: tuple[ProviderAnswer, ...] = ()
    voice: tuple[ProviderAnswer, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The file format's `mocks` object, as `testing.Mocks.from_json` reads it."""
        return {
            "http": [_http_mock_json(mock) for mock in self.http],
            **{
                channel: [_provider_json(answer) for answer in getattr(self, channel)]
                for channel in ("sms", "chatapps", "voice")
            },
        }


def check_mocks(value: Any, path: str, checker: Checker) -> MockSpec:
    if value is None:
        return MockSpec()
    obj = checker.object(value, path)
    if obj is None:
        return MockSpec()
    checker.only_keys(obj, path, MOCK_KEYS)
    http: list[HttpMockSpec] = []
    if obj.get("http") is not None:
        for index, item in enumerate(checker.array(obj["http"], child_path(path, "http")) or []):
            mock = _http_mock(item, f"{child_path(path, 'http')}[{index}]", checker)
            if mock is not None:
                http.append(mock)
    answers: dict[str, tuple[ProviderAnswer, ...]] = {}
    for channel in ("sms", "chatapps", "voice"):
        where = child_path(path, channel)
        items = checker.array(obj[channel], where) if obj.get(channel) is not None else []
        found = [
            _provider_answer(item, f"{where}[{i}]", checker) for i, item in enumerate(items or [])
        ]
        answers[channel] = tuple(answer for answer in found if answer is not None)
    return MockSpec(tuple(http), answers["sms"], answers["chatapps"], answers["voice"])


def _http_mock(value: Any, path: str, checker: Checker) -> HttpMockSpec | None:
    obj = checker.object(value, path)
    if obj is None:
        return None
    checker.only_keys(obj, path, HTTP_MOCK_KEYS)
    method = checker.string(obj, "method", path, required=False)
    if method is not None and not _METHOD.match(method):
        checker.add(child_path(path, "method"), f"{json.dumps(method)} is not an HTTP method")
    url = checker.string(obj, "url", path, required=False)
    prefix = checker.string(obj, "urlPrefix", path, required=False)
    if ("url" in obj) == ("urlPrefix" in obj):
        checker.add(
            path, "needs exactly one of 'url' (exact, query string included) or 'urlPrefix'"
        )
    where = child_path(path, "respond")
    if "respond" not in obj:
        checker.add(where, "is required: an array of answers")
        return None
    items = checker.array(obj["respond"], where)
    if items is None:
        return None
    if not items:
        checker.add(where, "must hold at least one answer (the last one repeats)")
    answers = [_http_answer(item, f"{where}[{i}]", checker) for i, item in enumerate(items)]
    if any(answer is None for answer in answers):
        return None
    return HttpMockSpec(tuple(a for a in answers if a is not None), method, url, prefix)


def _http_answer(value: Any, path: str, checker: Checker) -> HttpAnswer | None:
    obj = checker.object(value, path)
    if obj is None:
        return None
    if "timeout" in obj or "connectionError" in obj:
        flag = "timeout" if "timeout" in obj else "connectionError"
        checker.only_keys(obj, path, (flag,))
        checker.true(obj, flag, path)
        return TimeoutAnswer() if flag == "timeout" else ConnectionErrorAnswer()
    checker.only_keys(obj, path, ("status", "json", "text", "contentType"))
    status = _status(obj, "status", path, checker, low=100)
    body_json = obj.get("json", _MISSING)
    if ("json" in obj) == ("text" in obj):
        checker.add(
            path,
            'an answer is {"status", "json"}, {"status", "text", "contentType"?}, '
            '{"timeout": true} or {"connectionError": true}',
        )
        return None
    if "json" in obj and "contentType" in obj:
        checker.add(child_path(path, "contentType"), "goes with 'text' only")
    if body_json is not _MISSING:
        return JsonAnswer(status, body_json) if status is not None else None
    text = obj["text"]
    if not isinstance(text, str):
        checker.add(child_path(path, "text"), f"must be a string, not {describe(text)}")
        return None
    content_type = checker.string(obj, "contentType", path, required=False)
    return TextAnswer(status, text, content_type) if status is not None else None


def _provider_answer(value: Any, path: str, checker: Checker) -> ProviderAnswer | None:
    obj = checker.object(value, path)
    if obj is None:
        return None
    if "timeout" in obj:
        checker.only_keys(obj, path, ("timeout",))
        checker.true(obj, "timeout", path)
        return ProviderAnswer()
    checker.only_keys(obj, path, ("httpStatus", "message"))
    status = _status(obj, "httpStatus", path, checker, low=200)
    if status is None:
        return None
    if status != 200 and not 400 <= status <= 599:
        checker.add(
            child_path(path, "httpStatus"),
            f"{status} is not an answer; use 200 (accepted), 4xx (rejected) or 5xx/429 (retried)",
        )
        return None
    message = checker.string(obj, "message", path, required=False)
    if status == 200 and "message" in obj:
        checker.add(child_path(path, "message"), "an accepted send (200) has no message")
    return ProviderAnswer(status, message)


def _status(obj: dict[str, Any], key: str, path: str, checker: Checker, *, low: int) -> int | None:
    where = child_path(path, key)
    if key not in obj:
        checker.add(where, "is required")
        return None
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        checker.add(where, f"must be a whole number, not {describe(value)}")
        return None
    if not low <= int(value) <= 599:
        checker.add(where, f"{json.dumps(value)} is not an HTTP status ({low}-599)")
        return None
    return int(value)


def _http_mock_json(mock: HttpMockSpec) -> dict[str, Any]:
    return {
        "method": mock.method,
        "url": mock.url,
        "urlPrefix": mock.url_prefix,
        "respond": [_http_answer_json(answer) for answer in mock.respond],
    }


def _http_answer_json(answer: HttpAnswer) -> dict[str, Any]:
    if isinstance(answer, JsonAnswer):
        return {"status": answer.status, "json": answer.json}
    if isinstance(answer, TextAnswer):
        text: dict[str, Any] = {"status": answer.status, "text": answer.text}
        if answer.content_type is not None:
            text["contentType"] = answer.content_type
        return text
    if isinstance(answer, TimeoutAnswer):
        return {"timeout": True}
    return {"connectionError": True}


def _provider_json(answer: ProviderAnswer) -> dict[str, Any]:
    if answer.timeout:
        return {"timeout": True}
    shaped: dict[str, Any] = {"httpStatus": answer.http_status}
    if answer.message is not None:
        shaped["message"] = answer.message
    return shaped
