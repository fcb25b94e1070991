"""Reply hold (issue 14): a customer's second message, arriving while the instance started by
the first still runs the steps before its WaitForReply, answers that wait instead of starting
another instance; on SQLite and PostgreSQL, with the ManualClock."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from relayflow.clock import ManualClock, iso_from_ms
from relayflow.config import Settings
from relayflow.runtime import Runtime
from relayflow.services.sandbox import sms_event
from relayflow.store.database import Database
from relayflow.store.tables import held_messages
from tests.support.flows import Flow

CUSTOMER = "+6591234567"
HOLD_S = 5


@pytest.fixture
def hold_seconds(request: pytest.FixtureRequest) -> float:
    """RELAYFLOW_REPLY_HOLD_SECONDS: HOLD_S unless a test parametrizes it (indirect)."""
    return float(getattr(request, "param", HOLD_S))


@pytest.fixture
def settings(database_url: str, hold_seconds: float) -> Settings:
    return Settings(database_url=database_url, reply_hold_seconds=hold_seconds)


def sms(step_id: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "stepType": "SMS",
        "inputs": {
            "subAccountId": "acme_sms",
            "destination": "{{data.payload.source}}",
            "text": text,
        },
        **extra,
    }


WAIT_FOR_ANSWER = {
    "id": "wait",
    "stepType": "WaitForReply",
    "inputs": {"from": "{{data.payload.source}}", "channel": "sms", "timeout": "00:05:00"},
    "outputs": {"answer": "{{step.reply.payload.body}}"},
    "nextStepId": "thanks",
}
# SMS -> WaitForReply -> SMS
SURVEY = [
    sms("ask", "Your name?", nextStepId="wait"),
    WAIT_FOR_ANSWER,
    sms("thanks", "Hi {{data.answer}}"),
]
# The same with a 10 s pause before the wait: longer than the hold window.
SLOW_SURVEY = [
    sms("ask", "Your name?", nextStepId="pause"),
    {"id": "pause", "stepType": "Wait", "inputs": {"duration": "00:00:10"}, "nextStepId": "wait"},
    WAIT_FOR_ANSWER,
    sms("thanks", "Hi {{data.answer}}"),
]


async def post_sms(flow: Flow, text: str) -> dict[str, Any]:
    """A sandbox inbound SMS routed without running the worker: the instance it starts has
    not run any step yet when the next message arrives (quick succession)."""
    body = {"from": CUSTOMER, "to": "+6580000000", "text": text}
    routed: dict[str, Any] = await flow.call("POST", "/sandbox/inbound/sms", json=body)
    return routed


async def events_of(flow: Flow, definition: str, workflow: str) -> list[tuple[str, str | None]]:
    found = await flow.call("GET", f"/definitions/{definition}/workflows/{workflow}/events")
    return [(event["type"], event["step"]) for event in found]


async def held_rows(db: Database) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(held_messages)) or 0)


async def test_second_message_answers_the_wait_of_the_first_instance(flow: Flow) -> None:
    definition = await flow.define(SURVEY)
    [workflow] = (await post_sms(flow, "hello"))["started"]
    second = await post_sms(flow, "Ann")
    assert (second["started"], second["resumed"]) == ([], [])  # held, not a second instance
    await flow.run()

    instance = await flow.instance(definition, workflow)
    assert instance["status"] == "Complete"
    assert instance["data"]["answer"] == "Ann"
    assert await flow.texts() == ["Your name?", "Hi Ann"]
    assert len(await flow.instances(definition)) == 1
    assert ("reply_received", "wait") in await events_of(flow, definition, workflow)
    assert await held_rows(flow.context.db) == 0
    # Nothing is left to start when the window ends.
    await flow.advance(HOLD_S * 1000)
    assert len(await flow.instances(definition)) == 1


async def test_without_a_wait_within_the_window_the_message_starts_its_own_instance(
    flow: Flow,
) -> None:
    definition = await flow.define(SLOW_SURVEY)
    [first] = (await flow.sms(CUSTOMER, "hello"))["started"]  # now in its 10 s pause
    arrived_ms = flow.clock.now_ms()
    held = await flow.sms(CUSTOMER, "second")
    assert (held["started"], held["resumed"]) == ([], [])
    await flow.advance(HOLD_S * 1000 - 1)
    assert len(await flow.instances(definition)) == 1

    await flow.advance(1)  # the window is over: routed as usual
    [second] = [
        i["workflowId"] for i in await flow.instances(definition) if i["workflowId"] != first
    ]
    started = await flow.instance(definition, second)
    assert started["data"]["payload"]["body"] == "second"
    assert started["data"]["triggeredAt"] == iso_from_ms(arrived_ms)  # when it arrived
    assert await flow.logs(definition, second) == [
        ("ask", "Complete"),
        ("pause", "Sleeping"),
    ]
    assert await held_rows(flow.context.db) == 0
    # The first instance's wait, reached later, does not get the message a second time.
    await flow.advance(5000)
    assert (await flow.logs(definition, first))[-1] == ("wait", "WaitingForEvent")


async def test_a_retried_webhook_of_a_held_message_is_still_a_duplicate(flow: Flow) -> None:
    definition = await flow.define(SURVEY)
    router = flow.context.router
    account = flow.tenant.account_id
    await post_sms(flow, "hello")
    event = sms_event("umid-2", CUSTOMER, "+6580000000", "Ann", None, flow.clock.now_ms())
    held = await router.inbound_message(
        account, event, trigger="inbound_sms", dedupe_key="sms:umid-2"
    )
    assert held.held == [definition]
    retried = await router.inbound_message(
        account, event, trigger="inbound_sms", dedupe_key="sms:umid-2"
    )
    assert retried.duplicate
    await flow.run()
    await flow.advance(HOLD_S * 1000)
    assert len(await flow.instances(definition)) == 1
    assert await flow.texts() == ["Your name?", "Hi Ann"]


@pytest.mark.parametrize("hold_seconds", [0], indirect=True)
async def test_hold_disabled_keeps_starting_an_instance_per_message(flow: Flow) -> None:
    definition = await flow.define(SURVEY)
    [first] = (await post_sms(flow, "hello"))["started"]
    [second] = (await post_sms(flow, "Ann"))["started"]
    await flow.run()
    assert {i["workflowId"] for i in await flow.instances(definition)} == {first, second}
    assert await held_rows(flow.context.db) == 0


async def test_auto_reply_flow_starts_at_once_and_is_not_held(flow: Flow) -> None:
    auto_reply = await flow.define([sms("reply", "Got '{{data.payload.body}}'")])
    survey = await flow.define(SURVEY)
    first = await post_sms(flow, "hello")
    assert len(first["started"]) == 2
    second = await post_sms(flow, "Ann")
    # The auto-reply starts again at once; only the survey's start is held.
    [started] = second["started"]
    assert started in {i["workflowId"] for i in await flow.instances(auto_reply)}
    await flow.run()
    assert len(await flow.instances(auto_reply)) == 2
    [survey_instance] = await flow.instances(survey)
    assert survey_instance["status"] == "Complete"
    assert sorted(await flow.texts()) == sorted(
        ["Got 'hello'", "Your name?", "Got 'Ann'", "Hi Ann"]
    )


CHAT_CONFIRM = [
    {
        "id": "wait",
        "stepType": "WaitForReply",
        "inputs": {
            "from": "{{data.payload.user.channelUserId}}",
            "channel": "{{data.payload.recipient.channel}}",
        },
    }
]


async def test_an_instance_already_waiting_on_another_channel_holds_nothing(flow: Flow) -> None:
    """Held only for instances that wait for nothing yet: this one waits on WhatsApp, so a
    Viber message of the same customer starts another instance at once."""
    definition = await flow.define(CHAT_CONFIRM, trigger="inbound_chat_apps")
    await flow.chat("whatsapp", CUSTOMER, text="hi")
    viber = await flow.chat("viber", CUSTOMER, text="other channel")
    assert (viber["resumed"], len(viber["started"])) == ([], 1)
    assert len(await flow.instances(definition)) == 2


async def test_the_hold_s_statements_keep_their_direct_sqlite_path(flow: Flow) -> None:
    if not flow.context.db.is_sqlite:
        pytest.skip("the direct path is SQLite's; PostgreSQL runs every statement unchanged")
    definition = await flow.define(SURVEY)
    await post_sms(flow, "hello")
    await post_sms(flow, "held, then taken")
    await flow.run()
    await flow.update(definition, SLOW_SURVEY)
    await flow.sms(CUSTOMER, "hello again")
    await flow.sms(CUSTOMER, "held, then released")
    await flow.advance(HOLD_S * 1000)
    await flow.advance(10_000)
    assert len(await flow.instances(definition)) == 2  # of version 2: one was released
    assert flow.context.db.compiled_statements.refused() == []


async def test_a_held_message_survives_a_restart(
    flow: Flow, database_url: str, settings: Settings, clock: ManualClock
) -> None:
    definition = await flow.define(SURVEY)
    [workflow] = (await post_sms(flow, "hello"))["started"]
    await post_sms(flow, "Ann")
    # The process dies before its worker ran anything; a new one takes over the database.
    restarted = Runtime(settings, Database(database_url), clock)
    try:
        await restarted.worker.run_until_idle()
    finally:
        await restarted.close()
    instance = await flow.instance(definition, workflow)
    assert instance["status"] == "Complete"
    assert instance["data"]["answer"] == "Ann"
    assert len(await flow.instances(definition)) == 1


async def test_a_held_message_is_released_by_a_restarted_process(
    flow: Flow, database_url: str, settings: Settings, clock: ManualClock
) -> None:
    definition = await flow.define(SLOW_SURVEY)
    await flow.sms(CUSTOMER, "hello")
    await flow.sms(CUSTOMER, "second")  # held
    assert len(await flow.instances(definition)) == 1
    restarted = Runtime(settings, Database(database_url), clock)
    try:
        clock.advance(HOLD_S * 1000)
        await restarted.worker.run_until_idle()  # its router was never told: it looks itself
    finally:
        await restarted.close()
    bodies = [
        (await flow.instance(definition, i["workflowId"]))["data"]["payload"]["body"]
        for i in await flow.instances(definition)
    ]
    assert sorted(bodies) == ["hello", "second"]
    assert await held_rows(flow.context.db) == 0
