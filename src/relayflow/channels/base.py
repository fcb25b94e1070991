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
    """A send failed. `transient` failures may be retried; the message is shown to users.

    `sent` is False when the request cannot have reached the endpoint (no connection was made,
    or a circuit breaker held it back), so even a non-idempotent request may be repeated.
    `deferred` is True when nothing was attempted at all (the attempt does not count).
    """

    deferred = False
    # Set when the failure left the endpoint's circuit open: try again by then (to be probed
    # or deferred with the rest of the backlog) rather than after a long personal backoff.
    resume_before_s: float | None = None

    def __init__(
        self,
        message: str,
        *,
        transient: bool = False,
        retry_after_s: float | None = None,
        sent: bool = True,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.retry_after_s = retry_after_s
        self.sent = sent


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
    retry_after_s: float | None = None  # the server's Retry-After, in seconds
    resume_before_s: float | None = None  # see ChannelError.resume_before_s


def is_transient_status(status: int) -> bool:
    """An HTTP answer that says "not now" rather than "no": rate limited or a server error."""
    return status == 429 or status >= 500


def retry_after_seconds(value: str | None) -> float | None:
    """A `Retry-After` header in seconds; None when absent or not a number of seconds
    (an HTTP-date is treated as absent: the backoff applies)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds) if seconds == seconds else None  # NaN is not a number of seconds


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
