"""The sans-IO half of the clients: what to send and how to read the answer.

Every API operation is a `Call` (method, path, query, body, parser), built by the functions
below without touching the network; `RelayflowClient` and `AsyncRelayflowClient` only send
calls and sleep between retries. So the two clients cannot drift apart.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import orjson
from pydantic import BaseModel, TypeAdapter

from relayflow import __version__
from relayflow.api.shapes import ErrorOut
from relayflow.client.errors import (
    AuthenticationError,
    NotFoundError,
    RateLimitedError,
    RelayflowError,
    ServiceUnavailableError,
    ValidationError,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
Query = Mapping[str, str | int | bool | None]

RETRY_STATUSES = frozenset({429, 503})
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_MAX_RETRY_DELAY_S = 30.0
BACKOFF_BASE_S = 0.5
DEFAULT_PAGE_SIZE = 100


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and the parser of its success answer."""

    method: str
    path: str  # below /api/v1/accounts/{accountId}
    parse: Callable[[httpx.Response], T]
    query: Query = field(default_factory=dict)
    body: Any = None  # JSON-able; None: no body


def model(shape: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: shape.model_validate_json(response.content)


def models(shape: type[M]) -> Callable[[httpx.Response], list[M]]:
    adapter = TypeAdapter(list[shape])  # type: ignore[valid-type]
    return lambda response: adapter.validate_json(response.content)


def nothing(_response: httpx.Response) -> None:
    return None


def segment(value: str) -> str:
    """A path segment, percent-encoded (ids come from users)."""
    return quote(value, safe="")


def body_json(body: BaseModel | Mapping[str, Any]) -> Any:
    """A request body: a pydantic model by its aliases (`from`), unset fields left out."""
    if isinstance(body, BaseModel):
        return body.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dict(body)


def query(**values: str | int | bool | None) -> dict[str, str | int | bool | None]:
    """Query parameters without the unset ones (the API's defaults apply)."""
    return {name: value for name, value in values.items() if value is not None}


class Endpoint:
    """Where calls go and who makes them: the shared configuration of both clients."""

    def __init__(self, base_url: str, api_key: str, account_id: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.account_id = account_id
        self.prefix = f"/api/v1/accounts/{segment(account_id)}"
        self.headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "User-Agent": f"relayflow-client/{__version__}",
        }

    def request(self, http: httpx.Client | httpx.AsyncClient, call: Call[Any]) -> httpx.Request:
        content = None if call.body is None else orjson.dumps(call.body)
        headers = {"Content-Type": "application/json"} if content is not None else None
        params = {
            name: (str(value).lower() if isinstance(value, bool) else value)
            for name, value in call.query.items()
            if value is not None
        }
        return http.build_request(
            call.method, self.prefix + call.path, params=params, content=content, headers=headers
        )


@dataclass(frozen=True)
class RetryPolicy:
    """429 and 503 are retried `max_retries` times: after `Retry-After` when the server sends
    one (capped at `max_delay`), else after an exponential backoff."""

    max_retries: int = DEFAULT_MAX_RETRIES
    max_delay: float = DEFAULT_MAX_RETRY_DELAY_S

    def delay(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying after `attempt` (0-based) failed; None: give up."""
        if response.status_code not in RETRY_STATUSES or attempt >= self.max_retries:
            return None
        server = retry_after(response)
        wait = server if server is not None else BACKOFF_BASE_S * 2**attempt
        return min(max(wait, 0.0), self.max_delay)


def retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds (delta-seconds or an HTTP date), None when absent or garbled."""
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def outcome(call: Call[T], response: httpx.Response) -> T:
    """The parsed answer of a 2xx, else the typed error of the body."""
    if response.is_success:
        return call.parse(response)
    raise error_of(response)


def error_of(response: httpx.Response) -> RelayflowError:
    status = response.status_code
    try:
        body = ErrorOut.model_validate_json(response.content)
        code, message, error_id, problems = body.code, body.message, body.errorId, body.errors
    except ValueError:  # not an 8x8 error body (a proxy's page, say)
        code, message, error_id, problems = (
            0,
            response.text[:500] or response.reason_phrase,
            None,
            None,
        )
    if status == 429:
        return RateLimitedError(status, code, message, error_id, problems, retry_after(response))
    error_type = _ERROR_TYPES.get(status, RelayflowError)
    return error_type(status, code, message, error_id, problems)


_ERROR_TYPES: dict[int, type[RelayflowError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    503: ServiceUnavailableError,
}


def next_offset(page_length: int, page_size: int, offset: int) -> int | None:
    """The offset of the next page, None after the last one (a short page)."""
    return offset + page_length if page_length >= page_size else None
