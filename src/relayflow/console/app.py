"""The console as a Starlette application mounted at `/console` by the API app: its own routes,
static files, security headers and error pages (HTML for people, 8x8 error bodies for the
console's scripts), kept out of the REST API's OpenAPI document."""

from __future__ import annotations

import json

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from relayflow.clock import iso_from_ms
from relayflow.console import pages, signin, simulator, virtual
from relayflow.console.render import HERE, context_of, render
from relayflow.console.security import CsrfRejected, SecurityHeaders, SignedOut
from relayflow.console.views import FilterError
from relayflow.errors import ApiError, ErrorCode
from relayflow.ids import new_error_id
from relayflow.runtime import Runtime

log = structlog.get_logger("relayflow.console")
SCRIPT_PATHS = (
    "/validate",
    "/sandbox/send",
    "/sandbox/outbox",
    "/live",
    "/sandbox/virtual/start",
    "/sandbox/virtual/send",
    "/sandbox/virtual/export",
)
DEFINITION = "/definitions/{definition_id:str}"
WORKFLOW = DEFINITION + "/workflows/{workflow_id:str}"


def create_console(context: Runtime) -> Starlette:
    routes = [
        Route("/", pages.home),
        Route("/login", signin.sign_in, methods=["GET", "POST"]),
        Route("/logout", signin.sign_out, methods=["POST"]),
        Route("/definitions", pages.definitions),
        Route("/definitions/new", pages.new_definition, methods=["GET", "POST"]),
        Route("/validate", pages.validate, methods=["POST"]),
        Route(DEFINITION, pages.definition),
        Route(DEFINITION + "/save", pages.save_definition, methods=["POST"]),
        Route(DEFINITION + "/status", pages.set_status, methods=["POST"]),
        Route(DEFINITION + "/delete", pages.delete_definition, methods=["POST"]),
        Route(DEFINITION + "/versions", pages.versions),
        Route(DEFINITION + "/workflows", pages.workflows),
        Route(DEFINITION + "/workflows/bulk", pages.bulk, methods=["GET", "POST"]),
        Route(WORKFLOW, pages.workflow),
        Route(WORKFLOW + "/live", pages.live),
        Route(WORKFLOW + "/{command:str}", pages.workflow_command, methods=["POST"]),
        Route("/workflows/{workflow_id:str}", pages.find_workflow),
        Route("/sandbox", simulator.page),
        Route("/sandbox/send", simulator.send, methods=["POST"]),
        Route("/sandbox/outbox", simulator.outbox),
        Route("/sandbox/virtual/start", virtual.start, methods=["POST"]),
        Route("/sandbox/virtual/send", virtual.send, methods=["POST"]),
        Route("/sandbox/virtual/export", virtual.export),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={
            SignedOut: _signed_out,
            CsrfRejected: _csrf_rejected,
            ApiError: _api_error,
            FilterError: _filter_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
    )
    app.state.context = context
    app.state.virtual = virtual.VirtualSessions()  # closed by the API app's lifespan
    return app


def _for_script(request: Request) -> bool:
    path = request.url.path
    return any(path.endswith(suffix) for suffix in SCRIPT_PATHS)


def _error(request: Request, code: ErrorCode, status: int, message: str) -> Response:
    error_id = new_error_id()
    if _for_script(request):
        body = {
            "code": int(code),
            "message": message,
            "errorId": error_id,
            "timestamp": iso_from_ms(context_of(request).clock.now_ms()),
        }
        return Response(json.dumps(body), status_code=status, media_type="application/json")
    return render(
        request,
        "error.html",
        None,
        status_code=status,
        message=message,
        code=int(code),
        error_id=error_id,
    )


async def _signed_out(request: Request, _: Exception) -> Response:
    if request.method == "GET" and not _for_script(request):
        return RedirectResponse("/console/login", status_code=303)
    return _error(request, ErrorCode.UNAUTHORIZED, 401, "Sign in first.")


async def _csrf_rejected(request: Request, _: Exception) -> Response:
    return _error(
        request, ErrorCode.FORBIDDEN, 403, "This form is out of date; reload the page and retry."
    )


async def _api_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return _error(request, error.code, error.http_status, error.message)


async def _filter_error(request: Request, error: Exception) -> Response:
    return _error(request, ErrorCode.INVALID_PARAMETER, 400, str(error))


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if error.status_code == 404:
        return _error(request, ErrorCode.RESOURCE_NOT_FOUND, 404, "No such page.")
    if error.status_code == 405:
        return _error(request, ErrorCode.METHOD_NOT_ALLOWED, 405, "Method not allowed here.")
    return _error(request, ErrorCode.INVALID_PARAMETER, error.status_code, str(error.detail))


async def _unexpected(request: Request, error: Exception) -> Response:
    error_id = new_error_id()
    log.error("console_error", error_id=error_id, path=request.url.path, exc_info=error)
    return _error(request, ErrorCode.INTERNAL_ERROR, 500, f"Something went wrong ({error_id}).")
