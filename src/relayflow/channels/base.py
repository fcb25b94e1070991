"""Channel interfaces the steps call, and the errors they raise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class SendContext:
    """Who sends: used for idempotency (one message per pointer) and audit."""

    account_id: str
    instance_id: str
    pointer_id: str
    attempt: int
    now_ms: int


class ChannelError(Exception):
    """A send failed. `transient` failures may be retried; the message is shown to users."""

    def __init__(
        self, message: str, *, transient: bool = False, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.retry_after_s = retry_after_s


class MessagingProvider(Protocol):
    async def send_sms(
        self, ctx: SendContext, sub_account_id: str, body: dict[str, Any]
    ) -> dict[str, Any]: ...

    async def send_chat(
        self, ctx: SendContext, sub_account_id: str, body: dict[str, Any]
    ) -> dict[str, Any]: ...

    async def send_voice(
        self, ctx: SendContext, sub_account_id: str, body: dict[str, Any]
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class HttpResult:
    status: int
    reason: str
    body: Any  # parsed JSON, or the text when the body is not JSON


class HttpRequester(Protocol):
    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        params: dict[str, str],
        json_body: Any,
        timeout_s: float,
    ) -> HttpResult: ...


class ProviderResolver(Protocol):
    async def for_account(self, account_id: str) -> MessagingProvider: ...


@dataclass(frozen=True)
class ChannelSet:
    """Everything steps may use to reach the world, injected into the engine."""

    providers: ProviderResolver
    http: HttpRequester
