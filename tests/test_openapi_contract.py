"""Contract test against 8x8's own OpenAPI description of the Automation API.

`tests/data/8x8_automation_api.json` is an unchanged copy of 8x8's published `automation_api.json`
(shared/spec/8x8-openapi). Our *real* responses are validated against its component schemas
(`definition`, `error`), and every operation it lists must exist in our `/openapi.json` under the
same path, method and operationId.

Schema dialect: OpenAPI 3.0 schema objects are an extended subset of JSON Schema draft 5 ("Wright
draft 00"), so they are checked with jsonschema's draft-4 validator; OpenAPI-only keywords
(`example`, `description`, ...) are annotations and ignored. `$ref`s resolve inside the document
through a `referencing.Registry`.

Documented nulls: the 8x8 file declares no `nullable`, although its descriptions say some fields
are null when unset (see the file's README). `DOCUMENTED_NULLS` lists those we rely on; for each,
the schema is widened to also allow null, and the test asserts that the description really says
so. Nothing else of 8x8's schemas is changed.
"""

from __future__ import annotations

import copy
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.support.openapi_8x8 import (
    DOCUMENTED_NULLS,
    OAS,
    OAS_FOR_RESPONSES,
    assert_conforms,
    eight_by_eight_validator,
)
from tests.support.tenants import Tenant

OUR_URI = "urn:relayflow:openapi.json"

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# 8x8 operations relayflow does not implement yet: expected to fail until they are built.
# Our operations whose request body is 8x8's `definitionInput`.
DEFINITION_BODY_OPERATIONS = (
    "create-definition",
    "update-existing-definition",
    "validate-definition",
)


def eight_by_eight_operations() -> list[tuple[str, str, str]]:
    """(method, path, operationId) of every operation in 8x8's file."""
    operations = []
    for path, item in OAS["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                operations.append((method, path, operation["operationId"]))
    return operations


# --- request bodies --------------------------------------------------------------------------

# Valid for relayflow *and* for 8x8's step schemas (8x8's `outputs` schemas describe results, so
# WaitForReply/VoiceMessage/WaitForDTMF steps with real output mappings cannot conform, and `If`
# has no schema at all: this body sticks to the step types 8x8's file can describe).
CONTRACT_BODY: dict[str, Any] = {
    "subAccountId": "acme_sms",
    "trigger": "inbound_sms",
    "status": "enabled",
    "definition": {
        "name": "Contract check",
        "steps": [
            {
                "id": "pause",
                "stepType": "Wait",
                "inputs": {"duration": "00:02:00"},
                "nextStepId": "notify_crm",
            },
            {
                "id": "notify_crm",
                "stepType": "HttpRequest",
                "inputs": {
                    "url": "https://crm.example.com/events",
                    "method": "POST",
                    "headers": {"Authorization": "Bearer token"},
                    "parameters": {"source": "relayflow"},
                    "body": {"umid": "{{data.payload.umid}}", "text": "{{data.payload.body}}"},
                    "timeoutSeconds": 10,
                },
                "outputs": {"crm_code": "{{step.responseCode}}"},
                "nextStepId": "route",
            },
            {
                "id": "route",
                "stepType": "Branch",
                "selectNextStep": {"reply_sms": "{{data.crm_code == 200}}", "reply_chat": None},
            },
            {
                "id": "reply_sms",
                "stepType": "SMS",
                "inputs": {
                    "subAccountId": "acme_sms",
                    "destination": "{{data.payload.source}}",
                    "text": "Thanks, we got it.",
                    "encoding": "AUTO",
                },
                "outputs": {"sms_umid": "{{step.umid}}"},
            },
            {
                "id": "reply_chat",
                "stepType": "ChatAppsMessage",
                "inputs": {
                    "subAccountId": "acme_chat",
                    "user": {"msisdn": "{{data.payload.source}}"},
                    "type": "text",
                    "content": {"text": "Thanks, we got it."},
                },
            },
        ],
    },
}


def contract_body(**top: Any) -> dict[str, Any]:
    """CONTRACT_BODY with top-level fields replaced; a value of None removes the field."""
    body = copy.deepcopy(CONTRACT_BODY)
    for key, value in top.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


async def create(client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any]) -> Any:
    response = await client.post(f"{tenant.base}/definitions", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return response.json()


# --- the schemas are really enforced (so the checks below can fail) ------------------------------


def test_documented_nulls_are_the_only_change() -> None:
    restored = copy.deepcopy(OAS_FOR_RESPONSES)
    for schema_name, prop in DOCUMENTED_NULLS:
        node = restored["components"]["schemas"][schema_name]["properties"][prop]
        node["type"] = node["type"][0]
    assert restored == OAS


@pytest.mark.parametrize(
    ("component", "example"),
    [
        ("error", "invalidDefinitionError"),
        ("error", "invalidDefinitionIdError"),
        ("error", "definitionNotFoundError"),
    ],
)
def test_8x8_examples_conform_to_8x8_schemas(component: str, example: str) -> None:
    assert_conforms(OAS["components"]["examples"][example]["value"], component)


@pytest.mark.parametrize(
    ("description", "mutate"),
    [
        ("no createdAt", lambda d: d.pop("createdAt")),
        ("empty createdAt", lambda d: d.update(createdAt="")),
        ("version 0", lambda d: d.update(version=0)),
        ("no top-level id", lambda d: d.pop("id")),
        ("no accountId", lambda d: d.pop("accountId")),
        ("numeric subAccountId", lambda d: d.update(subAccountId=7)),
        ("unknown trigger", lambda d: d.update(trigger="inbound_email")),
        ("unknown status", lambda d: d.update(status="paused")),
        ("no definition name", lambda d: d["definition"].pop("name")),
        ("step without id", lambda d: d["definition"]["steps"][0].pop("id")),
        ("Wait without duration", lambda d: d["definition"]["steps"][0]["inputs"].clear()),
        (
            "HttpRequest body not object",
            lambda d: d["definition"]["steps"][1]["inputs"].update(body=[]),
        ),
    ],
)
async def test_8x8_definition_schema_rejects_broken_copies_of_our_response(
    client: httpx.AsyncClient, tenant: Tenant, description: str, mutate: Any
) -> None:
    created = await create(client, tenant, contract_body())
    assert_conforms(created, "definition")
    broken = copy.deepcopy(created)
    mutate(broken)
    assert list(eight_by_eight_validator("definition").iter_errors(broken)), description


def test_8x8_error_schema_rejects_a_body_without_error_id() -> None:
    body = {"code": 1000, "message": "Invalid definition id.", "timestamp": "2021-07-13T01:28:37Z"}
    assert list(eight_by_eight_validator("error").iter_errors(body))


# --- definition responses --------------------------------------------------------------------


@pytest.mark.parametrize(
    "top",
    [
        pytest.param({}, id="with-subaccount"),
        pytest.param({"subAccountId": None, "status": None}, id="defaults-null-subaccount"),
    ],
)
async def test_create_response_is_an_8x8_definition(
    client: httpx.AsyncClient, tenant: Tenant, top: dict[str, Any]
) -> None:
    body = contract_body(**top)
    response = await client.post(f"{tenant.base}/definitions", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert_conforms(created, "definition")
    assert response.headers["Location"] == f"{tenant.base}/definitions/{created['id']}"
    assert uuid.UUID(created["id"])
    assert created["accountId"] == tenant.account_id
    assert created["version"] == 1
    assert created["subAccountId"] == body.get("subAccountId")
    assert created["status"] == body.get("status", "disabled")  # 8x8's schema default
    assert created["definition"]["id"] == created["id"]  # spec §5.2: nested id and version too
    assert created["definition"]["version"] == 1


async def test_update_response_is_an_8x8_definition(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await create(client, tenant, contract_body())
    response = await client.put(
        f"{tenant.base}/definitions/{created['id']}",
        json=contract_body(subAccountId=None, status="disabled"),
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert_conforms(updated, "definition")
    assert (updated["id"], updated["version"]) == (created["id"], 2)
    assert updated["subAccountId"] is None
    assert updated["status"] == "disabled"


async def test_list_and_history_items_are_8x8_definitions(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    first = await create(client, tenant, contract_body())
    second = await create(client, tenant, contract_body(subAccountId=None))
    updated = await client.put(
        f"{tenant.base}/definitions/{first['id']}", json=contract_body(), headers=tenant.headers
    )
    assert updated.status_code == 200, updated.text

    listed = await client.get(f"{tenant.base}/definitions", headers=tenant.headers)
    assert listed.status_code == 200, listed.text
    items = listed.json()
    assert isinstance(items, list)
    assert sorted((d["id"], d["version"]) for d in items) == sorted(
        [(first["id"], 2), (second["id"], 1)]
    )
    for item in items:
        assert_conforms(item, "definition")

    history = await client.get(f"{tenant.base}/definitions/{first['id']}", headers=tenant.headers)
    assert history.status_code == 200, history.text
    versions = history.json()
    assert [(d["id"], d["version"]) for d in versions] == [(first["id"], 2), (first["id"], 1)]
    for item in versions:
        assert_conforms(item, "definition")


# --- error responses -------------------------------------------------------------------------

UNKNOWN_ID = "2aa9465e-dec7-4c3e-8fa6-bd168af9eaca"
NAMELESS = {**CONTRACT_BODY, "definition": {"steps": CONTRACT_BODY["definition"]["steps"]}}

# (id, method, path template, credentials, body, HTTP status, code)
ERROR_CASES = [
    ("create-missing-name", "POST", "{base}/definitions", "own", NAMELESS, 400, 5001),
    ("update-missing-name", "PUT", "{base}/definitions/" + UNKNOWN_ID, "own", NAMELESS, 400, 5001),
    ("history-non-uuid", "GET", "{base}/definitions/not-a-uuid", "own", None, 400, 1000),
    ("update-non-uuid", "PUT", "{base}/definitions/not-a-uuid", "own", CONTRACT_BODY, 400, 1000),
    ("delete-non-uuid", "DELETE", "{base}/definitions/12345", "own", None, 400, 1000),
    ("list-without-key", "GET", "{base}/definitions", "none", None, 401, 1200),
    ("create-unknown-key", "POST", "{base}/definitions", "bogus", CONTRACT_BODY, 401, 1200),
    ("list-other-account", "GET", "{other}/definitions", "own", None, 403, 1201),
    ("create-other-account", "POST", "{other}/definitions", "own", CONTRACT_BODY, 403, 1201),
    ("update-unknown", "PUT", "{base}/definitions/" + UNKNOWN_ID, "own", CONTRACT_BODY, 404, 1300),
    ("delete-unknown", "DELETE", "{base}/definitions/" + UNKNOWN_ID, "own", None, 404, 1300),
]


@pytest.mark.parametrize(
    ("method", "template", "credentials", "body", "status", "code"),
    [pytest.param(*case[1:], id=case[0]) for case in ERROR_CASES],
)
async def test_error_bodies_are_8x8_errors(
    client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    method: str,
    template: str,
    credentials: str,
    body: dict[str, Any] | None,
    status: int,
    code: int,
) -> None:
    headers = {
        "own": tenant.headers,
        "none": {},
        "bogus": {"Authorization": "Bearer rf_not_a_real_key"},
    }[credentials]
    path = template.format(base=tenant.base, other=other_tenant.base)
    response = await client.request(method, path, json=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()
    assert_conforms(error, "error")
    assert error["code"] == code, error
    assert uuid.UUID(error["errorId"])  # spec §2: errorId is a UUID
    assert error["timestamp"].endswith("Z")
    assert datetime.fromisoformat(error["timestamp"])
    if code == 5001:
        assert error["message"].startswith("Workflow name is required.")
    elif code == 1000:
        assert error["message"] == "Invalid definition id."
    elif code == 1300:
        assert error["message"] == f"Definition {UNKNOWN_ID} not found."


# --- our OpenAPI document --------------------------------------------------------------------


async def our_openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def test_8x8_documents_fifteen_operations() -> None:
    assert len(list(eight_by_eight_operations())) == 15  # spec §3: 15 endpoints


@pytest.mark.parametrize(
    ("method", "path", "operation_id"),
    [
        pytest.param(method, path, operation_id, id=operation_id)
        for method, path, operation_id in eight_by_eight_operations()
    ],
)
async def test_every_8x8_operation_is_in_our_openapi(
    client: httpx.AsyncClient, method: str, path: str, operation_id: str
) -> None:
    paths = (await our_openapi(client))["paths"]
    assert path in paths, f"{method.upper()} {path} missing from /openapi.json"
    assert method in paths[path], f"{method.upper()} {path} missing from /openapi.json"
    assert paths[path][method].get("operationId") == operation_id


async def test_openapi_and_docs_answer(client: httpx.AsyncClient) -> None:
    document = await our_openapi(client)
    assert document["openapi"].startswith("3.")
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in docs.text


@pytest.mark.parametrize("operation_id", DEFINITION_BODY_OPERATIONS)
async def test_definition_request_bodies_are_documented(
    client: httpx.AsyncClient, operation_id: str
) -> None:
    document = await our_openapi(client)
    operations = {
        operation["operationId"]: operation
        for item in document["paths"].values()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }
    request_body = operations[operation_id]["requestBody"]
    assert request_body["required"] is True
    schema = request_body["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/DefinitionInput"}

    # The documented schema is a real one: it accepts a valid body and rejects invalid ones.
    Draft202012Validator.check_schema(document["components"]["schemas"]["DefinitionInput"])
    registry: Registry[Any] = Registry().with_resource(
        OUR_URI, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    validator = Draft202012Validator(
        {"$ref": f"{OUR_URI}#/components/schemas/DefinitionInput"}, registry=registry
    )
    assert not list(validator.iter_errors(CONTRACT_BODY))
    assert list(validator.iter_errors(contract_body(trigger=None)))
    assert list(validator.iter_errors({**CONTRACT_BODY, "definition": {"name": "x"}}))
    assert list(validator.iter_errors(contract_body(status="paused")))
