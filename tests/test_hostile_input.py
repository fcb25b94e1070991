"""Property-based fuzzing: no input to the definitions API yields a 5xx or changes state
unless it was accepted."""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relayflow.config import Limits
from relayflow.model.validation import validate_definition_input
from tests.support.definitions import sms_definition
from tests.support.hostile import examples, json_values
from tests.support.tenants import Tenant

STEP_TYPES = [
    "SMS",
    "sms",
    "ChatAppsMessage",
    "HttpRequest",
    "Branch",
    "If",
    "Wait",
    "WaitForReply",
    "VoiceMessage",
    "WaitForDTMF",
    "Bogus",
    7,
    None,
]
KEYS = ["id", "stepType", "inputs", "outputs", "nextStepId", "selectNextStep", "do", "ID", "Inputs"]
steps = st.lists(
    st.dictionaries(st.sampled_from(KEYS), json_values | st.sampled_from(STEP_TYPES), max_size=7),
    max_size=5,
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "trigger": st.sampled_from(["inbound_sms", "http_request", "INBOUND_CHAT_APPS", "x"])
        | json_values,
        "status": st.sampled_from(["enabled", "disabled", "on"]) | json_values,
        "subAccountId": json_values,
        "definition": st.fixed_dictionaries(
            {}, optional={"name": json_values, "steps": steps | json_values}
        )
        | json_values,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies)
def test_validator_never_raises(body: dict[str, Any]) -> None:
    result = validate_definition_input(body, Limits())
    assert result.valid or result.problems
    for problem in result.problems:
        assert 5000 < problem.code < 6000
        assert problem.message


async def test_api_survives_fuzzed_bodies(client: httpx.AsyncClient, tenant: Tenant) -> None:
    """Random bodies against create/update/validate: 2xx or a 4xx 8x8 error, never a 5xx."""
    baseline = await client.post(
        f"{tenant.base}/definitions", json=sms_definition(), headers=tenant.headers
    )
    url = f"{tenant.base}/definitions/{baseline.json()['id']}"
    accepted = 0
    for body in examples(bodies, 150):
        for method, target in (
            ("POST", f"{tenant.base}/definitions"),
            ("PUT", url),
            ("POST", f"{tenant.base}/definitions/validate"),
        ):
            response = await client.request(
                method, target, content=json.dumps(body), headers=tenant.headers
            )
            assert response.status_code < 500, (body, response.text)
            if response.status_code >= 400:
                assert {"code", "message", "errorId", "timestamp"} <= set(response.json())
            elif method != "POST" or not target.endswith("validate"):
                accepted += 1
    listed = (await client.get(f"{tenant.base}/definitions", headers=tenant.headers)).json()
    history = (await client.get(url, params={"limit": 500}, headers=tenant.headers)).json()
    creates = len(listed) - 1
    updates = len(history) - 1
    assert creates + updates == accepted  # rejected input changed nothing


async def test_an_id_with_a_trailing_newline_is_not_an_id(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """`^…$` lets `re.match` accept a final newline: ids are matched whole."""
    created = await client.post(
        f"{tenant.base}/definitions", json=sms_definition(), headers=tenant.headers
    )
    definition = created.json()["id"]
    versions = await client.get(
        f"{tenant.base}/definitions/{definition}%0A", headers=tenant.headers
    )
    assert versions.status_code == 400
    assert versions.json()["code"] == 1000
    workflows = f"{tenant.base}/definitions/{definition}/workflows/{'a' * 24}%0A"
    answer = await client.get(workflows, headers=tenant.headers)
    assert answer.status_code == 400
    assert answer.json()["code"] == 1000
