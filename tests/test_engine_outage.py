"""Outages lose nothing (issue 9), on a virtual clock: the engine runs in-process with a manual
clock while the fake 8x8 (a real HTTP server in its own process) is down; the test moves time
one second at a time and ends the outage when ten virtual minutes have passed.

Checked from both sides: relayflow's own record (step logs, retry events) and the fake's record
of every request it received.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from fake8x8.client import Fake8x8
from relayflow.api.context import AppContext
from relayflow.clock import iso_from_ms
from relayflow.config import Settings
from relayflow.engine.retry import RetryPolicy
from tests.support.flows import Flow
from tests.support.processes import free_port
from tests.support.tenants import Tenant

pytestmark = pytest.mark.slow

KEY = "outage-8x8-api-key-0001"
SECRET = "outage-test-secret-key-of-sufficient-length"
SUB = "acme_outage"
SECOND = 1000
MINUTE = 60 * SECOND
WINDOW_S = 900  # 15 minutes: a 10-minute outage fits, a 20-minute one does not
POLICY = RetryPolicy(initial_interval_s=1, max_interval_s=300, window_s=WINDOW_S)
DRAIN_RATE = 10  # the default RELAYFLOW_BREAKER_DRAIN_RATE
THRESHOLD = 5  # the default RELAYFLOW_BREAKER_FAILURE_THRESHOLD


@pytest.fixture(scope="module")
def fake() -> Iterator[Fake8x8]:
    with Fake8x8(api_keys=(KEY,)) as server:
        yield server


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        http_allowlist="127.0.0.0/8",
        secret_key=SECRET,
        retry_window_seconds=WINDOW_S,
    )


@pytest.fixture
async def flow(
    client: httpx.AsyncClient, tenant: Tenant, context: AppContext, fake: Fake8x8
) -> AsyncIterator[Flow]:
    fake.reset()
    urls = fake.urls
    await context.provider_settings.use_8x8(
        tenant.account_id,
        KEY,
        sms_url=urls.sms,
        chatapps_url=urls.chatapps,
        voice_url=urls.voice,
    )
    yield Flow(client, tenant, context)
    fake.end_outage()
    await context.providers.close()


def sms_step(**inputs: Any) -> dict[str, Any]:
    return {
        "id": "remind",
        "stepType": "SMS",
        "inputs": {
            "subAccountId": SUB,
            "destination": "{{data.phone}}",
            "text": "Reminder {{data.n}}",
            **inputs,
        },
    }


def http_step(crm: str, method: str = "GET") -> dict[str, Any]:
    return {
        "id": "remind",
        "stepType": "HttpRequest",
        "inputs": {"url": crm + "/orders/{{data.n}}", "method": method},
        "outputs": {"code": "{{step.responseCode}}"},
    }


async def events_of(flow: Flow, definition: str, workflow: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await flow.call(
        "GET", f"/definitions/{definition}/workflows/{workflow}/events"
    )
    return found


async def drive(
    flow: Flow,
    fake: Fake8x8,
    definition: str,
    *,
    outage_ends_at_ms: int | None,
    limit_ms: int,
) -> dict[str, dict[str, Any]]:
    """Move the clock a second at a time until every instance has ended (or `limit_ms`),
    ending the outage at `outage_ends_at_ms`; the instances, by id."""
    ended = outage_ends_at_ms is None
    while flow.clock.now_ms() < limit_ms:
        if not ended and outage_ends_at_ms is not None and flow.clock.now_ms() >= outage_ends_at_ms:
            fake.end_outage()
            ended = True
        await flow.advance(SECOND)
        if ended and flow.clock.now_ms() % (10 * SECOND) == 0:
            listed = await flow.instances(definition, limit=500)
            if all(i["status"] in ("Complete", "Terminated") for i in listed):
                break
    return {i["workflowId"]: i for i in await flow.instances(definition, limit=500)}


def key_of(request: dict[str, Any], kind: str) -> str:
    if kind == "sms":
        return str(request["body"]["clientMessageId"])
    return str(request["path"])


@pytest.mark.parametrize("kind", ["sms", "http"])
async def test_a_ten_minute_outage_loses_nothing(flow: Flow, fake: Fake8x8, kind: str) -> None:
    count = 12
    role = "sms" if kind == "sms" else "crm"
    step = sms_step() if kind == "sms" else http_step(fake.urls.crm)
    definition = await flow.define([step], trigger="http_request")
    fake.outage(role)
    start = flow.clock.now_ms()
    workflows = []
    for n in range(count):
        workflows += await flow.http_trigger({"phone": f"+659100{n:04d}", "n": n})
    outage_end = start + 10 * MINUTE
    instances = await drive(
        flow, fake, definition, outage_ends_at_ms=outage_end, limit_ms=start + 30 * MINUTE
    )

    # Nothing lost: every instance completed, every message was accepted exactly once.
    assert [instances[w]["status"] for w in workflows] == ["Complete"] * count
    requests = fake.requests(role=role)
    accepted = Counter(key_of(r, kind) for r in requests if r["status"] == 200)
    assert len(accepted) == count, accepted
    assert set(accepted.values()) == {1}, accepted
    during = [r for r in requests if r["fault"] == "503"]
    # The herd was held back: the first wave, then one probe at a time. Per-instance backoff
    # alone would have made ~13 attempts each in ten minutes.
    assert len(during) <= count + 40, len(during)

    attempts_at: Counter[int] = Counter()  # virtual time -> real attempts that failed then
    completed_at: list[int] = []
    per_key = Counter(key_of(r, kind) for r in requests)
    for workflow in workflows:
        instance = await flow.instance(definition, workflow)
        [log] = instance["logs"]
        events = await events_of(flow, definition, workflow)
        retries = [e for e in events if e["type"] == "step_retry_scheduled"]
        failed = [e for e in retries if not e["detail"]["deferred"]]
        # The step log says how many attempts were made: the fake saw exactly those.
        made = len(failed) + 1
        assert log["retry"]["attempts"] == made
        assert log["retry"]["nextAttemptAt"] is None
        if failed:
            assert "503" in log["retry"]["lastError"] or "unavailable" in log["retry"]["lastError"]
        else:  # deferred while the circuit was open, then sent at its first attempt
            assert log["retry"]["lastError"] is None
        message_key = (
            log["id"] if kind == "sms" else f"/orders/{instance['data']['n']}"
        )  # the clientMessageId is the step execution's id
        assert per_key[message_key] == made, (workflow, made)
        # Attempts spaced as the policy says (a deferral comes back when the breaker says).
        # While the circuit is open a failed step comes back with the backlog, sooner.
        for attempt, event in enumerate(failed, start=1):
            assert event["detail"]["attempt"] == attempt
            interval = POLICY.interval_ms(attempt)
            assert event["detail"]["delayMs"] <= interval, event
            if not event["detail"]["circuitOpen"]:
                assert interval // 2 <= event["detail"]["delayMs"], event
        for event in retries:
            assert event["detail"]["delayMs"] > 0
            at = event["at"]
            assert event["detail"]["nextAttemptAt"] > at
        for event in failed:
            attempts_at[event["at"]] += 1
        [done] = [e for e in events if e["type"] == "step_completed"]
        completed_at.append(done["at"])

    # One probe at a time: after the first failures (which opened the circuit: the rest of
    # the instances started were deferred), never two at once.
    first_wave = iso_from_ms(start)
    assert attempts_at[first_wave] == THRESHOLD
    assert all(n == 1 for at, n in attempts_at.items() if at != first_wave), attempts_at
    # The backlog drained at a bounded rate, and soon after the outage ended.
    per_second = Counter(at[:19] for at in completed_at)
    assert max(per_second.values()) <= DRAIN_RATE + 2, per_second
    assert max(completed_at) <= iso_from_ms(outage_end + 45 * SECOND)
    print(
        f"\n{kind}: {len(during)} requests during the outage, attempts per message "
        f"{sorted(per_key.values())}, completions per second after it {dict(per_second)}"
    )


async def test_the_step_log_shows_a_retry_in_progress(flow: Flow, fake: Fake8x8) -> None:
    definition = await flow.define([sms_step()], trigger="http_request")
    fake.outage("sms")
    [workflow] = await flow.http_trigger({"phone": "+6591000001", "n": 1})
    await flow.advance(2 * SECOND)
    [log] = (await flow.instance(definition, workflow))["logs"]
    assert log["status"] == "Running"
    retry = log["retry"]
    assert retry["attempts"] >= 2
    assert retry["lastError"].startswith("Failed to send SMS because ")
    assert retry["nextAttemptAt"] > iso_from_ms(flow.clock.now_ms())


async def test_an_outage_longer_than_the_window_fails_with_the_last_error(
    flow: Flow, fake: Fake8x8
) -> None:
    definition = await flow.define([sms_step()], trigger="http_request")
    fake.outage("sms")
    start = flow.clock.now_ms()
    [workflow] = await flow.http_trigger({"phone": "+6591000002", "n": 2})
    instances = await drive(
        flow, fake, definition, outage_ends_at_ms=None, limit_ms=start + 20 * MINUTE
    )
    assert instances[workflow]["status"] == "Terminated"
    [log] = (await flow.instance(definition, workflow))["logs"]
    [error] = await flow.errors(definition, workflow)
    made = log["retry"]["attempts"]
    assert error["message"].startswith("Failed to send SMS because ")
    assert error["message"].endswith(f"(after {made} attempts)")
    assert "Service temporarily unavailable" in error["message"]
    sent = [r for r in fake.requests(role="sms") if r["body"]["clientMessageId"] == log["id"]]
    assert len(sent) == made
    assert all(r["status"] == 503 for r in sent)
    # The last attempt was made at the window's end, not later.
    assert error["errorTime"] == iso_from_ms(start + WINDOW_S * SECOND)


async def test_an_sms_is_not_sent_after_its_expiry(flow: Flow, fake: Fake8x8) -> None:
    start = flow.clock.now_ms()
    expiry = iso_from_ms(start + 90 * SECOND)
    definition = await flow.define([sms_step(expiry=expiry)], trigger="http_request")
    fake.outage("sms")
    [workflow] = await flow.http_trigger({"phone": "+6591000003", "n": 3})
    instances = await drive(
        flow, fake, definition, outage_ends_at_ms=start + 5 * MINUTE, limit_ms=start + 10 * MINUTE
    )
    assert instances[workflow]["status"] == "Terminated"
    [error] = await flow.errors(definition, workflow)
    assert error["message"].startswith("Failed to send SMS because it expire"), error
    assert expiry in error["message"]
    assert "last error" in error["message"]
    assert error["errorTime"] <= expiry
    assert all(r["status"] != 200 for r in fake.requests(role="sms"))


async def test_an_sms_already_expired_is_never_attempted(flow: Flow, fake: Fake8x8) -> None:
    expiry = iso_from_ms(flow.clock.now_ms() - SECOND)
    definition = await flow.define([sms_step(expiry=expiry)], trigger="http_request")
    [workflow] = await flow.http_trigger({"phone": "+6591000004", "n": 4})
    assert (await flow.instance(definition, workflow))["status"] == "Terminated"
    [error] = await flow.errors(definition, workflow)
    assert error["message"] == (
        f"Failed to send SMS because it expired at {expiry}, before it could be sent"
    )
    assert fake.requests(role="sms") == []


async def test_an_http_get_gets_its_last_answer_when_the_window_ends(
    flow: Flow, fake: Fake8x8
) -> None:
    """A 5xx answer is retried, but once the window is spent it is the step's result (the
    flow can branch on it), not a fault."""
    definition = await flow.define([http_step(fake.urls.crm)], trigger="http_request")
    fake.outage("crm")
    start = flow.clock.now_ms()
    [workflow] = await flow.http_trigger({"n": 5})
    instances = await drive(
        flow, fake, definition, outage_ends_at_ms=None, limit_ms=start + 20 * MINUTE
    )
    assert instances[workflow]["status"] == "Complete"
    assert instances[workflow]["data"]["code"] == 503
    assert len(fake.requests(role="crm")) > 5


async def test_a_post_answered_503_is_a_result_at_once(flow: Flow, fake: Fake8x8) -> None:
    definition = await flow.define([http_step(fake.urls.crm, "POST")], trigger="http_request")
    fake.outage("crm")
    [workflow] = await flow.http_trigger({"n": 6})
    instance = await flow.instance(definition, workflow)
    assert instance["status"] == "Complete"
    assert instance["data"]["code"] == 503
    assert len(fake.requests(role="crm")) == 1


async def test_a_post_to_an_endpoint_that_is_down_is_sent_once_it_is_up(flow: Flow) -> None:
    """Connection refused means nothing was sent: even a POST is retried, and sent once."""
    port = free_port()
    received: list[Any] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"ok": True}, status=201)

    app = web.Application()
    app.router.add_post("/hooks", handle)
    step = {
        "id": "hook",
        "stepType": "HttpRequest",
        "inputs": {
            "url": f"http://127.0.0.1:{port}/hooks",
            "method": "POST",
            "body": {"n": "{{data.n}}"},
        },
        "outputs": {"code": "{{step.responseCode}}"},
    }
    definition = await flow.define([step], trigger="http_request")
    [workflow] = await flow.http_trigger({"n": 7})
    await flow.advance(3 * SECOND)
    assert (await flow.instance(definition, workflow))["status"] == "Runnable"
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        for _ in range(120):
            await flow.advance(SECOND)
            if (await flow.instance(definition, workflow))["status"] != "Runnable":
                break
    finally:
        await runner.cleanup()
    instance = await flow.instance(definition, workflow)
    assert instance["status"] == "Complete"
    assert instance["data"]["code"] == 201
    assert received == [{"n": 7}]


async def test_a_post_whose_answer_is_lost_is_not_repeated(flow: Flow, fake: Fake8x8) -> None:
    """A request that may have reached the endpoint is repeated only when it is idempotent."""
    definition = await flow.define([http_step(fake.urls.crm, "POST")], trigger="http_request")
    fake.fail("crm", "lost", count=1)
    [workflow] = await flow.http_trigger({"n": 8})
    assert (await flow.instance(definition, workflow))["status"] == "Terminated"
    [error] = await flow.errors(definition, workflow)
    assert error["message"].startswith("Call failed.")
    assert "attempts" not in error["message"]
    assert len(fake.requests(role="crm")) == 1


async def test_a_get_whose_answer_is_lost_is_repeated(flow: Flow, fake: Fake8x8) -> None:
    definition = await flow.define([http_step(fake.urls.crm)], trigger="http_request")
    fake.fail("crm", "lost", count=1)
    [workflow] = await flow.http_trigger({"n": 9})
    await flow.advance(2 * SECOND)
    instance = await flow.instance(definition, workflow)
    assert instance["status"] == "Complete"
    assert instance["data"]["code"] == 200
    assert [r["fault"] for r in fake.requests(role="crm")] == ["lost", None]
