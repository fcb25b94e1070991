"""The engine's refusal of a start, as 8x8's error: 429, code 1429, `Retry-After`.

Every service call that may start instances goes through `admitted`, so the API, the console,
the CLI and flow tests all see the same `ApiError` while the engine keeps its own exception.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from relayflow.engine.errors import StartsRateLimited
from relayflow.errors import ApiError, ErrorCode

T = TypeVar("T")


async def admitted(call: Awaitable[T]) -> T:
    """The router's answer; its start rate limit raised as the API's 429."""
    try:
        return await call
    except StartsRateLimited as refused:
        raise ApiError(
            ErrorCode.RATE_LIMITED,
            str(refused),
            headers={"Retry-After": str(refused.retry_after_s)},
        ) from None
