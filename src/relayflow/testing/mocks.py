"""The world a flow test talks to, scripted: the messaging provider's answers and HTTP mocks.

Sends that are accepted go through the real sandbox provider (its 8x8-like checks, its outbox,
its idempotency per step execution), so a flow test sees exactly what the sandbox would record.
No real network is ever used; a call that no HTTP mock matches is answered with an error the
step cannot retry, and recorded so the test fails naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from relayflow.channels.base import ChannelError, HttpResult, SendContext
from relayflow.channels.http import decode_body, outgoing
from relayflow.channels.sandbox import SandboxProvider

CHANNELS = ("sms", "chatapps", "voice")
ACCEPTED: dict[str, Any] = {"httpStatus": 200}


class MockError(ValueError):
    """A mock that cannot be used as written (the test file is invalid)."""


def _repeating(answers: list[Any], index: int) -> Any:
    """The index-th answer, the last one repeating."""
    return answers[min(index, len(answers) - 1)]


@dataclass
class HttpMock:
    """One entry of `mocks.http`: which calls it answers, and its answers in order."""

    respond: list[dict[str, Any]]
    method: str | None = None
    url: str | None = None
    url_prefix: str | None = None
    calls: int = 0

    def matches(self, method: str, url: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.url is not None:
            return url == self.url
        return self.url_prefix is not None and url.startswith(self.url_prefix)


def full_url(url: str, params: dict[str, str]) -> str:
    """The URL a call really requests: the step's `parameters` appended as the query string."""
    if not params:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(params)


@dataclass
class MockHttp:
    """`HttpRequester` for flow tests: answers from mocks, every call recorded in order."""

    mocks: list[HttpMock]
    calls: list[dict[str, Any]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        params: dict[str, str],
        json_body: Any,
        timeout_s: float,
    ) -> HttpResult:
        method = method.upper()
        requested = full_url(url, params)
        sent_headers, data = outgoing(method, headers, json_body)  # what production would send
        self.calls.append(
            {
                "method": method,
                "url": requested,
                "headers": sent_headers,
                "body": json_body if data is not None else None,
            }
        )
        mock = next((m for m in self.mocks if m.matches(method, requested)), None)
        if mock is None:
            self.unmatched.append(f"{method} {requested}")
            raise ChannelError(f"No HTTP mock matches {method} {requested}.")
        answer = _repeating(mock.respond, mock.calls)
        mock.calls += 1
        if answer.get("timeout"):
            raise ChannelError(
                f"Call failed. {requested} did not answer within {timeout_s:g} s.", transient=True
            )
        if answer.get("connectionError"):
            raise ChannelError(
                f"Call failed. Cannot connect to {requested} (mocked connection error).",
                transient=True,
                sent=False,
            )
        status = int(answer["status"])
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        if "json" in answer:
            body = answer["json"]
        else:  # as production decodes a body: JSON whatever its Content-Type, else text
            body = decode_body(str(answer.get("text") or "").encode())
        return HttpResult(status, reason, body)


class ScriptedProvider:
    """`MessagingProvider` whose answers per channel come from the test's mocks; the accepted
    sends are the sandbox's (outbox, 8x8-shaped answers)."""

    name = "sandbox"

    def __init__(self, sandbox: SandboxProvider, answers: dict[str, list[dict[str, Any]]]):
        self._sandbox = sandbox
        self._answers = answers
        self.sends = dict.fromkeys(CHANNELS, 0)

    def _next(self, channel: str) -> None:
        answers = self._answers.get(channel) or [ACCEPTED]
        answer = _repeating(answers, self.sends[channel])
        self.sends[channel] += 1
        if answer.get("timeout"):
            raise ChannelError("8x8 did not answer within 15 s.", transient=True)
        status = int(answer.get("httpStatus", 200))
        message = answer.get("message")
        if status == 429:
            raise ChannelError("rate limited by 8x8 (429)", transient=True)
        if status >= 500:
            raise ChannelError(message or f"HTTP {status}", transient=True)
        if status >= 400:
            raise ChannelError(message or f"HTTP {status}")

    async def send_sms(
        self, ctx: SendContext, sub_account_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        self._next("sms")
        return await self._sandbox.send_sms(ctx, sub_account_id, body)

    async def send_chat(
        self, ctx: SendContext, sub_account_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        self._next("chatapps")
        return await self._sandbox.send_chat(ctx, sub_account_id, body)

    async def send_voice(
        self, ctx: SendContext, sub_account_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        self._next("voice")
        return await self._sandbox.send_voice(ctx, sub_account_id, body)


@dataclass
class ScriptedProviders:
    """`ProviderResolver`: every account of the flow test sends through the scripted one."""

    provider: ScriptedProvider

    async def for_account(self, account_id: str) -> ScriptedProvider:
        return self.provider
