"""Differences from 8x8 found in review (issue 14, point 4), each pinned by a test."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from jsonschema import Draft4Validator

from relayflow.api.context import AppContext
from relayflow.config import Limits, Settings
from relayflow.errors import ApiError, ErrorCode
from relayflow.model.validation import validate_definition_input
from tests.support.definitions import sms_definition
from tests.support.flows import Flow
from tests.support.openapi_8x8 import OAS
from tests.support.tenants import Tenant

# --- a. a null name is a missing name (5001) ---------------------------------------------------


@pytest.mark.parametrize("name", [None, "", "   "], ids=["null", "empty", "blank"])
def test_null_or_blank_name_is_8x8s_5001(name: Any) -> None:
    body = sms_definition()
    body["definition"]["name"] = name
    problems = validate_definition_input(body, Limits()).problems
    assert [(p.code, p.message, p.path) for p in problems] == [
        (ErrorCode.NAME_REQUIRED, "Workflow name is required.", "definition.name")
    ]


def test_null_name_in_any_letter_case_is_5001() -> None:
    body = sms_definition()
    del body["definition"]["name"]
    body["definition"]["NAME"] = None
    problems = validate_definition_input(body, Limits()).problems
    assert [p.code for p in problems] == [ErrorCode.NAME_REQUIRED]


async def test_api_answers_5001_for_a_null_name(client: httpx.AsyncClient, tenant: Tenant) -> None:
    body = sms_definition()
    body["definition"]["name"] = None
    response = await client.post(f"{tenant.base}/definitions", json=body, headers=tenant.headers)
    assert response.status_code == 400, response.text
    error = response.json()
    assert (error["code"], error["message"]) == (5001, "Workflow name is required.")
    assert set(error) >= {"code", "message", "errorId", "timestamp"}


# --- d. starting an instance on version 0 is refused --------------------------------------------


async def test_start_on_version_0_is_400_like_delete(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await client.post(
        f"{tenant.base}/definitions", json=sms_definition(), headers=tenant.headers
    )
    assert created.status_code == 201, created.text
    url = f"{tenant.base}/definitions/{created.json()['id']}"
    for params in ({"version": 0}, {"version": -1}):
        started = await client.post(
            f"{url}/workflows", params=params, json={}, headers=tenant.headers
        )
        deleted = await client.delete(url, params=params, headers=tenant.headers)
        assert started.status_code == deleted.status_code == 400, started.text
        assert started.json()["code"] == deleted.json()["code"] == ErrorCode.INVALID_PARAMETER
    listed = await client.get(f"{url}/workflows", headers=tenant.headers)
    assert listed.status_code == 200
    assert listed.json() == []


@pytest.mark.parametrize("version", [0, -3])
async def test_instance_service_refuses_a_version_below_1(
    context: AppContext, tenant: Tenant, version: int
) -> None:
    """The console and the CLI reach the service without the route's query checks."""
    definition = await context.definitions.create(tenant.account_id, sms_definition())
    with pytest.raises(ApiError) as raised:
        await context.instances.start_test(tenant.account_id, definition.id, version, {})
    assert raised.value.code == ErrorCode.INVALID_PARAMETER
    assert await context.instances.counts(tenant.account_id, [definition.id]) == {}


# --- f. VoiceMessage's action defaults to `say` ---------------------------------------------------


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The recording HTTP server of the HttpRequest tests lives on loopback: allow-list it.
    return Settings(database_url=database_url, http_allowlist="127.0.0.0/8")


def test_voice_message_without_action_is_valid() -> None:
    body = sms_definition()
    body["definition"]["steps"] = [
        {
            "id": "call",
            "stepType": "VoiceMessage",
            "inputs": {"subAccountId": "acme_voice", "params": {"text": "Hello"}},
        }
    ]
    result = validate_definition_input(body, Limits())
    assert result.problems == []


async def test_voice_message_without_action_says_its_text(flow: Flow) -> None:
    params = {"source": "+6560000000", "destination": "{{data.phone}}", "text": "Hello"}
    step = {
        "id": "call",
        "stepType": "VoiceMessage",
        "inputs": {"subAccountId": "acme_voice", "params": params},
    }
    definition = await flow.define([step], trigger="http_request")
    [workflow] = await flow.http_trigger({"phone": "+6591112222"})
    [call] = await flow.outbox("voice")
    assert call["request"]["callflow"] == [
        {"action": "say", "params": {**params, "destination": "+6591112222"}}
    ]
    assert (await flow.instance(definition, workflow))["status"] == "Complete"


# --- e. an HttpRequest without a body sends no Content-Type --------------------------------------


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A real HTTP server on loopback that records each request's raw headers and body."""
    seen: list[dict[str, Any]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(
            {
                "method": request.method,
                "headers": [(k.decode().lower(), v.decode()) for k, v in request.raw_headers],
                "body": await request.read(),
            }
        )
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/hook", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/hook", seen
    finally:
        await runner.cleanup()


def _http_step(url: str, method: str, **inputs: Any) -> dict[str, Any]:
    return {
        "id": f"call_{method.lower()}",
        "stepType": "HttpRequest",
        "inputs": {"url": url, "method": method, **inputs},
    }


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
async def test_http_request_without_body_sends_no_content_type(
    flow: Flow, recorder: tuple[str, list[dict[str, Any]]], method: str
) -> None:
    url, seen = recorder
    definition = await flow.define([_http_step(url, method)], trigger="http_request")
    [workflow] = await flow.http_trigger({})
    assert await flow.errors(definition, workflow) == []
    [request] = seen
    assert request["method"] == method
    assert request["body"] == b""
    names = [name for name, _ in request["headers"]]
    assert "content-type" not in names, request["headers"]
    assert "transfer-encoding" not in names, request["headers"]


async def test_http_request_content_types_that_stay(
    flow: Flow, recorder: tuple[str, list[dict[str, Any]]]
) -> None:
    """A JSON body is labelled JSON; a Content-Type the step sets itself is sent even bodiless."""
    url, seen = recorder
    steps = [
        {**_http_step(url, "POST", body={"a": 1}), "nextStepId": "own"},
        {**_http_step(url, "POST", headers={"Content-Type": "text/plain"}), "id": "own"},
    ]
    await flow.define(steps, trigger="http_request")
    await flow.http_trigger({})
    with_body, own = seen
    assert ("content-type", "application/json") in with_body["headers"]
    assert with_body["body"] == b'{"a":1}'
    assert [v for k, v in own["headers"] if k == "content-type"] == ["text/plain"]
    assert own["body"] == b""


# --- b. /steps/functions: parameter defaults are objects or null -------------------------------


def _function_validator() -> Draft4Validator:
    """8x8's `function` schema as it stands, except that `default` may also be null (8x8's own
    example gives `"default": null`) and `example` is untyped (its example gives a string)."""
    schema = copy.deepcopy(OAS["components"]["schemas"]["function"])
    parameter = schema["properties"]["parameters"]["items"]["properties"]
    assert parameter["default"]["type"] == "object"
    parameter["default"]["type"] = ["object", "null"]
    del parameter["example"]["type"]
    Draft4Validator.check_schema(schema)
    return Draft4Validator(schema)


async def test_function_parameter_defaults_conform_to_8x8s_schema(flow: Flow) -> None:
    validator = _function_validator()
    functions = await flow.call("GET", "/steps/functions")
    for function in functions:
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(function)]
        assert errors == [], function["name"]
    [string_contains] = [f for f in functions if f["name"] == "stringContains"]
    [ignore_case] = [p for p in string_contains["parameters"] if p["name"] == "ignoreCase"]
    assert ignore_case["default"] is None
    assert ignore_case["required"] is False
    assert ignore_case["description"].endswith(" Default: false.")


def test_the_schema_check_refuses_a_scalar_default() -> None:
    parameter = {"name": "x", "type": "boolean", "required": False, "description": "d"}
    function = {"name": "f", "description": "d", "example": "f()", "parameters": [parameter]}
    validator = _function_validator()
    assert validator.is_valid({**function, "parameters": [{**parameter, "example": 1}]})
    bad = {**parameter, "example": 1, "default": False}
    assert not validator.is_valid({**function, "parameters": [bad]})


# --- c. /steps/timezones lists Windows display names ---------------------------------------------


async def test_timezones_contains_matches_windows_display_names(flow: Flow) -> None:
    [amsterdam] = await flow.call("GET", "/steps/timezones", params={"contains": "amsterdam"})
    assert amsterdam == {
        "id": "W. Europe Standard Time",
        "name": "Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna (UTC+01:00)",
    }
    assert await flow.call("GET", "/steps/timezones", params={"contains": "AMSTERDAM"}) == [
        amsterdam
    ]
    tokyo = await flow.call("GET", "/steps/timezones", params={"contains": "tokyo"})
    assert tokyo == [{"id": "Tokyo Standard Time", "name": "Osaka, Sapporo, Tokyo (UTC+09:00)"}]


async def test_contains_europe_is_8x8s_example_exactly(flow: Flow) -> None:
    """8x8's example answer to `contains=europe`: ids and names matched, sorted as Windows
    sorts them (offset, then name)."""
    example = OAS["components"]["examples"]["timezones"]["value"]
    assert await flow.call("GET", "/steps/timezones", params={"contains": "europe"}) == example


def test_every_windows_id_has_a_display_name() -> None:
    """Only ids newer than the vendored names fall back to their IANA city; the file names
    only ids tzlocal knows, so a typo in an id cannot hide."""
    from tzlocal.windows_tz import win_tz

    from relayflow.expressions.timezones import TIMEZONES, _places

    names = _places()
    assert set(names) <= set(win_tz)
    fallbacks = {zone["id"]: zone["name"] for zone in TIMEZONES if zone["id"] not in names}
    assert fallbacks == {
        "Alberta Standard Time": "Edmonton (UTC-07:00)",
        "British Columbia Standard Time": "Vancouver (UTC-08:00)",
        "Manitoba Standard Time": "Winnipeg (UTC-06:00)",
    }
