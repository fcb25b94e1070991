"""Typed exceptions for the API's 8x8 error body `{code, message, errorId, timestamp}`.

`ValidationError` deliberately shares pydantic's name (it is the API's word for a 400); import
it from here, e.g. `from relayflow.client.errors import ValidationError`.
"""

from __future__ import annotations

from relayflow.api.shapes import ProblemOut


class RelayflowError(Exception):
    """An error answer of the API (or, with `status` 0, no answer at all)."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        error_id: str | None = None,
        errors: list[ProblemOut] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}" if status else message)
        self.status = status
        self.code = code
        self.message = message
        self.error_id = error_id
        self.errors: list[ProblemOut] = errors or []

    @property
    def errorId(self) -> str | None:
        return self.error_id


class ValidationError(RelayflowError):
    """400: bad input; `errors` lists every problem of a definition with its JSON path."""


class AuthenticationError(RelayflowError):
    """401: missing or unknown API key; 403: the key belongs to another account."""


class NotFoundError(RelayflowError):
    """404: no such definition, workflow, message or endpoint."""


class RateLimitedError(RelayflowError):
    """429 still answered after the retries; `retry_after` is the server's wait in seconds."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        error_id: str | None = None,
        errors: list[ProblemOut] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, code, message, error_id, errors)
        self.retry_after = retry_after


class ServiceUnavailableError(RelayflowError):
    """503 still answered after the retries (e.g. the database is unreachable)."""


class TransportError(RelayflowError):
    """No HTTP answer: connection refused or reset (status 0, code 0)."""

    def __init__(self, message: str) -> None:
        super().__init__(0, 0, message)


class RequestTimeoutError(TransportError):
    """No answer within the client's `timeout`."""
