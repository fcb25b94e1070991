"""The console's operator actions over HTTP (in-process, both databases): the instance page's
Retry (same or latest version) and the instance list's bulk actions with their confirmation
step; CSRF, refusals shown as messages, and account isolation."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.console import Console
from tests.support.flows import Flow
from tests.support.tenants import Tenant

CUSTOMER = "+6591234567"
NAP = {"id": "nap", "stepType": "Wait", "inputs": {"duration": "01:00:00"}}


def send(text: str) -> list[dict[str, Any]]:
    inputs = {"subAccountId": "acme_sms", "destination": CUSTOMER, "text": text}
    return [{"id": "bad", "stepType": "SMS", "inputs": inputs}]


async def failed(flow: Flow) -> tuple[str, str]:
    definition = await flow.define(send("{{data.customer.name}}"), trigger="http_request")
    workflow = await flow.start(definition)
    assert (await flow.instance(definition, workflow))["status"] == "Terminated"
    return definition, workflow


async def test_retry_button_reruns_a_failed_instance_on_the_latest_version(
    console: Console, flow: Flow, tenant: Tenant
) -> None:
    definition, workflow = await failed(flow)
    await console.sign_in(tenant.api_key)
    url = f"/console/definitions/{definition}/workflows/{workflow}"
    page = (await console.get(url)).text
    assert 'id="retry"' in page
    assert "latest version (1)" in page

    await flow.update(definition, send("fixed"), trigger="http_request")
    page = (await console.get(url)).text
    assert "latest version (2)" in page
    response = await console.post(f"{url}/retry", {"version": "latest"})
    assert response.headers["location"] == url
    await flow.run()
    instance = await flow.instance(definition, workflow)
    assert (instance["status"], instance["version"]) == ("Complete", 2)
    assert await flow.texts() == ["fixed"]
    events = await flow.call("GET", f"/definitions/{definition}/workflows/{workflow}/events")
    [retried] = [e for e in events if e["type"] == "instance_retried"]
    assert retried["detail"]["by"] == "console"
    assert 'id="retry"' not in (await console.get(url)).text  # complete: nothing to retry


async def test_retry_refusals_are_messages_and_change_nothing(
    console: Console, flow: Flow, tenant: Tenant
) -> None:
    nap = await flow.define([NAP], trigger="http_request")
    sleeping = await flow.start(nap)
    definition, workflow = await failed(flow)
    await console.sign_in(tenant.api_key)
    url = f"/console/definitions/{definition}/workflows/{workflow}"

    refused = await console.post(f"{url}/retry", {"version": "newest"}, expect=400)
    assert "version must be same or latest" in refused.text
    forged = await console.client.post(f"{url}/retry", data={"version": "same"})
    assert forged.status_code == 403
    page = (await console.get(f"/console/definitions/{nap}/workflows/{sleeping}")).text
    assert 'id="retry"' not in page
    refused = await console.post(
        f"/console/definitions/{nap}/workflows/{sleeping}/retry", {"version": "same"}, expect=400
    )
    assert "Only an instance that a failed step terminated can be retried" in refused.text
    await flow.update(definition, [NAP], trigger="http_request")  # step 'bad' is gone
    refused = await console.post(f"{url}/retry", {"version": "latest"}, expect=400)
    assert "has no step &#39;bad&#39;" in refused.text
    assert (await flow.instance(definition, workflow))["status"] == "Terminated"
    assert (await flow.instance(nap, sleeping))["status"] == "Runnable"
    assert await flow.logs(definition, workflow) == [("bad", "Failed")]


async def test_bulk_action_confirms_the_count_then_applies_to_the_filters(
    console: Console, flow: Flow, tenant: Tenant
) -> None:
    definition = await flow.define([NAP], trigger="http_request")
    other = await flow.define([NAP], trigger="http_request")  # triggered alike, untouched
    for _ in range(3):
        await flow.http_trigger({})
    [first, *rest] = [i["workflowId"] for i in await flow.instances(definition)]
    base = f"/definitions/{definition}/workflows"
    await flow.call("PATCH", f"{base}/{first}", json={"status": "suspend"})
    await console.sign_in(tenant.api_key)

    listing = (await console.get(f"/console{base}?status=Runnable")).text
    assert re.search(r'name="status" value="Runnable"', listing)  # the bulk form's filters
    review = (await console.get(f"/console{base}/bulk?action=suspend&status=Runnable")).text
    assert re.search(r'id="bulk-count"><strong>2</strong> of 2 matching', review)
    assert "Suspend 2 instances" in review
    review = (await console.get(f"/console{base}/bulk?action=terminate")).text
    assert re.search(r"<strong>3</strong> of 3 matching", review)
    review = (await console.get(f"/console{base}/bulk?action=resume")).text
    assert re.search(r"<strong>1</strong> of 3 matching.*2 will be skipped", review, re.S)
    assert [i["status"] for i in await flow.instances(definition)].count("Suspended") == 1

    done = await console.post(
        f"/console{base}/bulk", {"action": "suspend", "status": "Runnable", "version": ""}
    )
    location = done.headers["location"]
    assert location.startswith(f"/console{base}?status=Runnable&done=suspend&changed=2")
    assert "Suspend: 2 changed, 0 skipped" in (await console.get(location)).text
    assert {i["status"] for i in await flow.instances(definition)} == {"Suspended"}
    assert {i["status"] for i in await flow.instances(other)} == {"Runnable"}

    await console.post(f"/console{base}/bulk", {"action": "terminate"})
    assert {i["status"] for i in await flow.instances(definition)} == {"Terminated"}
    assert await flow.logs(definition, rest[0]) == [("nap", "Cancelled")]
    assert {i["status"] for i in await flow.instances(other)} == {"Runnable"}


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"action": "pause"}, "action must be one of"),
        ({"action": "suspend", "status": "Done"}, "status must be one of"),
        ({"action": "suspend", "startTimeFrom": "yesterday"}, "is not a date and time"),
        ({"action": "suspend", "version": "x"}, "is not a whole number"),
    ],
)
async def test_bulk_refuses_bad_input_and_changes_nothing(
    console: Console, flow: Flow, tenant: Tenant, form: dict[str, str], message: str
) -> None:
    definition = await flow.define([NAP], trigger="http_request")
    await flow.http_trigger({})
    await console.sign_in(tenant.api_key)
    url = f"/console/definitions/{definition}/workflows/bulk"
    assert message in (await console.post(url, form, expect=400)).text
    query = "&".join(f"{key}={value}" for key, value in form.items())
    assert message in (await console.get(f"{url}?{query}", expect=400)).text
    forged = await console.client.post(url, data={"action": "suspend"})
    assert forged.status_code == 403
    assert {i["status"] for i in await flow.instances(definition)} == {"Runnable"}


async def test_another_account_cannot_retry_or_bulk(
    console: Console, flow: Flow, other_tenant: Tenant
) -> None:
    definition, workflow = await failed(flow)
    sleeping = await flow.define([NAP], trigger="http_request")
    await flow.http_trigger({})
    await console.sign_in(other_tenant.api_key)
    url = f"/console/definitions/{definition}/workflows/{workflow}"
    await console.post(f"{url}/retry", {"version": "same"}, expect=404)
    bulk = f"/console/definitions/{sleeping}/workflows/bulk"
    await console.get(f"{bulk}?action=terminate", expect=404)
    await console.post(bulk, {"action": "terminate"}, expect=404)
    assert (await flow.instance(definition, workflow))["status"] == "Terminated"
    assert {i["status"] for i in await flow.instances(sleeping)} == {"Runnable"}
