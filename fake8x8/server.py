"""The fake 8x8 server: one site per 8x8 host role (sms, chatapps, voice), a "crm" site, and a
control site.

SMS and Chat Apps share the path `POST /api/v1/subaccounts/{id}/messages` on different hosts,
hence one listening site per role. Every request is recorded (accepted or not) before any
injected fault is applied, so a test can always see what relayflow sent. Checks run in 8x8's
order: auth, route, subaccount, content type, JSON, body rules.

The crm site stands for a customer's CRM behind an HttpRequest step: any method on any path, no
auth, answering 200 `{method, path, query, body, n}` (n = its 1-based request count), so the
same faults and outages can be aimed at the steps that are not 8x8 sends.
"""

from __future__ import annotations

import asyncio
import re
import socket
from dataclasses import dataclass, field

from aiohttp import web

from fake8x8.control import control_app
from fake8x8.faults import PROCESSED_MODES, ROLES, Fault
from fake8x8.shapes import (
    FOREIGN_SUBACCOUNT_MESSAGE,
    ILLEGAL_SUBACCOUNT,
    INTERNAL_ERROR,
    INVALID_PARAMETER,
    NOT_FOUND,
    SUBACCOUNT,
    UNAUTHORIZED,
    UNAUTHORIZED_MESSAGE,
    Answer,
    Invalid,
    answer_chat,
    answer_sms,
    check_subaccount,
    error_answer,
    error_body,
    parse_json_object,
)
from fake8x8.state import STATE, FakeState, decoded
from fake8x8.voice import INVALID_ENTRY, INVALID_JSON, answer_voice, voice_error

SEND_PATHS = {
    "sms": re.compile(r"^/api/v1/subaccounts/([^/]+)/messages$"),
    "chatapps": re.compile(r"^/api/v1/subaccounts/([^/]+)/messages$"),
    "voice": re.compile(r"^/api/v1/subaccounts/([^/]+)/callflows$"),
}
# ---------------------------------------------------------------------------------------------
# The 8x8 API sites

ROLE = web.AppKey("role", str)


def role_app(state: FakeState, role: str) -> web.Application:
    app = web.Application()
    app[STATE], app[ROLE] = state, role
    app.router.add_route("*", "/{tail:.*}", _handle)
    return app


async def _handle(request: web.Request) -> web.StreamResponse:
    state, role = request.app[STATE], request.app[ROLE]
    raw = await request.read()
    entry = state.record(role, request, raw)
    ordinal = state.received[role]  # read before any await: this request's own number
    fault = state.faults.take(role)
    if fault is not None:
        entry["fault"] = fault.mode
        if fault.mode == "drop":  # close the connection without any answer
            return _abort(request)
        if fault.mode == "slow":
            await asyncio.sleep(fault.delay)
    if fault is not None and fault.mode not in PROCESSED_MODES:
        answer = _fault_answer(role, fault)
    elif role == "crm":
        answer = _crm_answer(request, raw, ordinal)
    else:
        answer = _answer(state, role, request, raw)
    entry["status"], entry["answer"] = answer.status, answer.body
    if fault is not None and fault.mode == "lost":  # accepted for real, the answer never arrives
        return _abort(request)
    return web.json_response(answer.body, status=answer.status, headers=answer.headers)


def _abort(request: web.Request) -> web.StreamResponse:
    """Cut the connection: the client sees it dropped, with no HTTP answer at all."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response()


def _unauthorised(role: str) -> Answer:
    if role == "voice":
        return voice_error(401, 401, "Authentication header not found or token invalid")
    return Answer(401, error_body(UNAUTHORIZED, UNAUTHORIZED_MESSAGE))


CRM_ERRORS = {
    "400": "Bad request",
    "401": "Unauthorized",
    "429": "Too many requests",
    "500": "Internal server error",
    "503": "Service unavailable",
}


def _fault_answer(role: str, fault: Fault) -> Answer:
    voice = role == "voice"
    if role == "crm":
        body = {"error": f"{CRM_ERRORS[fault.mode]} (injected fault)"}
        return Answer(int(fault.mode), body, fault.headers())
    if fault.mode == "401":
        return _unauthorised(role)
    if fault.mode == "429":
        message = f"Quota exceeded. Please try again in {fault.wait} second(s)."
        if voice:
            return Answer(429, voice_error(429, 429, message).body, fault.headers())
        return Answer(429, error_body(429, message), fault.headers())
    if fault.mode == "400":
        if voice:
            return voice_error(400, INVALID_ENTRY, "Invalid callflow entry (injected fault)")
        return Answer(400, error_body(INVALID_PARAMETER, "Invalid parameter (injected fault)"))
    status = int(fault.mode)  # 500 or 503
    message = "Internal server error" if status == 500 else "Service temporarily unavailable"
    if voice:
        return Answer(status, voice_error(status, status, message).body, fault.headers())
    return Answer(status, error_body(INTERNAL_ERROR, message), fault.headers())


def _crm_answer(request: web.Request, raw: bytes, ordinal: int) -> Answer:
    """The echo a test can check an HttpRequest step against: what arrived, and as which one."""
    query: dict[str, str | list[str]] = {}
    for name in request.query:
        values = request.query.getall(name)
        query[name] = values[0] if len(values) == 1 else values
    body = {
        "method": request.method,
        "path": request.path,
        "query": query,
        "body": decoded(raw),
        "n": ordinal,
    }
    return Answer(200, body)


def _answer(state: FakeState, role: str, request: web.Request, raw: bytes) -> Answer:
    if not state.authorised(request.headers.get("Authorization")):
        return _unauthorised(role)
    match = SEND_PATHS[role].match(request.path)
    if match is None:
        return Answer(404, error_body(NOT_FOUND, "Resource not found."))
    if request.method != "POST":
        body = error_body(INVALID_PARAMETER, f"Method {request.method} is not allowed.")
        return Answer(405, body, {"Allow": "POST"})
    sub_account_id = match.group(1)
    json_body = request.content_type == "application/json"
    if role == "voice":
        if not SUBACCOUNT.match(sub_account_id) or not state.known_subaccount(sub_account_id):
            return voice_error(404, 404, f"SubAccount not found by Id : {sub_account_id}")
        if not json_body:
            return voice_error(400, INVALID_JSON, "Invalid JSON: expected application/json")
        return answer_voice(raw)
    try:
        check_subaccount(sub_account_id)
        if not state.known_subaccount(sub_account_id):
            raise Invalid(ILLEGAL_SUBACCOUNT, FOREIGN_SUBACCOUNT_MESSAGE)
        if not json_body:
            message = f"Unsupported Content-Type '{request.content_type}'; use application/json."
            raise Invalid(INVALID_PARAMETER, message)
        body = parse_json_object(raw)
    except Invalid as error:
        return error_answer(error)
    return answer_sms(body) if role == "sms" else answer_chat(body)


# ---------------------------------------------------------------------------------------------
# Starting and stopping


@dataclass
class Running:
    """The started sites: their base URLs, and `close()` to stop them."""

    urls: dict[str, str]
    runners: list[web.AppRunner] = field(default_factory=list)

    async def close(self) -> None:
        for runner in reversed(self.runners):
            await runner.cleanup()


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def start(state: FakeState, host: str, ports: dict[str, int]) -> Running:
    """Listen on `ports` (role → port, 0 = any free port) and return the actual URLs."""
    apps = {role: role_app(state, role) for role in ROLES}
    apps["control"] = control_app(state)
    public_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    running = Running(urls={})
    for name, app in apps.items():
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        running.runners.append(runner)
        sock = _listen(host, ports.get(name, 0))
        await web.SockSite(runner, sock, shutdown_timeout=1.0).start()
        running.urls[name] = f"http://{public_host}:{sock.getsockname()[1]}"
    return running
