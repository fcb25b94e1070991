"""The definitions API, end to end through HTTP (ASGI), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from relayflow.api.context import AppContext
from tests.support.definitions import sms_definition
from tests.support.tenants import Tenant

pytestmark = pytest.mark.asyncio


async def create(client: httpx.AsyncClient, tenant: Tenant, body: Any = None) -> dict[str, Any]:
    response = await client.post(
        f"{tenant.base}/definitions", json=body or sms_definition(), headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def assert_error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert set(body) >= {"code", "message", "errorId", "timestamp"}
    uuid.UUID(body["errorId"])
    assert body["timestamp"].endswith("Z")
    return body


async def test_create_returns_201_location_and_8x8_shape(client, tenant: Tenant) -> None:
    response = await client.post(
        f"{tenant.base}/definitions",
        json=sms_definition(subaccountId="acme_sub"),
        headers=tenant.headers,
    )
    assert response.status_code == 201
    body = response.json()
    definition_id = body["id"]
    assert str(uuid.UUID(definition_id)) == definition_id
    assert response.headers["location"] == f"{tenant.base}/definitions/{definition_id}"
    assert body["version"] == 1
    assert body["accountId"] == "acme"
    assert body["subAccountId"] == "acme_sub"
    assert body["trigger"] == "inbound_sms"
    assert body["status"] == "enabled"
    assert body["createdAt"] == "2023-11-14T22:13:20.000Z"  # the ManualClock's start
    assert body["definition"]["id"] == definition_id
    assert body["definition"]["version"] == 1
    assert body["definition"]["name"] == "Auto reply"
    assert body["definition"]["steps"][0]["inputs"]["text"] == "Thanks!"


async def test_status_defaults_to_disabled(client, tenant: Tenant) -> None:
    body = sms_definition()
    del body["status"]
    assert (await create(client, tenant, body))["status"] == "disabled"


async def test_stored_definition_is_the_canonical_form(client, tenant: Tenant) -> None:
    body = {
        "Trigger": "HTTP_REQUEST",
        "definition": {
            "Name": "quirky",
            "steps": [
                {
                    "ID": "w",
                    "StepType": "wait",
                    "inputs": {"Duration": "1"},
                    "do": [],
                    "outputs": {},
                },
            ],
        },
    }
    created = await create(client, tenant, body)
    assert created["trigger"] == "http_request"
    assert created["definition"]["steps"] == [
        {"id": "w", "stepType": "Wait", "inputs": {"duration": "1"}}
    ]
    history = await client.get(f"{tenant.base}/definitions/{created['id']}", headers=tenant.headers)
    assert history.json()[0]["definition"]["steps"] == created["definition"]["steps"]


async def test_updates_create_versions_newest_first(client, tenant: Tenant) -> None:
    created = await create(client, tenant, sms_definition(name="v1", text="one"))
    url = f"{tenant.base}/definitions/{created['id']}"
    for version, text in ((2, "two"), (3, "three")):
        response = await client.put(
            url, json=sms_definition(name=f"v{version}", text=text), headers=tenant.headers
        )
        assert response.status_code == 200, response.text
        assert response.json()["version"] == version
        assert response.json()["definition"]["version"] == version
        assert response.json()["id"] == created["id"]
    history = (await client.get(url, headers=tenant.headers)).json()
    assert [d["version"] for d in history] == [3, 2, 1]
    assert [d["definition"]["name"] for d in history] == ["v3", "v2", "v1"]
    assert [d["definition"]["steps"][0]["inputs"]["text"] for d in history] == [
        "three",
        "two",
        "one",
    ]
    listed = (await client.get(f"{tenant.base}/definitions", headers=tenant.headers)).json()
    assert [(d["id"], d["version"]) for d in listed] == [(created["id"], 3)]


async def test_history_paging_and_unknown_ids(client, tenant: Tenant) -> None:
    created = await create(client, tenant)
    url = f"{tenant.base}/definitions/{created['id']}"
    for _ in range(3):
        await client.put(url, json=sms_definition(), headers=tenant.headers)
    page = await client.get(url, params={"limit": 2, "offset": 1}, headers=tenant.headers)
    assert [d["version"] for d in page.json()] == [3, 2]
    upper = await client.get(
        f"{tenant.base}/definitions/{created['id'].upper()}", headers=tenant.headers
    )
    assert [d["version"] for d in upper.json()] == [4, 3, 2, 1]
    unknown = await client.get(f"{tenant.base}/definitions/{uuid.uuid4()}", headers=tenant.headers)
    assert unknown.status_code == 200
    assert unknown.json() == []
    bad = await client.get(f"{tenant.base}/definitions/not-a-uuid", headers=tenant.headers)
    assert assert_error(bad, 400, 1000)["message"] == "Invalid definition id."


async def test_list_paging(client, tenant: Tenant, context: AppContext) -> None:
    ids = []
    for index in range(5):
        context.clock.advance(1000)  # type: ignore[attr-defined]
        ids.append((await create(client, tenant, sms_definition(name=f"d{index}")))["id"])
    newest_first = list(reversed(ids))
    everything = await client.get(f"{tenant.base}/definitions", headers=tenant.headers)
    assert [d["id"] for d in everything.json()] == newest_first
    page = await client.get(
        f"{tenant.base}/definitions", params={"limit": 2, "offset": 2}, headers=tenant.headers
    )
    assert [d["id"] for d in page.json()] == newest_first[2:4]
    past_end = await client.get(
        f"{tenant.base}/definitions", params={"offset": 10}, headers=tenant.headers
    )
    assert past_end.json() == []


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 501}, {"limit": "ten"}, {"offset": -1}, {"offset": 2**40}],
)
async def test_bad_paging_parameters(client, tenant: Tenant, params: dict[str, Any]) -> None:
    response = await client.get(f"{tenant.base}/definitions", params=params, headers=tenant.headers)
    body = assert_error(response, 400, 1003)
    assert next(iter(params)) in body["message"]


async def test_update_errors(client, tenant: Tenant) -> None:
    missing_id = uuid.uuid4()
    response = await client.put(
        f"{tenant.base}/definitions/{missing_id}", json=sms_definition(), headers=tenant.headers
    )
    body = assert_error(response, 404, 1300)
    assert body["message"] == f"Definition {missing_id} not found."
    bad = await client.put(
        f"{tenant.base}/definitions/123", json=sms_definition(), headers=tenant.headers
    )
    assert_error(bad, 400, 1000)
    created = await create(client, tenant)
    url = f"{tenant.base}/definitions/{created['id']}"
    invalid = await client.put(url, json={"trigger": "inbound_sms"}, headers=tenant.headers)
    assert_error(invalid, 400, 5001)
    history = (await client.get(url, headers=tenant.headers)).json()
    assert [d["version"] for d in history] == [1]


async def test_delete_one_version_then_all(client, tenant: Tenant) -> None:
    created = await create(client, tenant, sms_definition(name="v1"))
    url = f"{tenant.base}/definitions/{created['id']}"
    for name in ("v2", "v3"):
        await client.put(url, json=sms_definition(name=name), headers=tenant.headers)

    response = await client.delete(url, params={"version": 2}, headers=tenant.headers)
    assert response.status_code == 202
    assert response.content == b""
    assert [d["version"] for d in (await client.get(url, headers=tenant.headers)).json()] == [3, 1]

    await client.delete(url, params={"version": 3}, headers=tenant.headers)
    listed = (await client.get(f"{tenant.base}/definitions", headers=tenant.headers)).json()
    assert [(d["version"], d["definition"]["name"]) for d in listed] == [(1, "v1")]

    # Version numbers are never reused: the next update is 4, not 2.
    updated = await client.put(url, json=sms_definition(name="v4"), headers=tenant.headers)
    assert updated.json()["version"] == 4

    missing_version = await client.delete(url, params={"version": 3}, headers=tenant.headers)
    assert_error(missing_version, 404, 1300)
    assert_error(await client.delete(url, params={"version": 0}, headers=tenant.headers), 400, 1003)

    assert (await client.delete(url, headers=tenant.headers)).status_code == 202
    assert (await client.get(url, headers=tenant.headers)).json() == []
    assert (await client.get(f"{tenant.base}/definitions", headers=tenant.headers)).json() == []
    assert_error(await client.put(url, json=sms_definition(), headers=tenant.headers), 404, 1300)
    assert_error(await client.delete(url, headers=tenant.headers), 404, 1300)
    assert_error(
        await client.delete(f"{tenant.base}/definitions/x", headers=tenant.headers), 400, 1000
    )


async def test_concurrent_updates_get_distinct_versions(client, tenant: Tenant) -> None:
    created = await create(client, tenant)
    url = f"{tenant.base}/definitions/{created['id']}"
    responses = await asyncio.gather(
        *(
            client.put(url, json=sms_definition(name=f"n{i}"), headers=tenant.headers)
            for i in range(6)
        )
    )
    assert sorted(r.status_code for r in responses) == [200] * 6
    assert sorted(r.json()["version"] for r in responses) == [2, 3, 4, 5, 6, 7]
    history = (await client.get(url, headers=tenant.headers)).json()
    assert [d["version"] for d in history] == [7, 6, 5, 4, 3, 2, 1]


async def test_accounts_are_isolated(client, tenant: Tenant, other_tenant: Tenant) -> None:
    mine = await create(client, tenant)
    url_in_other = f"{other_tenant.base}/definitions/{mine['id']}"
    assert (await client.get(url_in_other, headers=other_tenant.headers)).json() == []
    assert (
        await client.get(f"{other_tenant.base}/definitions", headers=other_tenant.headers)
    ).json() == []
    assert_error(
        await client.put(url_in_other, json=sms_definition(), headers=other_tenant.headers),
        404,
        1300,
    )
    assert_error(await client.delete(url_in_other, headers=other_tenant.headers), 404, 1300)
    # Another account's key on my path is forbidden, whatever the operation.
    my_url = f"{tenant.base}/definitions/{mine['id']}"
    assert_error(await client.get(my_url, headers=other_tenant.headers), 403, 1201)
    assert_error(
        await client.put(my_url, json=sms_definition(), headers=other_tenant.headers), 403, 1201
    )
    assert_error(await client.delete(my_url, headers=other_tenant.headers), 403, 1201)
    assert_error(
        await client.get(f"{tenant.base}/definitions", headers=other_tenant.headers), 403, 1201
    )
    assert_error(
        await client.get("/api/v1/accounts/nobody/definitions", headers=other_tenant.headers),
        403,
        1201,
    )
    history = (await client.get(my_url, headers=tenant.headers)).json()
    assert [d["version"] for d in history] == [1]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer rf_nope_nope"},
        {"Authorization": "Bearer not-even-a-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
)
async def test_requests_without_a_valid_key_are_401(
    client, tenant: Tenant, headers: dict[str, str]
) -> None:
    response = await client.get(f"{tenant.base}/definitions", headers=headers)
    assert_error(response, 401, 1200)
    create_attempt = await client.post(
        f"{tenant.base}/definitions", json=sms_definition(), headers=headers
    )
    assert_error(create_attempt, 401, 1200)


async def test_revoked_and_extra_keys(client, tenant: Tenant, context: AppContext) -> None:
    extra = await context.accounts.create_key("acme", "ci")
    extra_headers = {"Authorization": f"Bearer {extra.api_key}"}
    assert (
        await client.get(f"{tenant.base}/definitions", headers=extra_headers)
    ).status_code == 200
    await context.accounts.revoke_key(extra.key_id)
    assert_error(await client.get(f"{tenant.base}/definitions", headers=extra_headers), 401, 1200)
    assert (
        await client.get(f"{tenant.base}/definitions", headers=tenant.headers)
    ).status_code == 200


async def test_validation_error_lists_every_problem(client, tenant: Tenant) -> None:
    body = {
        "trigger": "inbound_sms",
        "definition": {"steps": [{"id": "a", "stepType": "SMS", "inputs": {}, "nextStepId": "zz"}]},
    }
    response = await client.post(f"{tenant.base}/definitions", json=body, headers=tenant.headers)
    error = assert_error(response, 400, 5001)
    assert error["message"].startswith("Workflow name is required.")
    assert [(e["code"], e["path"]) for e in error["errors"]] == [
        (5001, "definition.name"),
        (5009, "definition.steps[0].inputs.subAccountId"),
        (5009, "definition.steps[0].inputs.destination"),
        (5009, "definition.steps[0].inputs.text"),
        (5008, "definition.steps[0].nextStepId"),
    ]
    assert (await client.get(f"{tenant.base}/definitions", headers=tenant.headers)).json() == []


async def test_exactly_8x8s_name_error(client, tenant: Tenant) -> None:
    body = sms_definition()
    del body["definition"]["name"]  # type: ignore[attr-defined]
    response = await client.post(f"{tenant.base}/definitions", json=body, headers=tenant.headers)
    error = assert_error(response, 400, 5001)
    assert error["message"] == "Workflow name is required."


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty"),
        (b"{", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b'{"a": NaN}', "not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, "not valid JSON"),
        (b'{"x": ' + b"[" * 150 + b"]" * 150 + b"}", "nested"),
        (b'{"trigger": "inbound_sms\\u0000"}', "NUL"),
    ],
)
async def test_malformed_bodies_are_400(
    client, tenant: Tenant, content: bytes, fragment: str
) -> None:
    for method, url in (
        ("POST", f"{tenant.base}/definitions"),
        ("POST", f"{tenant.base}/definitions/validate"),
    ):
        response = await client.request(
            method,
            url,
            content=content,
            headers={**tenant.headers, "Content-Type": "application/json"},
        )
        body = assert_error(response, 400, 1004)
        assert fragment in body["message"]
    assert (await client.get(f"{tenant.base}/definitions", headers=tenant.headers)).json() == []


async def test_bodies_over_one_megabyte_are_413(client, tenant: Tenant) -> None:
    huge = sms_definition(text="x" * (1024 * 1024))
    response = await client.post(f"{tenant.base}/definitions", json=huge, headers=tenant.headers)
    assert_error(response, 413, 1400)

    async def chunks():
        for _ in range(20):
            yield b" " * 65536
        yield json.dumps(sms_definition()).encode()

    streamed = await client.post(
        f"{tenant.base}/definitions", content=chunks(), headers=tenant.headers
    )
    assert_error(streamed, 413, 1400)
    assert (await client.get(f"{tenant.base}/definitions", headers=tenant.headers)).json() == []


async def test_validate_is_a_dry_run(client, tenant: Tenant) -> None:
    url = f"{tenant.base}/definitions/validate"
    ok = await client.post(url, json=sms_definition(), headers=tenant.headers)
    assert ok.status_code == 200
    assert ok.json() == {"valid": True, "errors": []}
    bad = await client.post(
        url, json={"trigger": "nope", "definition": {"name": "x"}}, headers=tenant.headers
    )
    assert bad.status_code == 200
    assert bad.json()["valid"] is False
    assert [e["code"] for e in bad.json()["errors"]] == [5002, 5004]
    assert all(set(e) == {"code", "message", "path"} for e in bad.json()["errors"])
    assert (await client.get(f"{tenant.base}/definitions", headers=tenant.headers)).json() == []


async def test_health_and_unknown_routes(client, tenant: Tenant) -> None:
    health = await client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert_error(await client.get("/nowhere"), 404, 1302)
    assert_error(
        await client.patch(f"{tenant.base}/definitions", headers=tenant.headers), 405, 1305
    )


@pytest.mark.parametrize(
    "path", ["/definitions/abc%00", "/definitions?limit=1%00", "/definitions/x?version=%00"]
)
async def test_nul_in_urls_is_400(client, tenant: Tenant, path: str) -> None:
    response = await client.get(f"{tenant.base}{path}", headers=tenant.headers)
    assert_error(response, 400, 1003)
