"""What request handlers need: the process's `Runtime`, kept on `app.state`."""

from __future__ import annotations

from starlette.requests import Request

from relayflow.runtime import Runtime

AppContext = Runtime  # the name the API layer and tests use


def context_of(request: Request) -> Runtime:
    context: Runtime = request.app.state.context
    return context
