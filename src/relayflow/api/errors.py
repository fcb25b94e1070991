"""Every error leaves as an 8x8 error body; nothing else (no HTML, no FastAPI `detail`)."""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from relayflow.api.context import context_of
from relayflow.api.responses import FastJSONResponse, error_body
from relayflow.errors import ApiError, ErrorCode
from relayflow.ids import new_error_id

log = structlog.get_logger("relayflow.api")

_STATUS_CODES = {
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.RESOURCE_NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
}


def error_response(request: Request, error: ApiError) -> Response:
    error_id = new_error_id()
    now = context_of(request).clock.now_ms()
    log.info(
        "request_rejected",
        error_id=error_id,
        code=int(error.code),
        status=error.http_status,
        method=request.method,
        path=request.url.path,
    )
    return FastJSONResponse(
        error_body(error, error_id, now), status_code=error.http_status, headers=error.headers
    )


async def _api_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return error_response(request, error)


async def _request_validation(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    problems = []
    for detail in error.errors():
        where = ".".join(str(part) for part in detail.get("loc", ()))
        problems.append(f"{where}: {detail.get('msg', 'invalid')}")
    message = "Invalid parameter(s): " + "; ".join(problems) + "."
    return error_response(request, ApiError(ErrorCode.INVALID_PARAMETER, message))


async def _http_exception(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    code = _STATUS_CODES.get(error.status_code, ErrorCode.INVALID_PARAMETER)
    message = str(error.detail) if error.detail else "Request failed."
    if code is ErrorCode.RESOURCE_NOT_FOUND:
        message = f"No endpoint {request.method} {request.url.path}."
    elif code is ErrorCode.METHOD_NOT_ALLOWED:
        message = f"Method {request.method} is not allowed on {request.url.path}."
    api_error = ApiError(code, message, headers=dict(error.headers or {}))
    response = error_response(request, api_error)
    response.status_code = error.status_code
    return response


def database_unavailable(error: BaseException) -> bool:
    """A lost or refused database connection: temporary, unlike a bug."""
    if isinstance(
        error,
        OSError
        | TimeoutError
        | PoolTimeoutError  # every pooled connection busy for pool_timeout seconds
        | OperationalError
        | InterfaceError
        | DisconnectionError,
    ):
        return True
    if isinstance(error, DBAPIError):
        return error.connection_invalidated or _driver_unavailable(error.orig)
    # The hot path (store/postgres_hotpath.py, store/postgres_starts.py) runs on asyncpg
    # directly: its errors arrive unwrapped.
    return isinstance(error, asyncpg.PostgresError | asyncpg.InterfaceError) and (
        _driver_unavailable(error)
    )


def _driver_unavailable(original: BaseException | None) -> bool:
    """The driver's error (asyncpg's, possibly wrapped by SQLAlchemy) is a lost or refused
    connection."""
    sqlstate = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
        return True
    causes = {type(original).__name__, type(getattr(original, "__cause__", None)).__name__}
    return isinstance(original, OSError) or bool(causes & _CONNECTION_ERRORS)


# SQLSTATE classes of a server that cannot take us now: connection exceptions (08), too many
# connections / out of resources (53), shutdown or starting up (57P).
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P")


# asyncpg's names for "the server is going away / not there yet" (wrapped by SQLAlchemy).
_CONNECTION_ERRORS = frozenset(
    {
        "CannotConnectNowError",
        "AdminShutdownError",
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "CrashShutdownError",
        "InterfaceError",
        "TooManyConnectionsError",
    }
)


async def _unexpected(request: Request, error: Exception) -> Response:
    if database_unavailable(error):
        log.warning("database_unavailable", method=request.method, path=request.url.path)
        return error_response(
            request,
            ApiError(
                ErrorCode.UNAVAILABLE,
                "The database is unavailable for a moment; retry shortly.",
                headers={"Retry-After": "1"},
            ),
        )
    error_id = new_error_id()
    log.exception("request_failed", error_id=error_id, method=request.method, path=request.url.path)
    body: dict[str, Any] = error_body(
        ApiError(ErrorCode.INTERNAL_ERROR, f"Internal error; quote errorId {error_id}."),
        error_id,
        context_of(request).clock.now_ms(),
    )
    return FastJSONResponse(body, status_code=500)


# Errors a database outage raises get handlers of their own: a handler registered for plain
# `Exception` answers, but Starlette then re-raises the error to the server, which logs a full
# traceback per request — thousands of them while the pool is exhausted under overload.
_DATABASE_ERRORS: tuple[type[Exception], ...] = (
    DBAPIError,
    PoolTimeoutError,
    DisconnectionError,
    OSError,
)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    for error_type in _DATABASE_ERRORS:
        app.add_exception_handler(error_type, _unexpected)
    app.add_exception_handler(Exception, _unexpected)
