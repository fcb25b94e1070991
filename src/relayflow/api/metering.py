"""`relayflow_http_requests_total` and `..._duration_seconds` for every request.

A pure ASGI middleware (no per-request objects beyond a closure), outermost, so that refusals
made by other middleware (413 body too large) are counted too. The `route` label is the route
*template* that matched (`/api/v1/accounts/{accountId}/definitions`), never the path: paths hold
ids, and a scanner probing random URLs would otherwise create a series per URL. Unmatched paths
share the label "unmatched".
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relayflow.telemetry import metrics

UNMATCHED = "unmatched"


def route_template(scope: Scope, outer_root_path: str) -> str:
    """The template of the route Starlette matched (mounted apps' prefixes included)."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    mount_prefix = str(scope.get("root_path", ""))[len(outer_root_path) :]
    return mount_prefix + path


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        root_path = str(scope.get("root_path", ""))
        status = 500  # what the server answers if the app raises before a response starts

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = route_template(scope, root_path)
            method = metrics.bounded(scope["method"], metrics.METHODS)
            metrics.http_requests.labels(route, method, str(status)).inc()
            metrics.http_request_duration.labels(route, method).observe(time.perf_counter() - began)
