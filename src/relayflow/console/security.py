"""What keeps the console safe with hostile data and hostile pages.

- Everything shown comes from strangers (message bodies, `data`): templates autoescape, scripts
  set text with `textContent`, and a strict Content-Security-Policy forbids inline scripts,
  inline styles and `eval`, so an escaped-too-little value still cannot run.
- The session token lives only in an HttpOnly, SameSite=Strict cookie (Secure over https);
  state-changing requests must also present the session's CSRF token (a form field or the
  `X-CSRF-Token` header). The sign-in form has its own double-submit token.
"""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relayflow.services.sessions import Session

SESSION_COOKIE = "rf_console"
SIGN_IN_COOKIE = "rf_console_signin"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds the console's security headers to every response it sends (pages, static files,
    errors); pages also get `Cache-Control: no-store` (they show customer data)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = "/static/" in scope.get("path", "")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += HEADERS
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class SignedOut(Exception):
    """No live session: pages redirect to the sign-in page, scripts get a 401."""


class CsrfRejected(Exception):
    """A state-changing request without this session's CSRF token."""


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, session: Session, now_ms: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=max(1, (session.expires_at_ms - now_ms) // 1000),
        path="/console",
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/console", httponly=True, samesite="strict", secure=is_https(request)
    )


def new_sign_in_token() -> str:
    return secrets.token_urlsafe(24)


def set_sign_in_cookie(response: Response, request: Request, token: str) -> None:
    """The sign-in form's double-submit token: in a cookie and in the form."""
    response.set_cookie(
        SIGN_IN_COOKIE,
        token,
        max_age=3600,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


def sign_in_token_ok(request: Request, presented: str | None) -> bool:
    expected = request.cookies.get(SIGN_IN_COOKIE)
    return bool(expected and presented and hmac.compare_digest(expected, presented))
