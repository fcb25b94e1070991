"""Configured `Limits` reach every layer: the page sizes of the API and the engine's
expression length (both used to read `Limits()` built at import time, ignoring settings)."""

from __future__ import annotations

import httpx
import pytest

from relayflow.config import Limits, Settings
from tests.support.flows import Flow
from tests.support.tenants import Tenant

LONG_EXPRESSION = "1" + "+1" * 700  # 1,401 characters: over the default limit of 1,000


@pytest.fixture
def settings(database_url: str) -> Settings:
    limits = Limits(max_page_size=5, default_page_size=2, max_expression_length=2000)
    return Settings(database_url=database_url, limits=limits)


async def test_the_configured_page_sizes_bound_lists(
    client: httpx.AsyncClient, tenant: Tenant, flow: Flow
) -> None:
    for _ in range(3):
        await flow.define([{"id": "hold", "stepType": "Wait", "inputs": {"duration": 60}}])
    url = f"{tenant.base}/definitions"

    assert len((await client.get(url, headers=tenant.headers)).json()) == 2
    assert len((await client.get(url, params={"limit": 5}, headers=tenant.headers)).json()) == 3
    refused = await client.get(url, params={"limit": 6}, headers=tenant.headers)
    assert refused.status_code == 400
    assert refused.json()["message"] == (
        "Invalid parameter(s): query.limit: Input should be less than or equal to 5."
    )

    operation = (await client.get("/openapi.json")).json()["paths"][
        "/api/v1/accounts/{accountId}/definitions"
    ]["get"]
    [limit] = [parameter for parameter in operation["parameters"] if parameter["name"] == "limit"]
    assert limit["description"] == "Page size, 1..5."
    assert limit["schema"]["maximum"] == 5
    assert limit["schema"]["default"] == 2


async def test_the_engine_evaluates_expressions_up_to_the_configured_length(flow: Flow) -> None:
    step = {
        "id": "reply",
        "stepType": "SMS",
        "inputs": {
            "subAccountId": "acme_sms",
            "destination": "{{data.payload.source}}",
            "text": "{{" + LONG_EXPRESSION + "}}",
        },
    }
    definition = await flow.define([step])
    [workflow] = (await flow.sms("+6591234567", "hello"))["started"]

    assert await flow.errors(definition, workflow) == []
    assert await flow.logs(definition, workflow) == [("reply", "Complete")]
    [sent] = await flow.call("GET", "/sandbox/outbox", params={"channel": "sms"})
    assert sent["request"]["text"] == "701"
