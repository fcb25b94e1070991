"""The control API: JSON over HTTP on its own port, for tests to steer and inspect the fake.

Inspect: `GET /health`, `/requests?role=&status=`, `/webhooks`, `/faults` (counted rules,
rates, and active outages with their remaining seconds, or null when open-ended).
Steer: `POST /reset` (also ends outages), `/fail`, `/fail-rate`, `/keys`, `/subaccounts`.
Outages: `POST /outage {role="*", mode="503", seconds?, retryAfter?}` fails every request of the
role (sms | chatapps | voice | crm | *) until `seconds` pass or `DELETE /outage` ends them all.
Fault modes (faults.py): 500, 503, 429, 401, 400, slow, drop, lost; outages take any but slow.
Roles are sms, chatapps, voice and crm (the generic site standing for a customer's CRM).
Webhooks: `POST /webhook` (any body) and builders that write 8x8's payloads (spec §11) —
`/webhook/inbound-sms`, `/inbound-chat`, `/sms-receipt`, `/chat-receipt`, `/dtmf`,
`/voice-call-action`, `/session-summary`. Each posts for real and answers
`{status, body, url, response, attempts}` (`status` = what the receiver answered, or null).
Bad control input → 400 `{"error"}`; an unknown umid / session → 404 `{"error"}`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from fake8x8 import webhooks
from fake8x8.state import STATE, FakeState

SESSION = web.AppKey("session", aiohttp.ClientSession)
Spec = dict[str, Any]


class ControlError(Exception):
    """A control request the fake refuses: HTTP `status` and a message for the test author."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ControlError as error:
        return web.json_response({"error": str(error)}, status=error.status)
    except ValueError as error:  # FaultError and bad builder values
        return web.json_response({"error": str(error)}, status=400)


async def _spec(request: web.Request) -> Spec:
    raw = await request.read()
    if not raw:
        return {}
    try:
        spec = json.loads(raw)
    except ValueError as exc:
        raise ControlError(400, f"control body is not JSON: {exc}") from exc
    if not isinstance(spec, dict):
        raise ControlError(400, "control body must be a JSON object")
    return spec


def _need(spec: Spec, name: str, kind: type | tuple[type, ...] = str) -> Any:
    value = spec.get(name)
    if value is None or not isinstance(value, kind) or value == "":
        raise ControlError(400, f"'{name}' is required")
    return value


def _state(request: web.Request) -> FakeState:
    return request.app[STATE]


# ---------------------------------------------------------------------------------------------
# Inspect and steer


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def requests(request: web.Request) -> web.Response:
    role, status = request.query.get("role"), request.query.get("status")
    found = [
        entry
        for entry in _state(request).requests
        if (role is None or entry["role"] == role)
        and (status is None or str(entry["status"]) == status)
    ]
    return web.json_response(found)


async def sent_webhooks(request: web.Request) -> web.Response:
    return web.json_response(_state(request).webhooks)


async def faults(request: web.Request) -> web.Response:
    return web.json_response(_state(request).faults.describe())


async def reset(request: web.Request) -> web.Response:
    _state(request).reset()
    return web.json_response({"ok": True})


async def fail(request: web.Request) -> web.Response:
    _state(request).faults.add(await _spec(request))
    return web.json_response({"ok": True})


async def fail_rate(request: web.Request) -> web.Response:
    _state(request).faults.set_rate(await _spec(request))
    return web.json_response({"ok": True})


async def outage(request: web.Request) -> web.Response:
    state = _state(request)
    state.faults.start_outage(await _spec(request))
    return web.json_response({"ok": True, "outages": state.faults.describe()["outages"]})


async def end_outage(request: web.Request) -> web.Response:
    _state(request).faults.end_outages()
    return web.json_response({"ok": True})


async def keys(request: web.Request) -> web.Response:
    spec = await _spec(request)
    added = spec.get("apiKeys") or [_need(spec, "apiKey")]
    if not all(isinstance(key, str) and key for key in added):
        raise ControlError(400, "API keys must be non-empty strings")
    _state(request).api_keys.update(added)
    return web.json_response({"ok": True, "count": len(_state(request).api_keys)})


async def subaccounts(request: web.Request) -> web.Response:
    ids = (await _spec(request)).get("ids")
    if not isinstance(ids, list) or not all(isinstance(item, str) for item in ids):
        raise ControlError(400, "'ids' must be a list of subaccount ids ([] = accept any)")
    _state(request).subaccounts = set(ids)
    return web.json_response({"ok": True, "ids": sorted(ids)})


# ---------------------------------------------------------------------------------------------
# Webhooks


async def _post(request: web.Request, kind: str, spec: Spec, url: Any, body: Spec) -> web.Response:
    """Deliver `body` to `url` with the spec's delivery options, log it, answer the result."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ControlError(400, "'url' must be an http(s) URL")
    retries = spec.get("retries")
    if retries is not None and (
        not isinstance(retries, list) or not all(isinstance(s, int | float) for s in retries)
    ):
        raise ControlError(400, "'retries' must be a list of seconds, e.g. [1, 10]")
    timeout = spec.get("timeout", 10.0)
    result = await webhooks.deliver(
        request.app[SESSION], url, body, spec.get("headers"), retries, float(timeout)
    )
    _state(request).webhooks.append({"kind": kind, **result})
    return web.json_response(result)


async def raw_webhook(request: web.Request) -> web.Response:
    spec = await _spec(request)
    return await _post(request, "raw", spec, spec.get("url"), _need(spec, "body", dict))


async def inbound_sms(request: web.Request) -> web.Response:
    spec = await _spec(request)
    body = webhooks.inbound_sms(
        _need(spec, "from"), _need(spec, "to"), _need(spec, "text"), _need(spec, "subAccountId")
    )
    return await _post(request, "inbound-sms", spec, spec.get("url"), body)


async def inbound_chat(request: web.Request) -> web.Response:
    spec = await _spec(request)
    version = spec.get("version", 2)
    if version not in (2, 3):
        raise ControlError(400, "'version' must be 2 or 3")
    content = {
        target: spec[source]
        for source, target in (
            ("text", "text"),
            ("payload", "payload"),
            ("mediaUrl", "url"),
            ("location", "location"),
            ("interactive", "interactive"),
        )
        if spec.get(source) is not None
    }
    if not content:
        raise ControlError(400, "give 'text', 'payload', 'interactive', 'location' or 'mediaUrl'")
    channel = webhooks.channel_name(str(spec.get("channel") or "whatsapp"))
    body = webhooks.inbound_chat(
        version, channel, _need(spec, "from"), _need(spec, "subAccountId"), content, spec
    )
    return await _post(request, "inbound-chat", spec, spec.get("url"), body)


def _receipt_options(spec: Spec, states: tuple[str, ...]) -> tuple[str, tuple[int, str] | None]:
    state = _need(spec, "state")
    if state not in states:
        raise ControlError(400, f"'state' must be one of {', '.join(states)}")
    if spec.get("errorCode") is None:
        return state, None
    return state, (int(spec["errorCode"]), str(spec.get("errorMessage") or ""))


def _sent(request: web.Request, role: str, umid: str) -> Spec:
    entry = _state(request).find_sent(role, lambda e: e["answer"].get("umid") == umid)
    if entry is None:
        raise ControlError(404, f"no accepted {role} message with umid {umid}")
    return entry


async def sms_receipt(request: web.Request) -> web.Response:
    spec = await _spec(request)
    state, error = _receipt_options(spec, webhooks.SMS_STATES)
    entry = _sent(request, "sms", _need(spec, "umid"))
    body = webhooks.sms_receipt(
        entry["body"], entry["answer"], entry["subAccountId"], state, spec.get("detail"), error
    )
    url = spec.get("url") or entry["body"].get("dlrCallbackUrl")
    return await _post(request, "sms-receipt", spec, url, body)


def _sent_channel(sent: Spec) -> str:
    channels = sent.get("channels") or []
    name = str(channels[0].get("channel", "whatsapp")) if channels else "whatsapp"
    return "RCS" if name.lower() == "rcs" else name.lower()


async def chat_receipt(request: web.Request) -> web.Response:
    spec = await _spec(request)
    version = spec.get("version", 8)
    if version not in (8, 9):
        raise ControlError(400, "'version' must be 8 or 9")
    state, error = _receipt_options(spec, webhooks.CHAT_STATES)
    entry = _sent(request, "chatapps", _need(spec, "umid"))
    channel = spec.get("channel") or _sent_channel(entry["body"])
    body = webhooks.chat_receipt(
        version,
        entry["body"],
        entry["answer"],
        entry["subAccountId"],
        channel,
        state,
        spec.get("detail"),
        error,
        spec.get("whatsapp"),
    )
    url = spec.get("url") or entry["body"].get("dlrCallbackUrl")
    return await _post(request, "chat-receipt", spec, url, body)


def _first_params(entry: Spec) -> Spec:
    callflow = entry["body"].get("callflow") or [{}]
    params = callflow[0].get("params")
    return params if isinstance(params, dict) else {}


async def dtmf(request: web.Request) -> web.Response:
    spec = await _spec(request)
    digits = _need(spec, "digits")
    wanted_request, wanted_uid = spec.get("clientRequestId"), spec.get("uid")
    if wanted_request is None and wanted_uid is None:
        raise ControlError(400, "give 'clientRequestId' or 'uid'")
    entry = _state(request).find_sent(
        "voice",
        lambda e: (
            (wanted_request is not None and e["body"].get("clientRequestId") == wanted_request)
            or (wanted_uid is not None and e["answer"].get("uid") == wanted_uid)
        ),
    )
    if entry is None:  # a call the fake never saw: the test gives everything
        if not spec.get("url") or not spec.get("destination"):
            raise ControlError(404, "no such voice call; give 'url' and 'destination'")
        uid, destination = wanted_uid or str(uuid.uuid4()), spec["destination"]
        url, client_request_id = spec["url"], wanted_request
    else:
        params = _first_params(entry)
        answer = entry["answer"]
        uid, destination = answer.get("uid") or answer["sessionId"], params["destination"]
        url = spec.get("url") or params.get("dtmfCallbackUrl")
        client_request_id = entry["body"].get("clientRequestId")
    body = webhooks.dtmf_callback(uid, destination, client_request_id, digits)
    return await _post(request, "dtmf", spec, url, body)


def _call(request: web.Request, spec: Spec) -> Spec:
    """sessionId, subAccountId, source, destination of a recorded call (or given in `spec`)."""
    session_id = _need(spec, "sessionId")
    entry = _state(request).find_sent("voice", lambda e: e["answer"].get("sessionId") == session_id)
    if entry is not None:
        params = _first_params(entry)
        return {
            "sessionId": session_id,
            "subAccountId": entry["subAccountId"],
            "source": params["source"],
            "destination": params["destination"],
        }
    if not all(spec.get(name) for name in ("subAccountId", "source", "destination")):
        raise ControlError(
            404, f"no voice session {session_id}; give subAccountId/source/destination"
        )
    return {name: spec[name] for name in ("sessionId", "subAccountId", "source", "destination")}


async def voice_call_action(request: web.Request) -> web.Response:
    spec = await _spec(request)
    digits = spec.get("digits")
    if digits is not None and not isinstance(digits, str):
        raise ControlError(400, "'digits' must be a string (or null)")
    body = webhooks.call_action(_call(request, spec), digits, spec)
    return await _post(request, "voice-call-action", spec, spec.get("url"), body)


async def session_summary(request: web.Request) -> web.Response:
    spec = await _spec(request)
    body = webhooks.session_summary(_call(request, spec), spec.get("status") or "COMPLETED", spec)
    return await _post(request, "session-summary", spec, spec.get("url"), body)


# ---------------------------------------------------------------------------------------------


async def _client_session(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as session:
        app[SESSION] = session
        yield


def control_app(state: FakeState) -> web.Application:
    app = web.Application(middlewares=[_errors])
    app[STATE] = state
    app.cleanup_ctx.append(_client_session)
    routes = app.router
    routes.add_get("/health", health)
    routes.add_get("/requests", requests)
    routes.add_get("/webhooks", sent_webhooks)
    routes.add_get("/faults", faults)
    routes.add_post("/reset", reset)
    routes.add_post("/fail", fail)
    routes.add_post("/fail-rate", fail_rate)
    routes.add_post("/outage", outage)
    routes.add_delete("/outage", end_outage)
    routes.add_post("/keys", keys)
    routes.add_post("/subaccounts", subaccounts)
    routes.add_post("/webhook", raw_webhook)
    routes.add_post("/webhook/inbound-sms", inbound_sms)
    routes.add_post("/webhook/inbound-chat", inbound_chat)
    routes.add_post("/webhook/sms-receipt", sms_receipt)
    routes.add_post("/webhook/chat-receipt", chat_receipt)
    routes.add_post("/webhook/dtmf", dtmf)
    routes.add_post("/webhook/voice-call-action", voice_call_action)
    routes.add_post("/webhook/session-summary", session_summary)
    return app
