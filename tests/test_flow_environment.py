"""`relayflow.testing.FlowEnvironment`: the real engine on a private database, virtual time,
seeded ids and scripted channels (issue 11's Python API; `relayflow test` runs on it)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from relayflow.clock import iso_from_ms
from relayflow.testing import FlowEnvironment, FlowTestError

GALLERY = Path(__file__).parents[1] / "src/relayflow/console/static/gallery"


def template(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((GALLERY / f"{name}.json").read_text())
    return body


async def survey_transcript(seed: int = 0) -> tuple[Any, ...]:
    async with FlowEnvironment(template("survey"), seed=seed) as env:
        await env.http_trigger({"phone": "+6591234567"})
        await env.advance("1.00:00:00")
        return env.outbox, env.instances, env.definition_id


async def test_the_same_flow_gives_the_same_transcript_ids_included() -> None:
    first = await survey_transcript()
    assert first == await survey_transcript()
    assert first != await survey_transcript(seed=1)  # the seed is what makes ids repeat
    outbox, instances, _ = first
    assert [m["text"] for m in outbox] == [
        "How did we do? Reply 1 (great) to 5 (poor).",
        "A gentle reminder: we would love your feedback (1-5).",
    ]
    [instance] = instances
    assert instance["status"] == "Complete"
    assert instance["startedAt"] == "2026-01-05T09:00:00.000Z"  # the documented default start


async def test_a_reply_takes_the_other_path() -> None:
    async with FlowEnvironment(template("survey"), start="2026-03-02T09:00:00Z") as env:
        await env.http_trigger({"phone": "+6591234567"})
        started = await env.inbound_sms("+65 9123 4567", "5")
        assert started == []  # a reply resumes the waiting instance; it starts nothing
        [instance] = env.instances
        assert instance["status"] == "Complete"
        assert instance["data"]["score"] == "5"
        assert instance["startedAt"] == "2026-03-02T09:00:00.000Z"
        assert env.outbox[-1]["text"] == "Thanks for your feedback!"


def timed_sms() -> dict[str, Any]:
    steps = [
        {
            "id": "wait",
            "stepType": "Wait",
            "inputs": {"duration": "{{data.d}}"},
            "nextStepId": "say",
        },
        {
            "id": "say",
            "stepType": "SMS",
            "inputs": {
                "subAccountId": "acme_sms",
                "destination": "+6591234567",
                "text": "{{data.t}}",
            },
        },
    ]
    return {
        "trigger": "http_request",
        "status": "enabled",
        "definition": {"name": "timed", "steps": steps},
    }


async def test_advance_fires_timers_in_order_inside_one_span() -> None:
    async with FlowEnvironment(timed_sms()) as env:
        await env.http_trigger({"d": "02:00:00", "t": "two hours"})
        await env.http_trigger({"d": "00:30:00", "t": "half an hour"})
        await env.http_trigger({"d": "25.00:00:00", "t": "later"})
        await env.advance(1)  # one whole day, in one call
        assert [m["text"] for m in env.outbox] == ["half an hour", "two hours"]
        assert [i["status"] for i in env.instances] == ["Complete", "Complete", "Runnable"]
        await env.advance(30)
        assert [m["text"] for m in env.outbox][-1] == "later"
        assert iso_from_ms(env.clock.now_ms()) == "2026-02-05T09:00:00.000Z"  # 31 days on


async def test_scripted_http_and_provider_answers() -> None:
    mocks = {
        "http": [
            {
                "method": "get",
                "urlPrefix": "https://crm.example.com/orders/",
                "respond": [{"status": 503}, {"status": 200, "json": {"state": "shipped"}}],
            }
        ],
        "sms": [{"httpStatus": 500}, {"httpStatus": 200}],
    }
    async with FlowEnvironment(template("http-lookup"), mocks=mocks) as env:
        await env.inbound_sms("+6591234567", "42")
        await env.advance("00:05:00")
        assert [c["url"] for c in env.http_calls] == ["https://crm.example.com/orders/42"] * 2
        assert [m["text"] for m in env.outbox] == ["Your order is shipped."]
        assert env.instances[0]["status"] == "Complete"
        assert env.unmatched_http_calls == []


async def test_an_unmatched_http_call_is_named() -> None:
    async with FlowEnvironment(template("http-lookup"), mocks={"http": []}) as env:
        await env.inbound_sms("+6591234567", "42")
        assert env.unmatched_http_calls == ["GET https://crm.example.com/orders/42"]
        [instance] = env.instances
        assert instance["status"] == "Terminated"
        assert (
            "No HTTP mock matches GET https://crm.example.com/orders/42"
            in (instance["errors"][0]["message"])
        )


async def test_a_rejected_send_fails_the_step_with_its_message() -> None:
    mocks = {"sms": [{"httpStatus": 400, "message": "Invalid destination"}]}
    async with FlowEnvironment(template("sms-auto-reply"), mocks=mocks) as env:
        await env.inbound_sms("+6591234567", "hi")
        [instance] = env.instances
        assert instance["status"] == "Terminated"
        assert instance["errors"] == [
            {"step": "reply", "message": "Failed to send SMS because Invalid destination"}
        ]
        assert env.outbox == []


async def test_dtmf_answers_the_latest_capture_call() -> None:
    async with FlowEnvironment(template("ivr")) as env:
        with pytest.raises(FlowTestError, match="no say&capture call"):
            await env.dtmf("1")
        await env.http_trigger({"phone": "+6591234567"})
        await env.dtmf("2", to="+6591234567")
        assert env.outbox[-1]["text"] == "Support ticket opened; we will text you updates."


async def test_an_invalid_definition_is_refused_with_its_problems() -> None:
    with pytest.raises(FlowTestError, match=r"definition\.name"):
        async with FlowEnvironment({"trigger": "inbound_sms", "definition": {"steps": []}}):
            pass


async def test_nothing_is_left_behind() -> None:
    before = set(Path(tempfile.gettempdir()).glob("relayflow-flowtest-*"))
    async with FlowEnvironment(template("sms-auto-reply")) as env:
        await env.inbound_sms("+6591234567", "hi")
        assert set(Path(tempfile.gettempdir()).glob("relayflow-flowtest-*")) != before
    assert set(Path(tempfile.gettempdir()).glob("relayflow-flowtest-*")) == before


def crm_post() -> dict[str, Any]:
    steps = [
        {
            "id": "hook",
            "stepType": "HttpRequest",
            "inputs": {
                "url": "https://crm.example.com/hooks",
                "method": "POST",
                "body": {"phone": "{{data.phone}}"},
            },
            "outputs": {"answer": "{{step.responseBody}}"},
        }
    ]
    return {
        "trigger": "http_request",
        "status": "enabled",
        "definition": {"name": "h", "steps": steps},
    }


async def test_mocked_calls_look_like_what_production_sends_and_receives() -> None:
    """A text answer that is JSON is parsed, as production parses any JSON body; a call is
    recorded with the headers production adds (Content-Type for a JSON body)."""
    mocks = {
        "http": [
            {
                "url": "https://crm.example.com/hooks",
                "respond": [{"status": 200, "text": '{"ok": true}', "contentType": "text/plain"}],
            }
        ]
    }
    async with FlowEnvironment(crm_post(), mocks=mocks) as env:
        await env.http_trigger({"phone": "+6591234567"})
        [call] = env.http_calls
        assert call["headers"] == {"Content-Type": "application/json"}
        assert call["body"] == {"phone": "+6591234567"}
        assert env.instances[0]["data"]["answer"] == {"ok": True}


async def test_an_account_id_the_api_refuses_is_a_flow_test_error() -> None:
    with pytest.raises(FlowTestError, match="account"):
        async with FlowEnvironment(template("sms-auto-reply"), account="no spaces allowed"):
            pass
