"""Every send through a messaging provider, counted and timed in one place.

Wrapping the provider (rather than each provider recording its own) keeps the sandbox and 8x8
measured alike: `relayflow_messages_sent_total{channel, provider, outcome}` and
`relayflow_provider_request_duration_seconds{channel, provider}`, plus a client span per send
when tracing is on.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from relayflow.channels.base import ChannelError, MessagingProvider, SendContext
from relayflow.telemetry import metrics, tracing

Send = Callable[[SendContext, str, dict[str, Any]], Awaitable[dict[str, Any]]]


def outcome_of(error: ChannelError) -> str:
    """A failed send's outcome label."""
    if error.deferred:
        return "deferred"
    return "failed" if error.transient else "rejected"


class MeteredProvider:
    """A provider whose sends are measured; `name` is "sandbox" or "8x8"."""

    def __init__(self, provider: MessagingProvider, name: str) -> None:
        self.provider = provider
        self.name = name

    async def send_sms(
        self, ctx: SendContext, sub_account_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return await self._measured("sms", self.provider.send_sms, ctx, sub_account_id, body)

    async def send_chat(
        self, ctx: SendContext, sub_account_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return await self._measured("chatapps", self.provider.send_chat, ctx, sub_account_id, body)

    async def send_voice(
        self, ctx: SendContext, sub_account_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return await self._measured("voice", self.provider.send_voice, ctx, sub_account_id, body)

    async def _measured(
        self,
        channel: str,
        send: Send,
        ctx: SendContext,
        sub_account_id: str,
        body: dict[str, Any],
    ) -> dict[str, Any]:
        began = time.perf_counter()
        outcome = "accepted"
        with tracing.client_span(f"send {channel}", {"relayflow.provider": self.name}):
            try:
                return await send(ctx, sub_account_id, body)
            except ChannelError as error:
                outcome = outcome_of(error)
                raise
            except BaseException:
                outcome = "failed"
                raise
            finally:
                metrics.messages_sent.labels(channel, self.name, outcome).inc()
                if outcome != "deferred":  # nothing was attempted: no request to time
                    metrics.provider_request_duration.labels(channel, self.name).observe(
                        time.perf_counter() - began
                    )
