"""Contract test of the instance, trigger, steps and usage endpoints against 8x8's OpenAPI file.

Same approach as `test_openapi_contract.py`: real responses, produced by real flows (the `Flow`
harness runs the worker by hand, so every state is deterministic), are validated against 8x8's
own component schemas in `tests/data/8x8_automation_api.json` with jsonschema's draft-4
validator; `$ref`s resolve inside the document.

Two documented widenings, and nothing else of 8x8's schemas is changed (a test checks that):

- `DOCUMENTED_NULLS`: the file declares no `nullable`, but some descriptions say a field is null
  when unset (see the file's README). For those fields only, null is allowed; the test asserts the
  description really says so. `workflowLog.startedAt/completedAt` are *not* in this list: their
  descriptions do not mention null (see `test_waiting_step_log_is_strictly_an_8x8_workflow_log`).
- `EXAMPLE_TYPED`: `function.parameters[].default` and `.example` are typed `object`, while
  8x8's own `functions` example gives them a string and null (`"default": null,
  "example": "2021-05-25"`). For those two fields only, the type is dropped; the test asserts
  that 8x8's example fails the unchanged schema and passes the widened one.
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.support.flows import Flow
from tests.support.openapi_8x8 import OAS, explain

OAS_URI = "urn:8x8:automation_api.widened.json"

# (component schema, property) -> words of its description that say null is allowed.
DOCUMENTED_NULLS: dict[tuple[str, str], str] = {
    ("workflowInstance", "completedAt"): "Otherwise, null.",
    ("workflowInstanceWithLogs", "completedAt"): "Otherwise, null.",
}
# (component schema, parameter property) -> the 8x8 example value that contradicts its type.
EXAMPLE_TYPED: dict[tuple[str, str], tuple[str, Any]] = {
    ("function", "default"): ("functions", None),
    ("function", "example"): ("functions", "2021-05-25"),
}

WORKFLOW_LOG_STATUSES = {
    "Pending",
    "Running",
    "Complete",
    "Sleeping",
    "WaitingForEvent",
    "Failed",
    "Cancelled",
}
INSTANCE_STATUSES = {"Runnable", "Suspended", "Complete", "Terminated"}
CUSTOMER = "+6591234567"
UNKNOWN_DEFINITION = "2aa9465e-dec7-4c3e-8fa6-bd168af9eaca"
UNKNOWN_WORKFLOW = "60dbe307fe55d99fc083db61"


def _parameter_properties(document: dict[str, Any]) -> dict[str, Any]:
    function = document["components"]["schemas"]["function"]
    properties: dict[str, Any] = function["properties"]["parameters"]["items"]["properties"]
    return properties


def _widened(document: dict[str, Any]) -> dict[str, Any]:
    widened = copy.deepcopy(document)
    schemas = widened["components"]["schemas"]
    for (schema_name, prop), wording in DOCUMENTED_NULLS.items():
        node = schemas[schema_name]["properties"][prop]
        assert wording in node["description"], f"{schema_name}.{prop}: null is not documented"
        assert isinstance(node["type"], str), f"{schema_name}.{prop}: unexpected type"
        node["type"] = [node["type"], "null"]
    for (_schema_name, prop), _example in EXAMPLE_TYPED.items():
        del _parameter_properties(widened)[prop]["type"]
    return widened


OAS_FOR_RESPONSES = _widened(OAS)
REGISTRY: Registry[Any] = Registry().with_resource(
    OAS_URI, Resource.from_contents(OAS_FOR_RESPONSES, default_specification=DRAFT4)
)
STRICT_URI = "urn:8x8:automation_api.strict.json"
STRICT_REGISTRY: Registry[Any] = Registry().with_resource(
    STRICT_URI, Resource.from_contents(OAS, default_specification=DRAFT4)
)


def validator(component: str, *, strict: bool = False) -> Draft4Validator:
    """8x8's `component` schema (widened as documented above unless `strict`)."""
    document, registry, uri = (
        (OAS, STRICT_REGISTRY, STRICT_URI) if strict else (OAS_FOR_RESPONSES, REGISTRY, OAS_URI)
    )
    Draft4Validator.check_schema(document["components"]["schemas"][component])
    return Draft4Validator({"$ref": f"{uri}#/components/schemas/{component}"}, registry=registry)


def violations(instance: Any, component: str, *, strict: bool = False) -> list[ValidationError]:
    return sorted(
        validator(component, strict=strict).iter_errors(instance), key=lambda e: e.json_path
    )


def assert_conforms(instance: Any, component: str, *, strict: bool = False) -> None:
    """`instance` is valid under 8x8's `component` schema; otherwise list every violation."""
    errors = violations(instance, component, strict=strict)
    assert not errors, f"response does not conform to 8x8's '{component}':\n" + explain(errors)


def assert_iso_utc(value: str) -> None:
    assert value.endswith("Z"), value
    assert datetime.fromisoformat(value)


def assert_instance(instance: dict[str, Any], *, with_logs: bool) -> None:
    """An 8x8 workflow instance, with the status sets 8x8 documents."""
    assert_conforms(instance, "workflowInstanceWithLogs" if with_logs else "workflowInstance")
    assert instance["status"] in INSTANCE_STATUSES, instance["status"]
    assert_iso_utc(instance["startedAt"])
    assert_iso_utc(instance["data"]["triggeredAt"])
    if instance["status"] == "Complete":
        assert_iso_utc(instance["completedAt"])
    elif instance["status"] in ("Runnable", "Suspended"):
        assert instance["completedAt"] is None
    elif instance["completedAt"] is not None:  # Terminated: 8x8 does not say (relayflow: null)
        assert_iso_utc(instance["completedAt"])
    if with_logs:
        assert "logs" in instance
        for log in instance["logs"]:
            assert log["status"] in WORKFLOW_LOG_STATUSES, log
            assert uuid.UUID(log["id"])
    else:
        assert "logs" not in instance


def assert_8x8_error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()
    assert_conforms(error, "error")
    assert error["code"] == code, error
    assert uuid.UUID(error["errorId"])
    assert_iso_utc(error["timestamp"])
    return error


def sms(step_id: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "stepType": "SMS",
        "inputs": {"subAccountId": "acme_sms", "destination": CUSTOMER, "text": text},
        **extra,
    }


def wait(step_id: str, duration: str = "00:01:00", **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "stepType": "Wait", "inputs": {"duration": duration}, **extra}


ASK_AND_WAIT = [
    sms("ask", "Reply 1-5", nextStepId="reply"),
    {
        "id": "reply",
        "stepType": "WaitForReply",
        "inputs": {"from": CUSTOMER, "channel": "sms", "timeout": "00:05:00"},
        "outputs": {"answer": "{{step.reply.payload.body}}"},
        "nextStepId": "thanks",
    },
    sms("thanks", "Thanks"),
]
FAULTING = [
    wait("ok", "00:00:01", nextStepId="bad"),
    sms("bad", "{{data.customer.name.first}}"),
]


# --- the widenings are the only change, and the schemas are really enforced ----------------------


def test_widenings_are_the_only_change() -> None:
    restored = copy.deepcopy(OAS_FOR_RESPONSES)
    schemas = restored["components"]["schemas"]
    for schema_name, prop in DOCUMENTED_NULLS:
        node = schemas[schema_name]["properties"][prop]
        node["type"] = node["type"][0]
    for (_schema_name, prop), _example in EXAMPLE_TYPED.items():
        _parameter_properties(restored)[prop]["type"] = "object"
    assert restored == OAS


def test_example_typed_widening_is_forced_by_8x8s_own_example() -> None:
    for (schema_name, prop), (example, value) in EXAMPLE_TYPED.items():
        [first] = OAS["components"]["examples"][example]["value"][:1]
        assert first["parameters"][0][prop] == value
        assert violations(first, schema_name, strict=True), f"{prop}: no conflict any more"
        assert_conforms(first, schema_name)


@pytest.mark.parametrize(
    ("component", "example"),
    [
        ("workflowInstance", "workflowInstance"),
        ("workflowInstanceWithLogs", "workflowInstanceWithLogs"),
        ("workflowErrors", "workflowError"),
        ("error", "invalidDefinitionIdError"),
        ("error", "definitionNotFoundError"),
    ],
)
def test_8x8_examples_conform_to_8x8_schemas(component: str, example: str) -> None:
    assert_conforms(OAS["components"]["examples"][example]["value"], component)


@pytest.mark.parametrize(
    ("component", "example"),
    [
        ("workflowInstance", "workflowInstances"),
        ("timezone", "timezones"),
        ("usageHistory", "usageHistoryResults"),
    ],
)
def test_8x8_list_examples_conform(component: str, example: str) -> None:
    for value in OAS["components"]["examples"][example]["value"]:
        assert_conforms(value, component)


BROKEN_INSTANCES = [
    ("no workflowId", lambda i: i.pop("workflowId")),
    ("no completedAt", lambda i: i.pop("completedAt")),
    ("numeric completedAt", lambda i: i.update(completedAt=0)),
    ("version 0", lambda i: i.update(version=0)),
    ("data without accountId", lambda i: i["data"].pop("accountId")),
    ("data without triggeredAt", lambda i: i["data"].pop("triggeredAt")),
    ("numeric subAccountId", lambda i: i["data"].update(subAccountId=5)),
    ("null startedAt", lambda i: i.update(startedAt=None)),
    ("log without stepName", lambda i: i["logs"][0].pop("stepName")),
    ("log with null completedAt", lambda i: i["logs"][0].update(completedAt=None)),
    ("logs not an array", lambda i: i.update(logs={})),
]


async def test_8x8_instance_schema_rejects_broken_copies_of_our_response(flow: Flow) -> None:
    definition = await flow.define([sms("only", "hi")], trigger="http_request")
    [workflow] = await flow.http_trigger({"x": 1}, subAccountId="sub_1")
    instance = await flow.instance(definition, workflow)
    assert_conforms(instance, "workflowInstanceWithLogs")
    for description, mutate in BROKEN_INSTANCES:
        broken = copy.deepcopy(instance)
        mutate(broken)
        assert violations(broken, "workflowInstanceWithLogs"), description


# --- workflow instances -----------------------------------------------------------------------


async def test_test_start_201_body_and_location(flow: Flow) -> None:
    definition = await flow.define([wait("nap")], status="disabled")
    body = {"namespace": "SMS", "payload": {"source": CUSTOMER, "subAccountId": "sub_x"}}
    response = await flow.client.post(
        f"{flow.tenant.base}/definitions/{definition}/workflows",
        json=body,
        headers=flow.tenant.headers,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert_instance(created, with_logs=False)
    workflow = created["workflowId"]
    assert len(workflow) == 24
    int(workflow, 16)
    assert response.headers["Location"] == (
        f"/api/v1/accounts/{flow.tenant.account_id}/definitions/{definition}/workflows/{workflow}"
    )
    assert (created["definitionId"], created["version"]) == (definition, 1)
    assert created["status"] == "Runnable"
    assert created["data"]["subAccountId"] == "sub_x"
    assert created["data"]["payload"] == body["payload"]
    # The Location is the instance's own address.
    located = await flow.client.get(response.headers["Location"], headers=flow.tenant.headers)
    assert located.status_code == 200, located.text
    assert located.json()["workflowId"] == workflow
    # An empty body is a payload too.
    empty = await flow.client.post(
        f"{flow.tenant.base}/definitions/{definition}/workflows",
        headers=flow.tenant.headers,
    )
    assert empty.status_code == 201, empty.text
    assert_instance(empty.json(), with_logs=False)
    assert "subAccountId" not in empty.json()["data"]


async def test_list_items_are_8x8_workflow_instances(flow: Flow) -> None:
    definition = await flow.define([wait("nap", nextStepId="next"), wait("next")])
    workflows = [await flow.start(definition, {"n": n}) for n in range(5)]
    base = f"/definitions/{definition}/workflows"
    for workflow, command in zip(workflows[1:4], ("suspend", "terminate", "suspend"), strict=True):
        await flow.call("PATCH", f"{base}/{workflow}", json={"status": command})
    await flow.advance(2 * 60_000)
    await flow.advance(2 * 60_000)
    await flow.call("PATCH", f"{base}/{workflows[1]}", json={"status": "resume"})
    await flow.advance(2 * 60_000)
    await flow.advance(2 * 60_000)
    await flow.start(definition, {"n": 5})

    listed = await flow.instances(definition)
    assert len(listed) == 6
    for item in listed:
        assert_instance(item, with_logs=False)
    assert sorted(item["status"] for item in listed) == [
        "Complete",
        "Complete",
        "Complete",
        "Runnable",
        "Suspended",
        "Terminated",
    ]
    for status in sorted(INSTANCE_STATUSES):
        filtered = await flow.instances(definition, status=status)
        assert filtered
        for item in filtered:
            assert_instance(item, with_logs=False)
            assert item["status"] == status


async def test_complete_instance_with_logs(flow: Flow) -> None:
    definition = await flow.define([sms("first", "a", nextStepId="second"), sms("second", "b")])
    [workflow] = (await flow.sms(CUSTOMER, "hello"))["started"]
    instance = await flow.instance(definition, workflow)
    assert_instance(instance, with_logs=True)
    assert instance["status"] == "Complete"
    assert [(log["stepName"], log["status"]) for log in instance["logs"]] == [
        ("first", "Complete"),
        ("second", "Complete"),
    ]
    for log in instance["logs"]:
        assert_iso_utc(log["startedAt"])
        assert_iso_utc(log["completedAt"])
    plain = await flow.call("GET", f"/definitions/{definition}/workflows/{workflow}")
    assert_instance(plain, with_logs=False)
    explicit = await flow.call(
        "GET",
        f"/definitions/{definition}/workflows/{workflow}",
        params={"includeLogs": "false"},
    )
    assert explicit == plain


async def test_faulted_instance_with_logs_and_errors(flow: Flow) -> None:
    definition = await flow.define(FAULTING, trigger="http_request")
    [workflow] = await flow.http_trigger({})
    await flow.advance(1000)
    instance = await flow.instance(definition, workflow)
    assert_instance(instance, with_logs=True)
    assert instance["status"] == "Terminated"
    assert [(log["stepName"], log["status"]) for log in instance["logs"]] == [
        ("ok", "Complete"),
        ("bad", "Failed"),
    ]
    errors = await flow.errors(definition, workflow)
    assert len(errors) == 1
    for error in errors:
        assert_conforms(error, "workflowErrors")
        assert error["workflowId"] == workflow
        assert error["step"] == "bad"
        assert_iso_utc(error["errorTime"])
    # A healthy instance has an empty errors list.
    healthy = await flow.define([sms("fine", "ok")], trigger="http_request")
    started = await flow.http_trigger({})
    [other] = [i["workflowId"] for i in await flow.instances(healthy)]
    assert other in started
    assert await flow.errors(healthy, other) == []


async def test_waiting_instance_with_logs(flow: Flow) -> None:
    definition = await flow.define(ASK_AND_WAIT)
    [workflow] = (await flow.sms(CUSTOMER, "start"))["started"]
    instance = await flow.instance(definition, workflow)
    assert instance["status"] == "Runnable"
    assert [(log["stepName"], log["status"]) for log in instance["logs"]] == [
        ("ask", "Complete"),
        ("reply", "WaitingForEvent"),
    ]
    # Everything but the waiting step's log is strictly 8x8's; that log has no completion time
    # yet (see the strict test below for the schema question).
    waiting = instance["logs"][1]
    assert waiting["completedAt"] is None
    assert_iso_utc(waiting["startedAt"])
    assert_conforms({**waiting, "completedAt": waiting["startedAt"]}, "workflowLog")
    assert_instance({**instance, "logs": instance["logs"][:1]}, with_logs=True)
    assert_instance(instance | {"logs": []}, with_logs=True)
    # The reply completes it.
    await flow.sms(CUSTOMER, "5")
    done = await flow.instance(definition, workflow)
    assert_instance(done, with_logs=True)
    assert done["status"] == "Complete"
    assert [log["status"] for log in done["logs"]] == ["Complete"] * 3


async def test_waiting_step_log_has_no_completion_time(flow: Flow) -> None:
    """Decided (8x8 is silent): a step still sleeping or waiting has `completedAt: null` rather
    than an invented time; everything else of the log is strictly 8x8's `workflowLog`."""
    definition = await flow.define([wait("nap")], trigger="http_request")
    [workflow] = await flow.http_trigger({})
    instance = await flow.instance(definition, workflow)
    [log] = instance["logs"]
    assert (log["stepName"], log["status"], log["completedAt"]) == ("nap", "Sleeping", None)
    completed_shape = {**instance, "logs": [{**log, "completedAt": log["startedAt"]}]}
    assert_conforms(completed_shape, "workflowInstanceWithLogs")


async def test_suspended_and_terminated_instances_with_logs(flow: Flow) -> None:
    definition = await flow.define([wait("nap", nextStepId="more"), wait("more")])
    first = await flow.start(definition)
    second = await flow.start(definition)
    base = f"/definitions/{definition}/workflows"
    await flow.call("PATCH", f"{base}/{first}", json={"status": "suspend"})
    await flow.call("PATCH", f"{base}/{second}", json={"status": "terminate"})
    suspended = await flow.instance(definition, first)
    assert suspended["status"] == "Suspended"
    assert suspended["completedAt"] is None
    assert_conforms(suspended | {"logs": []}, "workflowInstanceWithLogs")
    terminated = await flow.instance(definition, second)
    assert_instance(terminated, with_logs=True)
    assert terminated["status"] == "Terminated"
    assert [log["status"] for log in terminated["logs"]] == ["Cancelled"]


async def test_trigger_body_cannot_break_the_instance_data_shape(flow: Flow) -> None:
    """`data` is the trigger body at the root plus accountId/subAccountId/triggeredAt: a body
    that carries those names with other types must not make `data` violate 8x8's schema."""
    definition = await flow.define([sms("only", "hi")], trigger="http_request")
    hostile = {"accountId": 7, "triggeredAt": ["x"], "subAccountId": {"not": "a string"}}
    [workflow] = await flow.http_trigger(hostile)
    instance = await flow.instance(definition, workflow)
    assert instance["data"]["accountId"] == flow.tenant.account_id
    assert_instance(instance, with_logs=True)


# --- steps and usage ------------------------------------------------------------------------


async def test_timezones_are_8x8_timezones(flow: Flow) -> None:
    zones = await flow.call("GET", "/steps/timezones")
    assert len(zones) > 50
    for zone in zones:
        assert_conforms(zone, "timezone")
    ids = {zone["id"] for zone in zones}
    example = OAS["components"]["examples"]["timezones"]["value"]
    assert {zone["id"] for zone in example} <= ids
    filtered = await flow.call("GET", "/steps/timezones", params={"contains": "EUROPE"})
    assert filtered
    for zone in filtered:
        assert_conforms(zone, "timezone")
        assert "europe" in (zone["id"] + zone["name"]).lower()
    assert await flow.call("GET", "/steps/timezones", params={"contains": "no such zone"}) == []


async def test_functions_are_8x8_functions(flow: Flow) -> None:
    functions = await flow.call("GET", "/steps/functions")
    assert {f["name"] for f in functions} >= {"isDayOfWeek", "stringContains", "isCountryCode"}
    for function in functions:
        assert_conforms(function, "function")
        assert function["example"].startswith(function["name"] + "(")
    [is_day_of_week] = [f for f in functions if f["name"] == "isDayOfWeek"]
    [example] = OAS["components"]["examples"]["functions"]["value"]
    assert [(p["name"], p["type"], p["required"]) for p in is_day_of_week["parameters"]] == [
        (p["name"], p["type"], p["required"]) for p in example["parameters"]
    ]


async def test_usage_and_history_are_8x8_shapes(flow: Flow) -> None:
    empty = await flow.call("GET", "/usage")
    assert_conforms(empty, "usage")
    assert empty["executedWorkflowCount"] == 0
    assert await flow.call("GET", "/usage/history") == []
    await flow.define([wait("w", "00:00:01")], trigger="http_request")
    await flow.http_trigger({})
    await flow.http_trigger({})
    usage = await flow.call("GET", "/usage")
    assert_conforms(usage, "usage")
    example = OAS["components"]["examples"]["usageResults"]["value"]
    assert set(example) <= set(usage)
    for key, value in example.items():
        if key == "allowedWorkflowCount" and usage[key] is None:
            continue  # relayflow extension: null = no quota configured
        if key == "overagePrice":
            assert isinstance(usage[key], int | float), key
        else:
            assert type(usage[key]) is type(value), key
    assert usage["accountId"] == flow.tenant.account_id
    assert usage["executedWorkflowCount"] == 2
    history = await flow.call("GET", "/usage/history")
    assert len(history) == 1
    example_item = OAS["components"]["examples"]["usageHistoryResults"]["value"][0]
    for item in history:
        assert_conforms(item, "usageHistory")
        assert set(item) == set(example_item)
        assert len(item["id"]) == 24
        int(item["id"], 16)
        assert item["executedWorkflowCount"] == 2


# --- error bodies -----------------------------------------------------------------------------

WORKFLOWS = "{base}/definitions/{definition}/workflows"
INSTANCE = WORKFLOWS + "/{workflow}"

# (id, method, path template, params, body, HTTP status, code, message or None)
ERROR_CASES: list[tuple[str, str, str, dict[str, Any], Any, int, int, str | None]] = [
    ("list-non-uuid", "GET", "{base}/definitions/nope/workflows", {}, None, 400, 1000,
     "Invalid definition id."),
    ("start-non-uuid", "POST", "{base}/definitions/12345/workflows", {}, {}, 400, 1000,
     "Invalid definition id."),
    ("get-non-uuid", "GET", "{base}/definitions/x/workflows/" + UNKNOWN_WORKFLOW, {}, None, 400,
     1000, "Invalid definition id."),
    ("get-invalid-workflow", "GET", WORKFLOWS + "/not-hex", {}, None, 400, 1000,
     "Invalid workflow id."),
    ("patch-invalid-workflow", "PATCH", WORKFLOWS + "/" + "g" * 24, {}, {"status": "suspend"},
     400, 1000, "Invalid workflow id."),
    ("errors-invalid-workflow", "GET", WORKFLOWS + "/123/errors", {}, None, 400, 1000,
     "Invalid workflow id."),
    ("list-bad-status", "GET", WORKFLOWS, {"status": "Done"}, None, 400, 1003, None),
    ("list-bad-status-case", "GET", WORKFLOWS, {"status": "complete"}, None, 400, 1003, None),
    ("list-bad-start-time", "GET", WORKFLOWS, {"startTimeFrom": "yesterday"}, None, 400, 1003,
     None),
    ("patch-bad-command", "PATCH", INSTANCE, {}, {"status": "pause"}, 400, 1003, None),
    ("patch-invalid-transition", "PATCH", INSTANCE, {}, {"status": "resume"}, 400, 1310, None),
    ("list-unknown-definition", "GET", "{base}/definitions/" + UNKNOWN_DEFINITION + "/workflows",
     {}, None, 404, 1300, f"Definition {UNKNOWN_DEFINITION} not found."),
    ("start-unknown-definition", "POST",
     "{base}/definitions/" + UNKNOWN_DEFINITION + "/workflows", {}, {}, 404, 1300,
     f"Definition {UNKNOWN_DEFINITION} not found."),
    ("get-unknown-definition", "GET",
     "{base}/definitions/" + UNKNOWN_DEFINITION + "/workflows/" + UNKNOWN_WORKFLOW, {}, None,
     404, 1300, f"Definition {UNKNOWN_DEFINITION} not found."),
    ("get-unknown-workflow", "GET", WORKFLOWS + "/" + UNKNOWN_WORKFLOW, {}, None, 404, 1301,
     f"Workflow {UNKNOWN_WORKFLOW} not found."),
    ("patch-unknown-workflow", "PATCH", WORKFLOWS + "/" + UNKNOWN_WORKFLOW, {},
     {"status": "terminate"}, 404, 1301, f"Workflow {UNKNOWN_WORKFLOW} not found."),
    ("errors-unknown-workflow", "GET", WORKFLOWS + "/" + UNKNOWN_WORKFLOW + "/errors", {}, None,
     404, 1301, f"Workflow {UNKNOWN_WORKFLOW} not found."),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "template", "params", "body", "status", "code", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in ERROR_CASES],
)
async def test_error_bodies_are_8x8_errors(
    flow: Flow,
    method: str,
    template: str,
    params: dict[str, Any],
    body: Any,
    status: int,
    code: int,
    message: str | None,
) -> None:
    definition = await flow.define([wait("nap")], trigger="http_request")
    [workflow] = await flow.http_trigger({})
    path = template.format(base=flow.tenant.base, definition=definition, workflow=workflow)
    before = await flow.instance(definition, workflow)
    response = await flow.client.request(
        method,
        path,
        params=params,
        content=None if body is None else json.dumps(body),
        headers=flow.tenant.headers,
    )
    error = assert_8x8_error(response, status, code)
    if message is not None:
        assert error["message"] == message
    assert await flow.instance(definition, workflow) == before  # a rejection changes nothing


async def test_workflow_of_another_definition_is_not_found(flow: Flow) -> None:
    first = await flow.define([wait("nap")], trigger="http_request")
    second = await flow.define([wait("nap")], status="disabled")
    [workflow] = await flow.http_trigger({})
    response = await flow.client.get(
        f"{flow.tenant.base}/definitions/{second}/workflows/{workflow}",
        headers=flow.tenant.headers,
    )
    error = assert_8x8_error(response, 404, 1301)
    assert error["message"] == f"Workflow {workflow} not found."
    assert (await flow.instance(first, workflow))["workflowId"] == workflow
