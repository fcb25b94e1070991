"""Prometheus `/metrics` (issue 12): every series moves when its event happens, on both
databases, and no label ever carries an id, a number or a user's string.

Counters are process-wide (prometheus-client's registry), so each test reads the exposition
before and after and compares the difference.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fake8x8.client import Fake8x8
from relayflow.api.context import AppContext
from relayflow.config import Settings
from tests.support.flows import Flow
from tests.support.metric_series import SERIES as deploy_series
from tests.support.tenants import Tenant

SERIES = (
    "relayflow_instances_started_total",
    "relayflow_instances_ended_total",
    "relayflow_instance_duration_seconds",
    "relayflow_instances",
    "relayflow_step_executions_total",
    "relayflow_step_duration_seconds",
    "relayflow_timer_lateness_seconds",
    "relayflow_work_due",
    "relayflow_messages_sent_total",
    "relayflow_provider_request_duration_seconds",
    "relayflow_send_retries_total",
    "relayflow_webhooks_received_total",
    "relayflow_http_requests_total",
    "relayflow_http_request_duration_seconds",
    "relayflow_expression_evaluations_total",
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient) -> tuple[Samples, str]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, response.text


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


class Delta:
    """What changed between two scrapes."""

    def __init__(self, before: Samples, after: Samples) -> None:
        self.before, self.after = before, after

    def __call__(self, name: str, **labels: str) -> float:
        return value(self.after, name, **labels) - value(self.before, name, **labels)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url, secret_key="metrics-test-secret-key-of-enough-length"
    )


@pytest.fixture
async def flow(
    client: httpx.AsyncClient, tenant: Tenant, context: AppContext
) -> AsyncIterator[Flow]:
    context.monitoring.gauge_max_age_s = 0  # read the counts by status at every scrape
    context.monitoring.ended_max_age_s = 0
    return Flow(client, tenant, context)


SMS_STEP = {
    "id": "reply",
    "stepType": "SMS",
    "inputs": {"subAccountId": "acme_sms", "destination": "{{data.phone}}", "text": "Hi"},
}


async def test_an_instance_moves_every_series_of_its_life(flow: Flow) -> None:
    definition = await flow.define(
        [
            {**SMS_STEP, "nextStepId": "pause"},
            {"id": "pause", "stepType": "Wait", "inputs": {"duration": "00:00:05"}},
        ],
        trigger="http_request",
    )
    before, _ = await scrape(flow.client)
    [workflow] = await flow.http_trigger({"phone": "+6591234567"})
    await flow.advance(7000)  # the Wait fires two seconds late
    after, text = await scrape(flow.client)
    delta = Delta(before, after)

    assert (await flow.instance(definition, workflow))["status"] == "Complete"
    assert delta("relayflow_instances_started_total", trigger="http_request") == 1
    assert delta("relayflow_instances_ended_total", status="Complete", failed="false") == 1
    assert delta("relayflow_instance_duration_seconds_count") == 1
    assert delta("relayflow_instance_duration_seconds_sum") == pytest.approx(7.0)
    assert delta("relayflow_step_executions_total", step_type="SMS", status="completed") == 1
    assert delta("relayflow_step_executions_total", step_type="Wait", status="sleeping") == 1
    assert delta("relayflow_step_executions_total", step_type="Wait", status="completed") == 1
    assert delta("relayflow_step_duration_seconds_count", step_type="SMS") == 1
    assert delta("relayflow_timer_lateness_seconds_count") == 1
    assert delta("relayflow_timer_lateness_seconds_sum") == pytest.approx(2.0)
    sent = {"channel": "sms", "provider": "sandbox"}
    assert delta("relayflow_messages_sent_total", outcome="accepted", **sent) == 1
    assert delta("relayflow_provider_request_duration_seconds_count", **sent) == 1
    assert delta("relayflow_expression_evaluations_total", outcome="ok") == 1  # {{data.phone}}
    route = "/api/v1/accounts/{accountId}/triggers/http_request"
    assert delta("relayflow_http_requests_total", route=route, method="POST", status="200") == 1
    assert delta("relayflow_http_request_duration_seconds_count", route=route, method="POST") == 1
    # The database's own view: this test's database holds this one instance.
    assert value(after, "relayflow_instances", status="Complete") == 1
    assert value(after, "relayflow_instances", status="Runnable") == 0
    assert value(after, "relayflow_work_due") == 0
    for name in SERIES:
        assert f"# TYPE {name} " in text, name
    assert workflow not in text
    assert "6591234567" not in text
    assert definition not in text


async def test_a_failed_step_is_counted_with_its_instance(flow: Flow) -> None:
    broken = {**SMS_STEP, "inputs": {**SMS_STEP["inputs"], "text": "{{data.missing.deeper}}"}}
    await flow.define([broken], trigger="http_request")
    before, _ = await scrape(flow.client)
    await flow.http_trigger({"phone": "+6591234567"})
    delta = Delta(before, (await scrape(flow.client))[0])

    assert delta("relayflow_instances_ended_total", status="Terminated", failed="true") == 1
    assert delta("relayflow_step_executions_total", step_type="SMS", status="failed") == 1
    assert delta("relayflow_expression_evaluations_total", outcome="error") == 1
    assert delta("relayflow_messages_sent_total", channel="sms", provider="sandbox",
                 outcome="accepted") == 0  # fmt: skip


async def test_a_terminated_instance_is_counted_as_not_failed(flow: Flow) -> None:
    definition = await flow.define(
        [{"id": "pause", "stepType": "Wait", "inputs": {"duration": "01:00:00"}}],
        trigger="http_request",
    )
    [workflow] = await flow.http_trigger({})
    before, _ = await scrape(flow.client)
    await flow.call(
        "PATCH", f"/definitions/{definition}/workflows/{workflow}", json={"status": "terminate"}
    )
    delta = Delta(before, (await scrape(flow.client))[0])
    assert delta("relayflow_instances_ended_total", status="Terminated", failed="false") == 1
    assert delta("relayflow_instance_duration_seconds_count") == 1


async def test_due_work_and_statuses_come_from_the_database(
    flow: Flow, context: AppContext
) -> None:
    await flow.define(
        [{"id": "pause", "stepType": "Wait", "inputs": {"duration": "00:00:05"}}],
        trigger="http_request",
    )
    await flow.http_trigger({})
    await flow.http_trigger({})
    flow.clock.advance(6000)  # both timers are due; no worker runs
    samples, _ = await scrape(flow.client)
    assert value(samples, "relayflow_work_due") == 2
    assert value(samples, "relayflow_instances", status="Runnable") == 2


async def test_webhooks_are_counted_by_outcome(client: httpx.AsyncClient, tenant: Tenant) -> None:
    url = f"/webhooks/{tenant.account_id}/sms"
    event = {
        "namespace": "SMS",
        "eventType": "inbound_message_received",
        "payload": {
            "umid": "9f1c3c3a-3a7e-4c07-9d6e-2a8e8e0f0001",
            "source": "+6591234567",
            "destination": "+6580000000",
            "body": "hello",
            "subAccountId": "acme_sms",
        },
    }
    token = {"token": tenant.webhook_token}
    before, _ = await scrape(client)
    assert (await client.post(url, json=event, params={"token": "wrong"})).status_code == 401
    assert (await client.post(url, content=b"{not json", params=token)).status_code == 400
    assert (await client.post(url, json=event, params=token)).status_code == 200
    assert (await client.post(url, json=event, params=token)).status_code == 200
    delta = Delta(before, (await scrape(client))[0])
    for outcome in ("unauthorized", "invalid", "accepted", "duplicate"):
        assert delta("relayflow_webhooks_received_total", kind="sms", outcome=outcome) == 1


async def test_labels_stay_bounded_whatever_the_requests(client: httpx.AsyncClient) -> None:
    before, _ = await scrape(client)
    for n in range(5):
        await client.get(f"/no/such/path/{n}-secret")
        await client.request("BREW", "/healthz")
    after, text = await scrape(client)
    delta = Delta(before, after)
    assert delta("relayflow_http_requests_total", route="unmatched", method="GET",
                 status="404") == 5  # fmt: skip
    assert delta("relayflow_http_requests_total", route="/healthz", method="other",
                 status="405") == 5  # fmt: skip
    assert "secret" not in text
    assert "BREW" not in text


async def test_console_pages_are_labelled_by_their_template(
    client: httpx.AsyncClient,
) -> None:
    before, _ = await scrape(client)
    await client.get("/console/login")
    delta = Delta(before, (await scrape(client))[0])
    assert delta("relayflow_http_requests_total", route="/console/login", method="GET",
                 status="200") == 1  # fmt: skip


def family_names(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}


async def test_the_exposition_parses_and_holds_only_relayflow_and_process_series(
    client: httpx.AsyncClient,
) -> None:
    _, text = await scrape(client)
    names: set[str] = family_names(text)
    ours = {name for name in names if name.startswith("relayflow_")}
    assert {name.removesuffix("_total") for name in SERIES} <= ours


async def test_the_series_are_the_ones_the_dashboard_and_the_readme_name(flow: Flow) -> None:
    """tests/test_deploy.py holds the list the Grafana dashboard is checked against: the live
    exposition must have each series with that type and exactly those labels."""
    await flow.define([SMS_STEP], trigger="http_request")
    await flow.http_trigger({"phone": "+6591234567"})
    _, text = await scrape(flow.client)
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert {series.name for series in deploy_series} == set(SERIES)
    for series in deploy_series:
        family = families[series.name.removesuffix("_total")]
        assert family.type == series.kind, series.name
        for sample in family.samples:
            assert set(sample.labels) - {"le"} == set(series.labels), sample


KEY = "metrics-8x8-api-key-0001"


@pytest.fixture(scope="module")
def fake() -> Iterator[Fake8x8]:
    with Fake8x8(api_keys=(KEY,)) as server:
        yield server


@pytest.mark.slow
async def test_a_send_retried_through_8x8_is_counted_per_attempt(
    flow: Flow, context: AppContext, tenant: Tenant, fake: Fake8x8
) -> None:
    urls = fake.urls
    await context.provider_settings.use_8x8(
        tenant.account_id, KEY, sms_url=urls.sms, chatapps_url=urls.chatapps, voice_url=urls.voice
    )
    try:
        fake.reset()
        await flow.define([SMS_STEP], trigger="http_request")
        fake.fail(role="sms", mode="503", count=1)
        before, _ = await scrape(flow.client)
        await flow.http_trigger({"phone": "+6591234567"})
        await flow.advance(5000)  # past the first backoff (at most 1 s + jitter)
        delta = Delta(before, (await scrape(flow.client))[0])
    finally:
        await context.providers.close()
    sent = {"channel": "sms", "provider": "8x8"}
    assert delta("relayflow_messages_sent_total", outcome="failed", **sent) == 1
    assert delta("relayflow_messages_sent_total", outcome="accepted", **sent) == 1
    assert delta("relayflow_send_retries_total", channel="sms") == 1
    assert delta("relayflow_step_executions_total", step_type="SMS", status="retrying") == 1
    assert delta("relayflow_provider_request_duration_seconds_count", **sent) == 2
