"""The router's one-statement route on PostgreSQL (store/postgres_starts.PostgresStarts): an inbound
event that no wait is subscribed to and no definition could hold is recorded and starts its
instances in one statement, outside a transaction. Every test runs on both databases (SQLite
routes everything in one transaction) and must behave the same; on PostgreSQL each also
checks which path the events took, by counting the one-statement route's writes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from relayflow.config import Settings
from relayflow.store.postgres_starts import PostgresStarts
from relayflow.store.tables import inbox, instance_events, instances
from tests.support.definitions import sms_step
from tests.support.flows import Flow
from tests.support.webhooks import inbound_sms

REPLY = [sms_step("reply", "{{data.payload.source}}", "Thanks {{data.payload.body}}")]


@pytest.fixture
def settings(database_url: str, request: pytest.FixtureRequest) -> Settings:
    """`@pytest.mark.burst(n)`: n starts, and then (almost) none; `@pytest.mark.hold(s)`: the
    reply hold window (5 s, the default, unless marked)."""
    burst = request.node.get_closest_marker("burst")
    hold = request.node.get_closest_marker("hold")
    limits: dict[str, Any] = (
        {"start_burst": burst.args[0], "start_rate_per_second": 0.001} if burst else {}
    )
    return Settings(
        database_url=database_url,
        reply_hold_seconds=hold.args[0] if hold else 5,
        **limits,
    )


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What each write of the one-statement route answered (True: the event was new), in order."""
    answers: list[bool] = []
    original = PostgresStarts.record_and_start

    async def counted(self: PostgresStarts, event: Any, new: Any) -> bool:
        fresh = await original(self, event, new)
        answers.append(fresh)
        return fresh

    monkeypatch.setattr(PostgresStarts, "record_and_start", counted)
    return answers


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The trigger of each lookup the one-statement route made, in order."""
    made: list[str] = []
    original = PostgresStarts.lookup

    async def counted(self: PostgresStarts, account_id: str, trigger: str, *rest: Any) -> Any:
        made.append(trigger)
        return await original(self, account_id, trigger, *rest)

    monkeypatch.setattr(PostgresStarts, "lookup", counted)
    return made


def on_postgres(flow: Flow) -> bool:
    return not flow.context.db.is_sqlite


async def webhook(flow: Flow, body: dict[str, Any], expect: int = 200) -> dict[str, Any]:
    response: httpx.Response = await flow.client.post(
        f"/webhooks/{flow.tenant.account_id}/sms",
        json=body,
        params={"token": flow.tenant.webhook_token},
    )
    assert response.status_code == expect, response.text
    await flow.run()
    answer: dict[str, Any] = response.json()
    return answer


async def count(flow: Flow, table: Any, *where: Any) -> int:
    async with flow.context.db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)


async def test_new_senders_start_in_one_statement(flow: Flow, written: list[bool]) -> None:
    definition_id = await flow.define(REPLY)
    for number in range(3):
        answer = await webhook(flow, inbound_sms(f"m{number}", sender=f"+659000000{number}"))
        assert len(answer["started"]) == 1
        assert not answer["duplicate"]
    assert await flow.texts() == ["Thanks m0", "Thanks m1", "Thanks m2"]
    assert await count(flow, inbox) == 3
    assert await count(flow, instance_events, instance_events.c.type == "instance_started") == 3
    listed = await flow.instances(definition_id)
    assert {item["status"] for item in listed} == {"Complete"}
    # The first event met a definition version the router did not know yet: one transaction.
    assert written == ([True, True] if on_postgres(flow) else [])


@pytest.mark.burst(3)
async def test_a_repeated_event_is_a_duplicate_and_costs_no_start(
    flow: Flow, written: list[bool]
) -> None:
    await flow.define(REPLY)
    await webhook(flow, inbound_sms("first", sender="+6590000001"))
    again = inbound_sms("second", sender="+6590000002", umid="umid-2")
    assert len((await webhook(flow, again))["started"]) == 1
    repeated = await webhook(flow, again)
    assert repeated["duplicate"]
    assert repeated["started"] == []
    # The burst is three starts: the duplicate took none, so a third sender still starts.
    assert len((await webhook(flow, inbound_sms("third", sender="+6590000003")))["started"]) == 1
    refused = await webhook(flow, inbound_sms("fourth", sender="+6590000004"), expect=429)
    assert refused["code"] == 1429
    assert await count(flow, instances) == 3
    assert await count(flow, inbox) == 3  # the refused event was not recorded
    assert written == ([True, False, True] if on_postgres(flow) else [])


SURVEY = [
    sms_step("ask", "{{data.payload.source}}", "Score?", nextStepId="wait"),
    {
        "id": "wait",
        "stepType": "WaitForReply",
        "nextStepId": "answer",
        "inputs": {"from": "{{data.payload.source}}", "channel": "sms", "timeout": "01:00:00"},
        "outputs": {"score": "{{step.reply.payload.body}}"},
    },
    sms_step("answer", "{{data.payload.source}}", "Got {{data.score}}"),
]


@pytest.mark.burst(1)
async def test_a_repeat_after_the_burst_is_still_a_duplicate(
    flow: Flow, written: list[bool]
) -> None:
    await flow.define(REPLY)
    event = inbound_sms("only", sender="+6590000001", umid="umid-1")
    assert len((await webhook(flow, event))["started"]) == 1
    # 8x8 sends it again (it missed our answer): no tokens are left, but it is not a new start.
    repeated = await webhook(flow, event)
    assert repeated["duplicate"]
    assert await count(flow, instances) == 1


async def test_a_reply_to_a_waiting_instance_takes_the_transaction(
    flow: Flow, written: list[bool], lookups: list[str]
) -> None:
    await flow.define(SURVEY)
    for _ in range(2):  # the second start finds the definition version known
        await webhook(flow, inbound_sms("hi", sender="+6590000001"))
        reply = await webhook(flow, inbound_sms("9", sender="+6590000001"))
        assert len(reply["resumed"]) == 1
        assert reply["started"] == []
    assert await flow.texts() == ["Score?", "Got 9", "Score?", "Got 9"]
    # A definition with a WaitForReply may hold a message (reply hold): never one statement,
    # and once the router knows it, events of that route skip the lookup for a while.
    assert written == []
    assert lookups == (["inbound_sms", "inbound_sms"] if on_postgres(flow) else [])


@pytest.mark.hold(0)
async def test_without_reply_hold_a_survey_starts_directly(flow: Flow, written: list[bool]) -> None:
    await flow.define(SURVEY)
    for number in range(3):
        await webhook(flow, inbound_sms("hi", sender=f"+659000000{number}"))
        reply = await webhook(flow, inbound_sms(str(number), sender=f"+659000000{number}"))
        assert len(reply["resumed"]) == 1
    assert await flow.texts() == ["Score?", "Got 0", "Score?", "Got 1", "Score?", "Got 2"]
    # The first start met an unknown version; the replies went to their waits.
    assert written == ([True, True] if on_postgres(flow) else [])


async def test_subaccounts_choose_the_definitions_in_order(flow: Flow, written: list[bool]) -> None:
    anywhere = await flow.define(REPLY)
    flow.clock.advance(1)  # definitions start in the order they were created
    only_a = await flow.define(REPLY, subAccountId="acme_a")
    flow.clock.advance(1)
    only_b = await flow.define(REPLY, subAccountId="acme_b")
    started: dict[str, list[str]] = {}
    for number, sub_account in enumerate(["acme_a", "acme_a", "acme_b", "acme_b", "acme_c"]):
        event = inbound_sms("x", sender=f"+659000000{number}", sub_account_id=sub_account)
        started.setdefault(sub_account, []).extend((await webhook(flow, event))["started"])
    assert len(started["acme_a"]) == 4
    assert len(started["acme_b"]) == 4
    assert len(started["acme_c"]) == 1

    async def of(definition_id: str) -> set[str]:
        return {item["workflowId"] for item in await flow.instances(definition_id)}

    assert await of(only_a) == set(started["acme_a"][1::2])  # created after `anywhere`
    assert await of(only_b) == set(started["acme_b"][1::2])
    assert await of(anywhere) == {
        *started["acme_a"][0::2],
        *started["acme_b"][0::2],
        *started["acme_c"],
    }
    assert written == ([True, True, True] if on_postgres(flow) else [])


async def test_http_triggers_take_the_direct_path(flow: Flow, written: list[bool]) -> None:
    waits = [{"id": "w", "stepType": "Wait", "inputs": {"duration": "00:01:00"}}]
    definition_id = await flow.define(waits, trigger="http_request")
    first = await flow.http_trigger({"n": 1})
    second = await flow.http_trigger({"n": 2})
    assert len(first) == 1
    assert len(second) == 1
    instance = await flow.instance(definition_id, second[0])
    assert instance["status"] == "Runnable"
    assert await count(flow, inbox, inbox.c.kind == "http_request") == 2
    assert written == ([True] if on_postgres(flow) else [])
