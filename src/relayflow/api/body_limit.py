"""Reject request bodies over the limit with 413 before they are read into memory."""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relayflow.api.responses import error_body
from relayflow.clock import Clock
from relayflow.errors import ApiError, ErrorCode
from relayflow.ids import new_error_id


class BodyTooLarge(ApiError):
    """Raised from `receive`, so the app's ApiError handler answers with the 413 body."""


class BodySizeLimit:
    """ASGI middleware: checks `Content-Length` up front, counts chunked bodies as they stream."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, clock: Clock) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b"").lower():
            # PostgreSQL cannot store or compare NUL in text: refuse it before any handler.
            await self._reject(
                send,
                ApiError(ErrorCode.INVALID_PARAMETER, "NUL characters are not allowed in URLs."),
            )
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._reject(send, self._too_large())
                    return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(ErrorCode.PAYLOAD_TOO_LARGE, self._message())
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not response_started:
                await self._reject(send, self._too_large())

    def _message(self) -> str:
        return f"Request body is larger than {self.max_bytes} bytes."

    def _too_large(self) -> ApiError:
        return ApiError(ErrorCode.PAYLOAD_TOO_LARGE, self._message())

    async def _reject(self, send: Send, error: ApiError) -> None:
        body = orjson.dumps(error_body(error, new_error_id(), self.clock.now_ms()))
        await send(
            {
                "type": "http.response.start",
                "status": error.http_status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
