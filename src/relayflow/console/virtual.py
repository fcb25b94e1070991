"""The simulator's virtual-time mode: a private copy of one definition running in a
`RecordedSession` (the engine of `relayflow test`: its own temporary database, a virtual clock,
mocked channels), so a one-day timeout is one click away and nothing touches the account's
real instances, outbox or the network. "Export as test" saves the conversation as a
`*.flowtest.json` that replays it.

Sessions live in this process's memory, one per signed-in console session, and are closed when
idle for `IDLE_S` or when more than `MAX_SESSIONS` are open (the least recently used first).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from relayflow.console.render import context_of, json_of, session_of
from relayflow.console.views import definition_body
from relayflow.errors import ApiError, ErrorCode
from relayflow.services.inputs import Dtmf, InboundChat, InboundSms, parse_input
from relayflow.services.sandbox import is_capture_call
from relayflow.testing import FlowTestError
from relayflow.testing.checks import Checker
from relayflow.testing.mockspec import check_mocks
from relayflow.testing.session import RecordedSession

IDLE_S = 1800.0
MAX_SESSIONS = 8
SPAN = re.compile(r"^(\d+)\.(\d{2}):(\d{2}):(\d{2})$|^(\d{2}):(\d{2}):(\d{2})$")


@dataclass
class _Open:
    session: RecordedSession
    definition_id: str
    used: float


class VirtualSessions:
    """The open virtual-time sessions of this process, by console session token."""

    def __init__(self) -> None:
        self._open: dict[str, _Open] = {}

    def get(self, key: str) -> _Open | None:
        found = self._open.get(key)
        if found is not None:
            found.used = time.monotonic()
        return found

    async def start(self, key: str, definition_id: str, session: RecordedSession) -> None:
        await self.stop(key)
        await self._evict()
        await session.__aenter__()
        self._open[key] = _Open(session, definition_id, time.monotonic())

    async def stop(self, key: str) -> None:
        found = self._open.pop(key, None)
        if found is not None:
            await found.session.__aexit__(None, None, None)

    async def _evict(self) -> None:
        now = time.monotonic()
        for key in [k for k, o in self._open.items() if now - o.used > IDLE_S]:
            await self.stop(key)
        while len(self._open) >= MAX_SESSIONS:
            oldest = min(self._open, key=lambda k: self._open[k].used)
            await self.stop(oldest)

    async def close(self) -> None:
        for key in list(self._open):
            await self.stop(key)


def sessions_of(request: Request) -> VirtualSessions:
    sessions: VirtualSessions = request.app.state.virtual
    return sessions


async def start(request: Request) -> Response:
    """`{"definitionId", "mocks"?}`: a fresh virtual copy of the definition's latest version."""
    session = await session_of(request)
    body = await json_of(request, session)
    if not isinstance(body, dict) or not isinstance(body.get("definitionId"), str):
        raise ApiError(ErrorCode.INVALID_BODY, 'Send {"definitionId": "...", "mocks"?: {...}}.')
    mocks = body.get("mocks")
    checker = Checker()
    check_mocks(mocks, "mocks", checker)
    if checker.problems:
        detail = "; ".join(f"{path}: {message}" for path, message in checker.problems[:10])
        raise ApiError(ErrorCode.INVALID_BODY, f"Invalid mocks: {detail}.")
    context = context_of(request)
    definition_id = body["definitionId"]
    rows = await context.definitions.history(session.account_id, definition_id, 1, 0)
    if not rows:
        raise ApiError(ErrorCode.DEFINITION_NOT_FOUND, f"Definition {definition_id} not found.")
    row = rows[0]
    definition = {**definition_body(row), "status": "enabled"}  # a copy that runs when triggered
    recorded = RecordedSession(
        definition,
        name=f"{row.name} (recorded in the console)",
        mocks=mocks if isinstance(mocks, dict) and mocks else None,
        account=session.account_id,
        start=context.clock.now_ms(),
    )
    try:
        await sessions_of(request).start(session.token, definition_id, recorded)
    except FlowTestError as error:
        raise ApiError(ErrorCode.INVALID_BODY, str(error)) from None
    return _state(recorded, [])


async def send(request: Request) -> Response:
    """One customer action, or `{"kind": "advance", "by": "1.00:00:00"}`, in virtual time."""
    session = await session_of(request)
    body = await json_of(request, session)
    opened = sessions_of(request).get(session.token)
    if opened is None:
        raise ApiError(ErrorCode.RESOURCE_NOT_FOUND, "Start a virtual-time session first.")
    if not isinstance(body, dict):
        raise ApiError(ErrorCode.INVALID_BODY, "Send a JSON object.")
    recorded = opened.session
    before = len(recorded.env.outbox)
    kind = body.pop("kind", None)
    try:
        if kind == "sms":
            sms = parse_input(InboundSms, body)
            await recorded.inbound_sms(
                sms.from_, sms.text, to=sms.to, sub_account_id=sms.subAccountId
            )
        elif kind == "chat":
            chat = parse_input(InboundChat, body)
            await recorded.inbound_chat(
                chat.channel,
                chat.from_,
                text=chat.text,
                payload=chat.payload,
                sub_account_id=chat.subAccountId,
            )
        elif kind == "dtmf":
            keys = parse_input(Dtmf, {"clientRequestId": "latest", **body})
            await recorded.dtmf(keys.digits)
        elif kind == "http":
            trigger = body.get("body", {})
            if not isinstance(trigger, dict):
                raise ApiError(ErrorCode.INVALID_BODY, "The trigger body must be a JSON object.")
            sub_account = body.get("subAccountId") or None
            if sub_account is not None and not isinstance(sub_account, str):
                raise ApiError(ErrorCode.INVALID_BODY, "subAccountId must be text.")
            await recorded.http_trigger(trigger, sub_account_id=sub_account)
        elif kind == "advance":
            by = body.get("by")
            if not isinstance(by, str) or not SPAN.match(by):
                raise ApiError(ErrorCode.INVALID_BODY, "by must be a timespan like 1.00:00:00.")
            await recorded.advance(by)
        else:
            raise ApiError(ErrorCode.INVALID_BODY, "kind must be sms, chat, dtmf, http or advance.")
    except FlowTestError as error:
        raise ApiError(ErrorCode.INVALID_BODY, str(error)) from None
    return _state(recorded, recorded.env.outbox[before:])


async def export(request: Request) -> Response:
    """The conversation so far as a `*.flowtest.json` download."""
    session = await session_of(request)
    opened = sessions_of(request).get(session.token)
    if opened is None:
        raise ApiError(ErrorCode.RESOURCE_NOT_FOUND, "Start a virtual-time session first.")
    document = opened.session.flowtest()
    return Response(
        json.dumps(document, indent=2, ensure_ascii=False) + "\n",
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="conversation.flowtest.json"'},
    )


def _state(recorded: RecordedSession, new: list[dict[str, Any]]) -> Response:
    env = recorded.env
    body = {
        "clock": recorded.clock_iso(),
        "new": [_bubble(message) for message in new],
        "instances": [
            {"workflowId": i["workflowId"], "status": i["status"], "errors": i["errors"]}
            for i in env.instances
        ],
        "steps": len(recorded.script),
    }
    return Response(json.dumps(body), media_type="application/json")


def _bubble(message: dict[str, Any]) -> dict[str, Any]:
    text = message["text"]
    return {
        "channel": message["channel"],
        "to": message["to"],
        "text": text if isinstance(text, str) else json.dumps(text),
        "capture": is_capture_call(message.get("request") or {}),
    }
