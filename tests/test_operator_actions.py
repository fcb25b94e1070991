"""Operator actions through the REST API, on SQLite and PostgreSQL: retrying a failed instance
from its failed step, and bulk suspend / resume / terminate over the instance list's filters."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from relayflow.clock import iso_from_ms
from relayflow.services import operations
from tests.support.flows import Flow
from tests.support.tenants import Tenant

MINUTE = 60_000
CUSTOMER = "+6591234567"


def send(step_id: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "stepType": "SMS",
        "inputs": {"subAccountId": "acme_sms", "destination": CUSTOMER, "text": text},
        **extra,
    }


BROKEN = "{{data.customer.name.first}}"  # faults: data has no customer
NAP = {"id": "nap", "stepType": "Wait", "inputs": {"duration": "01:00:00"}}


async def failed_instance(flow: Flow, steps: list[dict[str, Any]]) -> tuple[str, str]:
    definition = await flow.define(steps, trigger="http_request")
    [workflow] = await flow.http_trigger({"order": 7})
    await flow.advance(1000)
    assert (await flow.instance(definition, workflow))["status"] == "Terminated"
    return definition, workflow


async def events(flow: Flow, definition: str, workflow: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await flow.call(
        "GET", f"/definitions/{definition}/workflows/{workflow}/events"
    )
    return found


async def retry(
    flow: Flow, definition: str, workflow: str, expect: int = 200, **params: Any
) -> Any:
    return await flow.call(
        "POST", f"/definitions/{definition}/workflows/{workflow}/retry", expect, params=params
    )


async def test_retry_reruns_the_failed_step_and_completes_once_fixed(flow: Flow) -> None:
    steps = [
        {"id": "ok", "stepType": "Wait", "inputs": {"duration": "00:00:01"}, "nextStepId": "bad"},
        send("bad", BROKEN, nextStepId="done"),
        send("done", "bye"),
    ]
    definition, workflow = await failed_instance(flow, steps)

    again = await retry(flow, definition, workflow)  # same version: the same fault
    assert (again["status"], again["version"], again["completedAt"]) == ("Runnable", 1, None)
    assert again["data"]["order"] == 7
    await flow.run()
    assert await flow.logs(definition, workflow) == [
        ("ok", "Complete"),
        ("bad", "Failed"),
        ("bad", "Failed"),
    ]
    assert len(await flow.errors(definition, workflow)) == 2

    steps[1] = send("bad", "Order {{data.order}} is ready", nextStepId="done")
    assert await flow.update(definition, steps, trigger="http_request") == 2
    moved = await retry(flow, definition, workflow, version="latest")
    assert (moved["status"], moved["version"]) == ("Runnable", 2)
    await flow.run()
    instance = await flow.instance(definition, workflow)
    assert instance["status"] == "Complete"
    assert instance["data"]["order"] == 7
    assert [(log["stepName"], log["status"]) for log in instance["logs"]] == [
        ("ok", "Complete"),
        ("bad", "Failed"),
        ("bad", "Failed"),
        ("bad", "Complete"),
        ("done", "Complete"),
    ]
    assert await flow.texts() == ["Order 7 is ready", "bye"]
    retried = [
        e for e in await events(flow, definition, workflow) if e["type"] == "instance_retried"
    ]
    assert [
        (e["step"], e["detail"]["by"], e["detail"]["fromVersion"], e["detail"]["version"])
        for e in retried
    ] == [
        ("bad", "api", 1, 1),
        ("bad", "api", 1, 2),
    ]
    assert [i["workflowId"] for i in await flow.instances(definition, version=2)] == [workflow]


async def test_retry_inside_an_if_branch_continues_after_the_if(flow: Flow) -> None:
    """The fault cancelled the If and its other branch; a retry re-runs the failed step only,
    the If completes when its branch ends, and the step after the If runs."""
    steps = [
        {
            "id": "check",
            "stepType": "If",
            "inputs": {"condition": "{{true}}"},
            "do": [[send("bad", BROKEN)], [NAP]],
            "nextStepId": "after",
        },
        send("after", "after the if"),
    ]
    definition, workflow = await failed_instance(flow, steps)
    assert await flow.logs(definition, workflow) == [
        ("check", "Cancelled"),
        ("bad", "Failed"),
        ("nap", "Cancelled"),
    ]
    steps[0]["do"][0] = [send("bad", "fixed")]
    await flow.update(definition, steps, trigger="http_request")
    await retry(flow, definition, workflow, version="latest")
    await flow.run()
    assert (await flow.instance(definition, workflow))["status"] == "Complete"
    assert sorted(await flow.logs(definition, workflow)) == sorted(
        [
            ("check", "Complete"),
            ("bad", "Failed"),
            ("nap", "Cancelled"),
            ("bad", "Complete"),
            ("after", "Complete"),
        ]
    )
    assert await flow.texts() == ["fixed", "after the if"]


async def test_retry_on_latest_needs_the_step_in_the_same_place(flow: Flow) -> None:
    steps = [send("bad", BROKEN)]
    definition, workflow = await failed_instance(flow, steps)
    before = (await flow.instance(definition, workflow), await events(flow, definition, workflow))

    await flow.update(definition, [send("renamed", "hi")], trigger="http_request")
    error = await retry(flow, definition, workflow, expect=400, version="latest")
    assert error["code"] == 1003
    assert "no step 'bad'" in error["message"]
    assert set(error) >= {"code", "message", "errorId", "timestamp"}

    nested = [
        {"id": "wrap", "stepType": "If", "inputs": {"condition": True}, "do": [[send("bad", "hi")]]}
    ]
    await flow.update(definition, nested, trigger="http_request")
    error = await retry(flow, definition, workflow, expect=400, version="latest")
    assert "not inside the same If" in error["message"]

    after = (await flow.instance(definition, workflow), await events(flow, definition, workflow))
    assert after == before  # nothing changed: status, version, logs, audit events
    assert after[0]["version"] == 1


async def test_retry_refuses_instances_a_step_did_not_fail(flow: Flow) -> None:
    definition = await flow.define([NAP], trigger="http_request")
    [running] = await flow.http_trigger({})
    [suspended] = await flow.http_trigger({})
    [stopped] = await flow.http_trigger({})
    base = f"/definitions/{definition}/workflows"
    await flow.call("PATCH", f"{base}/{suspended}", json={"status": "suspend"})
    await flow.call("PATCH", f"{base}/{stopped}", json={"status": "terminate"})
    for workflow, status in ((running, "Runnable"), (suspended, "Suspended")):
        error = await retry(flow, definition, workflow, expect=400)
        assert error["code"] == 1310
        assert status in error["message"]
    error = await retry(flow, definition, stopped, expect=400)
    assert (error["code"], "terminated by a user" in error["message"]) == (1310, True)
    await flow.advance(61 * MINUTE)
    assert (await flow.instance(definition, running))["status"] == "Complete"
    assert (await retry(flow, definition, running, expect=400))["code"] == 1310

    assert (await retry(flow, definition, "0" * 24, expect=404))["code"] == 1301
    assert (await retry(flow, definition, "nothex", expect=400))["code"] == 1000
    assert (await retry(flow, definition, running, expect=400, version="newest"))["code"] == 1003


async def test_a_retried_instance_terminated_by_a_user_cannot_be_retried(flow: Flow) -> None:
    definition, workflow = await failed_instance(flow, [send("bad", BROKEN)])
    await retry(flow, definition, workflow)
    path = f"/definitions/{definition}/workflows/{workflow}"
    await flow.call("PATCH", path, json={"status": "terminate"})
    error = await retry(flow, definition, workflow, expect=400)
    assert "terminated by a user" in error["message"]


async def test_retry_and_bulk_are_isolated_per_account(
    flow: Flow, client: httpx.AsyncClient, other_tenant: Tenant
) -> None:
    definition, workflow = await failed_instance(flow, [send("bad", BROKEN)])
    other = Flow(client, other_tenant, flow.context)
    error = await retry(other, definition, workflow, expect=404)
    assert error["code"] == 1300
    error = await other.call(
        "POST", f"/definitions/{definition}/workflows/bulk", 404, json={"action": "terminate"}
    )
    assert error["code"] == 1300
    response = await client.post(  # the other account's key on this account's path
        f"{flow.tenant.base}/definitions/{definition}/workflows/{workflow}/retry",
        headers=other_tenant.headers,
    )
    assert response.status_code == 403
    assert (await flow.instance(definition, workflow))["status"] == "Terminated"


async def bulk(flow: Flow, definition: str, expect: int = 200, **body: Any) -> Any:
    return await flow.call("POST", f"/definitions/{definition}/workflows/bulk", expect, json=body)


async def statuses(flow: Flow, definition: str) -> dict[str, str]:
    found = await flow.instances(definition, version="1")
    found += await flow.instances(definition)
    return {i["workflowId"]: i["status"] for i in found}


async def test_bulk_actions_follow_the_filters_exactly(flow: Flow) -> None:
    definition = await flow.define([NAP], trigger="http_request")
    [old_a] = await flow.http_trigger({})
    flow.clock.advance(MINUTE)
    [old_b] = await flow.http_trigger({})
    middle = iso_from_ms(flow.clock.now_ms())
    flow.clock.advance(MINUTE)
    [old_c] = await flow.http_trigger({})
    await flow.update(definition, [NAP], trigger="http_request")
    [new_a] = await flow.http_trigger({})
    [new_b] = await flow.http_trigger({})

    # No version: the latest version's instances, as the list shows them.
    assert await bulk(flow, definition, action="suspend") == {
        "action": "suspend",
        "matched": 2,
        "changed": 2,
        "skipped": 0,
    }
    assert await statuses(flow, definition) == {
        old_a: "Runnable",
        old_b: "Runnable",
        old_c: "Runnable",
        new_a: "Suspended",
        new_b: "Suspended",
    }
    # Version 1 from a start time: b and c only.
    result = await bulk(flow, definition, action="SUSPEND", version=1, startTimeFrom=middle)
    assert (result["matched"], result["changed"], result["skipped"]) == (2, 2, 0)
    assert (await statuses(flow, definition))[old_a] == "Runnable"
    # Every version, Suspended only: four resumed, a untouched.
    result = await bulk(flow, definition, action="resume", version="all", status="Suspended")
    assert (result["matched"], result["changed"], result["skipped"]) == (4, 4, 0)
    assert set((await statuses(flow, definition)).values()) == {"Runnable"}
    await flow.run()

    await flow.call(
        "PATCH", f"/definitions/{definition}/workflows/{new_a}", json={"status": "suspend"}
    )
    # Resume over everything: only the suspended one fits.
    result = await bulk(flow, definition, action="resume", version="all")
    assert (result["matched"], result["changed"], result["skipped"]) == (5, 1, 4)
    # Terminate up to a start time: a and b; then everything: the other three.
    result = await bulk(flow, definition, action="terminate", version="all", startTimeTo=middle)
    assert (result["matched"], result["changed"], result["skipped"]) == (2, 2, 0)
    assert await statuses(flow, definition) == {
        old_a: "Terminated",
        old_b: "Terminated",
        old_c: "Runnable",
        new_a: "Runnable",
        new_b: "Runnable",
    }
    result = await bulk(flow, definition, action="terminate", version="all")
    assert (result["matched"], result["changed"], result["skipped"]) == (5, 3, 2)
    # The single-instance terminate's path: pointers cancelled, the event recorded.
    assert await flow.logs(definition, new_b) == [("nap", "Cancelled")]
    kinds = [e["type"] for e in await events(flow, definition, new_b)]
    assert kinds[-1] == "instance_terminated"
    await flow.advance(2 * 60 * MINUTE)
    assert set((await statuses(flow, definition)).values()) == {"Terminated"}


async def test_bulk_works_in_batches(flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(operations, "BATCH", 2)  # five instances: three batches
    definition = await flow.define([NAP], trigger="http_request")
    started = [(await flow.http_trigger({}))[0] for _ in range(5)]
    result = await bulk(flow, definition, action="suspend")
    assert (result["matched"], result["changed"], result["skipped"]) == (5, 5, 0)
    result = await bulk(flow, definition, action="suspend")
    assert (result["matched"], result["changed"], result["skipped"]) == (5, 0, 5)
    result = await bulk(flow, definition, action="terminate", status="Suspended")
    assert (result["matched"], result["changed"], result["skipped"]) == (5, 5, 0)
    assert set((await statuses(flow, definition)).values()) == {"Terminated"}
    assert len(started) == 5


async def test_bulk_by_contact(flow: Flow) -> None:
    definition = await flow.define([NAP])
    await flow.sms(CUSTOMER, "hello")
    await flow.sms("+6598765432", "hello")
    await flow.sms(CUSTOMER, "again")
    result = await bulk(flow, definition, action="terminate", contact="+65 9123 4567")
    assert (result["matched"], result["changed"], result["skipped"]) == (2, 2, 0)
    assert sorted((await statuses(flow, definition)).values()) == [
        "Runnable",
        "Terminated",
        "Terminated",
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"action": "pause"},
        {},
        {"action": "suspend", "stauts": "Runnable"},  # a misspelt filter must not widen it
        {"action": "suspend", "status": "Done"},
        {"action": "suspend", "version": 0},
        {"action": "suspend", "version": "newest"},
        {"action": "suspend", "startTimeFrom": "yesterday"},
        {"action": "suspend", "contact": ""},
        ["suspend"],
    ],
)
async def test_bulk_refuses_bad_bodies_and_changes_nothing(flow: Flow, body: Any) -> None:
    definition = await flow.define([NAP], trigger="http_request")
    [workflow] = await flow.http_trigger({})
    error = await flow.call("POST", f"/definitions/{definition}/workflows/bulk", 400, json=body)
    assert error["code"] in (1003, 1004)
    assert set(error) >= {"code", "message", "errorId", "timestamp"}
    assert (await flow.instance(definition, workflow))["status"] == "Runnable"


async def test_bulk_refuses_a_body_that_is_not_json(flow: Flow) -> None:
    definition = await flow.define([NAP], trigger="http_request")
    error = await flow.call(
        "POST", f"/definitions/{definition}/workflows/bulk", 400, content=b"action=suspend"
    )
    assert error["code"] == 1004
    missing = await flow.call(
        "POST",
        f"/definitions/{'1' * 8}-1111-4111-8111-{'1' * 12}/workflows/bulk",
        404,
        json={"action": "suspend"},
    )
    assert missing["code"] == 1300
