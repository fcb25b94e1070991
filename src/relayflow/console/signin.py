"""Sign-in and sign-out. The API key is typed into a form (POSTed, never in a URL) and
exchanged for a session cookie; the key itself is neither stored by the browser nor logged."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from relayflow.console.render import context_of, form_of, render, session_of
from relayflow.console.security import (
    SESSION_COOKIE,
    clear_session_cookie,
    new_sign_in_token,
    set_session_cookie,
    set_sign_in_cookie,
    sign_in_token_ok,
)
from relayflow.services.sessions import SignInError

MAX_KEY_FIELD = 500


async def sign_in(request: Request) -> Response:
    if request.method == "POST":
        return await _submit(request)
    context = context_of(request)
    if await context.sessions.resolve(request.cookies.get(SESSION_COOKIE)) is not None:
        return RedirectResponse("/console/definitions", status_code=303)
    return _form(request, error=None, status_code=200)


def _form(request: Request, *, error: str | None, status_code: int) -> Response:
    token = new_sign_in_token()
    page = render(
        request, "signin.html", None, status_code=status_code, error=error, signin_token=token
    )
    set_sign_in_cookie(page, request, token)
    return page


async def _submit(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=5, max_part_size=64 * 1024)
    token = form.get("signin")
    if not sign_in_token_ok(request, token if isinstance(token, str) else None):
        return _form(request, error="The sign-in form expired; please try again.", status_code=403)
    key = form.get("apiKey")
    context = context_of(request)
    try:
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_FIELD:
            raise SignInError("Type your API key.")
        session = await context.sessions.sign_in(key)
    except SignInError as error:
        return _form(request, error=str(error), status_code=401)
    response = RedirectResponse("/console/definitions", status_code=303)
    set_session_cookie(response, request, session, context.clock.now_ms())
    return response


async def sign_out(request: Request) -> Response:
    session = await session_of(request)
    await form_of(request, session)
    await context_of(request).sessions.sign_out(session.token)
    response = RedirectResponse("/console/login", status_code=303)
    clear_session_cookie(response, request)
    return response
