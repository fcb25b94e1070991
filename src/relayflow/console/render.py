"""Request plumbing shared by the console's handlers: the session, CSRF-checked bodies, and
rendering templates (Jinja2 with autoescaping: every value is untrusted)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from relayflow.console.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    CsrfRejected,
    SignedOut,
)
from relayflow.console.views import duration, when
from relayflow.errors import ApiError, ErrorCode
from relayflow.runtime import Runtime
from relayflow.services.sessions import Session

HERE = Path(__file__).parent
MAX_FORM_FIELD = 1024 * 1024  # the largest definition the API accepts


def query(params: Mapping[str, str], **changes: object) -> str:
    """This page's query string with `changes` applied (a None value removes the key)."""
    merged = dict(params)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = str(value)
    return urlencode(merged)


templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters.update(when=when, query=query)
templates.env.globals["duration"] = duration
templates.env.autoescape = True  # every template, whatever its name


def context_of(request: Request) -> Runtime:
    context: Runtime = request.app.state.context
    return context


async def session_of(request: Request) -> Session:
    """The live session of this request's cookie; `SignedOut` otherwise."""
    session = await context_of(request).sessions.resolve(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise SignedOut
    return session


async def form_of(request: Request, session: Session) -> FormData:
    """A POSTed form, once its CSRF field matches the session's token."""
    form = await request.form(max_files=0, max_fields=50, max_part_size=MAX_FORM_FIELD)
    token = form.get(CSRF_FIELD)
    if not session.csrf_ok(token if isinstance(token, str) else None):
        raise CsrfRejected
    return form


async def json_of(request: Request, session: Session) -> Any:
    """A JSON body sent by the console's scripts, with the session's `X-CSRF-Token`."""
    if not session.csrf_ok(request.headers.get(CSRF_HEADER)):
        raise CsrfRejected
    raw = await request.body()
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        raise ApiError(ErrorCode.INVALID_BODY, "The request body is not valid JSON.") from None


def render(
    request: Request,
    name: str,
    session: Session | None,
    *,
    status_code: int = 200,
    **values: Any,
) -> Response:
    return templates.TemplateResponse(
        request,
        name,
        {
            "session": session,
            "csrf": session.csrf_token if session else "",
            "path": request.url.path,
            **values,
        },
        status_code=status_code,
    )
