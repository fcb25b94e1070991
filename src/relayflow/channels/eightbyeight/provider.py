"""Outbound connector to 8x8's SMS, Chat Apps and Voice APIs (spec §10).

Every send is recorded before the call (a `messages` row in state `sending`) and its answer
after it, so a step re-run after a crash returns the recorded answer instead of sending again;
only a crash *during* the call can repeat it, and then with the same `clientMessageId`.
Transient failures (connection errors, timeouts, 429 with Retry-After, 5xx) are reported as
such for the engine to retry; 8x8's 4xx answers fault the step with 8x8's own message. Each API
host and channel has a circuit breaker (channels/breaker.py): while 8x8 is down, sends are
deferred without being recorded or attempted, and one request at a time probes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import orjson

from relayflow.channels.base import ChannelError, SendContext, retry_after_seconds
from relayflow.channels.breaker import Breakers
from relayflow.channels.eightbyeight.regions import Hosts
from relayflow.channels.recorded import OutboundSend, RecordedSends
from relayflow.store.database import Database
from relayflow.store.messages import FAILED, Attempt

REQUEST_TIMEOUT_S = 15.0
MAX_ERROR_TEXT = 300
CHANNEL_NAMES = {"sms": "SMS", "chatapps": "Chat Apps", "voice": "Voice"}


@dataclass(frozen=True)
class EightByEightConfig:
    api_key: str
    hosts: Hosts
    # Where 8x8 should post DTMF for say&capture calls whose params name no dtmfCallbackUrl.
    dtmf_callback_url: str | None


def _subaccount_path(sub_account_id: str) -> str:
    return f"/api/v1/subaccounts/{quote(sub_account_id, safe='')}"


def _error_message(status: int, raw: bytes) -> str:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        message: str = body["message"]
        if isinstance(body.get("errorId"), str):
            message += f". Error id: {body['errorId']}"
        return message
    text = raw.decode("utf-8", errors="replace").strip()[:MAX_ERROR_TEXT]
    return f"HTTP {status}{': ' + text if text else ''}"


class EightByEightProvider:
    name = "8x8"

    def __init__(
        self,
        config: EightByEightConfig,
        session: aiohttp.ClientSession,
        db: Database,
        breakers: Breakers,
    ) -> None:
        self._config = config
        self._session = session
        self._sends = RecordedSends(db, self.name)
        self._breakers = breakers

    async def send_sms(
        self, ctx: SendContext, sub_account_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        url = (
            f"{self._config.hosts.sms}/api/v1/subaccounts/{quote(sub_account_id, safe='')}/messages"
        )
        recipient = body.get("destination")
        return await self._send(ctx, "sms", url, sub_account_id, recipient, body)

    async def send_chat(
        self, ctx: SendContext, sub_account_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        url = f"{self._config.hosts.chatapps}{_subaccount_path(sub_account_id)}/messages"
        user = body.get("user")
        recipient = (
            user.get("msisdn") or user.get("channelUserId") or user.get("lineUserId")
            if isinstance(user, dict)
            else None
        )
        return await self._send(ctx, "chatapps", url, sub_account_id, recipient, body)

    async def send_voice(
        self, ctx: SendContext, sub_account_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        url = f"{self._config.hosts.voice}{_subaccount_path(sub_account_id)}/callflows"
        actions = body.get("callflow") or []
        for action in actions:
            params = action.get("params") if isinstance(action, dict) else None
            if (
                action.get("action") == "say&capture"
                and isinstance(params, dict)
                and not params.get("dtmfCallbackUrl")
            ):
                if not self._config.dtmf_callback_url:
                    raise ChannelError(
                        "say&capture needs a dtmfCallbackUrl: set RELAYFLOW_PUBLIC_URL so 8x8 can "
                        "reach this service, or give params.dtmfCallbackUrl."
                    )
                params["dtmfCallbackUrl"] = self._config.dtmf_callback_url
        first = actions[0].get("params", {}) if actions and isinstance(actions[0], dict) else {}
        recipient = first.get("destination") if isinstance(first, dict) else None
        return await self._send(ctx, "voice", url, sub_account_id, recipient, body)

    async def _send(
        self,
        ctx: SendContext,
        channel: str,
        url: str,
        sub_account_id: str,
        recipient: Any,
        body: dict[str, Any],
    ) -> dict[str, Any]:
        parts = urlsplit(url)
        endpoint = f"8x8 {CHANNEL_NAMES[channel]} API ({parts.scheme}://{parts.netloc})"
        async with self._breakers.guard(endpoint) as call:  # CircuitOpen: deferred, unrecorded
            send = OutboundSend(channel, sub_account_id, recipient, body)
            attempt = await self._sends.attempt(ctx, send)
            if attempt.answer is not None:
                call.not_made()
                return attempt.answer  # answered before a crash: do not send again
            status, raw, retry_after = await self._post(url, body)
            if status == 429 or status >= 500:
                call.failed(f"8x8 answered {status}", retry_after)
        # The breaker hears how 8x8 answered as soon as it did: recording the answer (a write
        # that may wait) must not let later failures overtake this success.
        try:
            return await self._answered(attempt, status, raw, retry_after)
        except ChannelError as error:
            if call.failure is not None:  # as a failure raised inside the guard would carry
                error.resume_before_s = self._breakers.resume_before_s(endpoint)
            raise

    async def _post(self, url: str, body: dict[str, Any]) -> tuple[int, bytes, float | None]:
        try:
            async with self._session.post(
                url,
                data=orjson.dumps(body),
                headers={
                    "Authorization": f"Bearer {self._config.api_key}",
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                },
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
                allow_redirects=False,
            ) as response:
                raw = await response.read()
                return (
                    response.status,
                    raw,
                    retry_after_seconds(response.headers.get("Retry-After")),
                )
        except TimeoutError:
            raise ChannelError(
                f"8x8 did not answer within {REQUEST_TIMEOUT_S:g} s.", transient=True
            ) from None
        except aiohttp.ClientConnectorError as error:
            raise ChannelError(f"Call failed. {error}", transient=True, sent=False) from None
        except aiohttp.ClientError as error:
            raise ChannelError(
                f"Call failed. {error or type(error).__name__}", transient=True
            ) from None

    async def _answered(
        self, attempt: Attempt, status: int, raw: bytes, retry_after: float | None
    ) -> dict[str, Any]:
        """8x8's answer as the step's result, or the error it means (transient: retried)."""
        if status == 429:
            raise ChannelError(
                "rate limited by 8x8 (429)", transient=True, retry_after_s=retry_after
            )
        if status >= 500:
            raise ChannelError(
                _error_message(status, raw), transient=True, retry_after_s=retry_after
            )
        if status >= 400:
            await self._sends.answer(
                attempt,
                None,
                {"httpStatus": status, "body": raw.decode("utf-8", "replace")},
                FAILED,
            )
            raise ChannelError(_error_message(status, raw))
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ChannelError(
                f"8x8 answered {status} with a body that is not JSON.", transient=True
            ) from None
        if not isinstance(answer, dict):
            raise ChannelError(f"8x8 answered {status} with an unexpected body.", transient=True)
        umid = answer.get("umid") or answer.get("sessionId") or answer.get("uid")
        state = answer.get("status")
        label = (
            state.get("code") or state.get("state")
            if isinstance(state, dict)
            else answer.get("sessionStatus") or "sent"
        )
        await self._sends.answer(attempt, str(umid) if umid else None, answer, str(label).lower())
        return answer
