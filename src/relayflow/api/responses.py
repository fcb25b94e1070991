"""JSON responses (orjson) and the 8x8 error body `{code, message, errorId, timestamp}`."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse

from relayflow.clock import iso_from_ms
from relayflow.errors import ApiError


class FastJSONResponse(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_body(error: ApiError, error_id: str, now_ms: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": int(error.code),
        "message": error.message,
        "errorId": error_id,
        "timestamp": iso_from_ms(now_ms),
    }
    if error.problems:
        # Extension: every validation problem with its JSON path (clients may ignore it).
        body["errors"] = [problem.as_json() for problem in error.problems]
    return body
