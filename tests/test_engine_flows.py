"""Real flows, end to end through the API and the sandbox, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from relayflow.api.context import AppContext
from relayflow.config import Settings
from tests.support.flows import Flow

MINUTE = 60_000
CUSTOMER = "+6591234567"


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The local HTTP server of the HttpRequest flows lives on loopback: allow-list it.
    return Settings(database_url=database_url, http_allowlist="127.0.0.0/8")


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


async def test_sms_auto_reply(flow: Flow) -> None:
    definition = await flow.define(
        [
            sms(
                "reply",
                "Thanks for '{{data.payload.body}}'",
                outputs={"umid": "{{step.umid}}", "declared": "variable 0"},
            )
        ]
    )
    routed = await flow.sms(CUSTOMER, "hello")
    assert routed["resumed"] == []
    [workflow] = routed["started"]
    instance = await flow.instance(definition, workflow)
    assert instance["status"] == "Complete"
    assert instance["completedAt"] is not None
    assert [(log["stepName"], log["status"]) for log in instance["logs"]] == [("reply", "Complete")]
    [message] = await flow.outbox()
    assert message["request"] == {
        "destination": CUSTOMER,
        "text": "Thanks for 'hello'",
        "clientMessageId": instance["logs"][0]["id"],
    }
    assert message["subAccountId"] == "acme_sms"
    assert message["workflowId"] == workflow
    data = instance["data"]
    assert data["umid"] == message["umid"]
    assert "declared" not in data  # outputs without {{ }} are declarations, not writes
    assert data["accountId"] == "acme"
    assert data["payload"]["body"] == "hello"
    assert data["triggeredAt"].endswith("Z")


SURVEY = [
    sms("ask", "How was your visit? Reply 1-5", nextStepId="wait"),
    {
        "id": "wait",
        "stepType": "WaitForReply",
        "inputs": {"from": "{{data.payload.source}}", "channel": "sms", "timeout": "00:05:00"},
        "outputs": {"answer": "{{step.reply.payload.body}}"},
        "selectNextStep": {
            "check": "{{ step.reply != null }}",
            "no_answer": "{{ step.reply == null }}",
        },
    },
    {
        "id": "check",
        "stepType": "Branch",
        "selectNextStep": {"happy": "{{ data.answer >= '4' }}", "sorry": None},
    },
    sms("happy", "Great, thanks for the {{data.answer}}!"),
    sms("sorry", "Sorry to hear that."),
    sms("no_answer", "We missed your answer."),
]


async def test_survey_with_a_reply_resumes_instead_of_starting(flow: Flow) -> None:
    definition = await flow.define(SURVEY)
    [workflow] = (await flow.sms(CUSTOMER, "survey please"))["started"]
    assert await flow.logs(definition, workflow) == [
        ("ask", "Complete"),
        ("wait", "WaitingForEvent"),
    ]

    routed = await flow.sms("+65 9123 4567", "5")  # same sender, other formatting
    assert routed == {**routed, "started": [], "resumed": [workflow]}
    instance = await flow.instance(definition, workflow)
    assert instance["status"] == "Complete"
    assert instance["data"]["answer"] == "5"
    assert [(log["stepName"], log["status"]) for log in instance["logs"]] == [
        ("ask", "Complete"),
        ("wait", "Complete"),
        ("check", "Complete"),
        ("happy", "Complete"),
    ]
    assert await flow.texts() == ["How was your visit? Reply 1-5", "Great, thanks for the 5!"]
    assert len(await flow.instances(definition)) == 1


async def test_survey_default_branch_and_timeout(flow: Flow) -> None:
    definition = await flow.define(SURVEY)
    [first] = (await flow.sms(CUSTOMER, "survey"))["started"]
    await flow.sms(CUSTOMER, "2")
    assert (await flow.logs(definition, first))[-1] == ("sorry", "Complete")

    [second] = (await flow.sms("+6599999999", "survey"))["started"]
    await flow.advance(4 * MINUTE)
    assert (await flow.instance(definition, second))["status"] == "Runnable"
    await flow.advance(MINUTE)
    instance = await flow.instance(definition, second)
    assert instance["status"] == "Complete"
    assert instance["data"]["answer"] is None  # tolerant read of step.reply.payload.body
    assert [(log["stepName"], log["status"]) for log in instance["logs"]] == [
        ("ask", "Complete"),
        ("wait", "Cancelled"),
        ("no_answer", "Complete"),
    ]
    # After the timeout a message from that number starts a new survey instead.
    assert (await flow.sms("+6599999999", "late answer"))["started"]


async def test_the_engine_s_hot_statements_keep_their_direct_sqlite_path(flow: Flow) -> None:
    """Starting, replying, timing out: every statement marked hot ran without SQLAlchemy's
    execution layer (store/direct.py) — a hot statement that loses it only gets slower, so
    nothing else would notice."""
    if not flow.context.db.is_sqlite:
        pytest.skip("the direct path is SQLite's; PostgreSQL runs every statement unchanged")
    await flow.define(SURVEY)
    await flow.sms(CUSTOMER, "survey")
    await flow.sms(CUSTOMER, "4")
    await flow.sms("+6599999999", "survey")
    await flow.advance(5 * MINUTE)
    assert flow.context.db.compiled_statements.refused() == []


async def test_reply_consumed_by_one_definition_still_starts_others(flow: Flow) -> None:
    survey = await flow.define(SURVEY)
    logger = await flow.define([sms("log", "logged")])
    await flow.sms(CUSTOMER, "start")
    routed = await flow.sms(CUSTOMER, "4")
    assert len(routed["resumed"]) == 1
    [started] = routed["started"]
    logged = [i["workflowId"] for i in await flow.instances(logger)]
    assert len(logged) == 2  # one per message
    assert started in logged
    assert len(await flow.instances(survey)) == 1


IVR = [
    {
        "id": "call",
        "stepType": "VoiceMessage",
        "inputs": {
            "subAccountId": "acme_voice",
            "action": "say&capture",
            "clientRequestId": "{{uuid()}}",
            "params": {
                "source": "+6560000000",
                "destination": "{{data.phone}}",
                "text": "Press 1 or 2",
                "minDigits": 1,
                "maxDigits": 1,
            },
        },
        "outputs": {"dtmf_correlation_id": "{{step.response.clientRequestId}}"},
        "nextStepId": "digits",
    },
    {
        "id": "digits",
        "stepType": "WaitForDTMF",
        "inputs": {"dtmfRequestId": "{{data.dtmf_correlation_id}}", "timeout": "00:02:00"},
        "outputs": {"dtmf": "{{step.dtmfData.actionDetails.dtmf}}"},
        "selectNextStep": {
            "one": "{{data.dtmf == '1'}}",
            "two": "{{data.dtmf == '2'}}",
            "invalid": "{{data.dtmf != null && data.dtmf != '1' && data.dtmf != '2'}}",
            "no_reply": "{{data.dtmf == null}}",
        },
    },
    {"id": "one", "stepType": "Wait", "inputs": {"duration": "00:00:01"}},
    {"id": "two", "stepType": "Wait", "inputs": {"duration": "00:00:01"}},
    {"id": "invalid", "stepType": "Wait", "inputs": {"duration": "00:00:01"}},
    {"id": "no_reply", "stepType": "Wait", "inputs": {"duration": "00:00:01"}},
]


@pytest.mark.parametrize(
    ("digits", "branch"), [("1", "one"), ("2", "two"), ("7", "invalid"), (None, "no_reply")]
)
async def test_ivr_branches_on_dtmf(flow: Flow, digits: str | None, branch: str) -> None:
    definition = await flow.define(IVR, trigger="http_request")
    [workflow] = await flow.http_trigger({"phone": "+6591112222"})
    [call] = await flow.outbox("voice")
    correlation = call["request"]["clientRequestId"]
    assert call["request"]["callflow"][0]["action"] == "say&capture"
    assert call["request"]["callflow"][0]["params"]["destination"] == "+6591112222"
    instance = await flow.instance(definition, workflow)
    assert instance["data"]["dtmf_correlation_id"] == correlation
    if digits is None:
        await flow.advance(2 * MINUTE)
    else:
        routed = await flow.dtmf(digits, clientRequestId=correlation)
        assert routed["resumed"] == [workflow]
    await flow.advance(1000)
    logs = await flow.logs(definition, workflow)
    assert logs[-2:] == [
        ("digits", "Cancelled" if digits is None else "Complete"),
        (branch, "Complete"),
    ]
    assert (await flow.instance(definition, workflow))["status"] == "Complete"


async def test_dtmf_arriving_before_its_wait_is_kept(flow: Flow) -> None:
    steps = [
        {
            "id": "pause",
            "stepType": "Wait",
            "inputs": {"duration": "00:00:30"},
            "nextStepId": "digits",
        },
        {**IVR[1], "inputs": {"dtmfRequestId": "{{data.request}}"}},
        *IVR[2:],
    ]
    definition = await flow.define(steps, trigger="http_request")
    [workflow] = await flow.http_trigger({"request": "early-123"})
    routed = await flow.dtmf("2", clientRequestId="early-123")
    assert routed["resumed"] == []  # nobody waits yet: parked
    await flow.advance(30_000)
    await flow.advance(1000)
    assert (await flow.logs(definition, workflow))[-1] == ("two", "Complete")


async def test_branch_fans_out_to_every_true_condition(flow: Flow) -> None:
    steps = [
        {
            "id": "fork",
            "stepType": "Branch",
            "selectNextStep": {
                "a": "{{data.n > 1}}",
                "b": "{{data.n > 2}}",
                "c": "{{data.n > 100}}",
                "d": None,
            },
        },
        {"id": "a", "stepType": "HttpRequest", "inputs": {"url": "{{data.url}}", "method": "GET"}},
        {"id": "b", "stepType": "Wait", "inputs": {"duration": "00:00:05"}},
        {"id": "c", "stepType": "Wait", "inputs": {"duration": "00:00:05"}},
        {"id": "d", "stepType": "Wait", "inputs": {"duration": "00:00:05"}},
    ]
    steps[1] = {"id": "a", "stepType": "Wait", "inputs": {"duration": "00:00:01"}}
    definition = await flow.define(steps, trigger="http_request")
    [workflow] = await flow.http_trigger({"n": 3})
    assert await flow.logs(definition, workflow) == [
        ("fork", "Complete"),
        ("a", "Sleeping"),
        ("b", "Sleeping"),
    ]
    await flow.advance(1000)
    assert (await flow.instance(definition, workflow))["status"] == "Runnable"
    await flow.advance(4000)
    assert (await flow.instance(definition, workflow))["status"] == "Complete"
    [other] = await flow.http_trigger({"n": 0})
    assert [s for s, _ in await flow.logs(definition, other)] == ["fork", "d"]


async def test_if_runs_its_branches_then_continues(flow: Flow) -> None:
    steps = [
        {
            "id": "check",
            "stepType": "If",
            "inputs": {"condition": "{{data.vip}}"},
            "do": [
                [
                    {
                        "id": "greet",
                        "stepType": "Wait",
                        "inputs": {"duration": "00:00:10"},
                        "nextStepId": "mark",
                        "outputs": {},
                    },
                    {"id": "mark", "stepType": "Branch", "selectNextStep": {}, "outputs": {}},
                ],
                [{"id": "other", "stepType": "Wait", "inputs": {"duration": "00:00:01"}}],
            ],
            "nextStepId": "after",
        },
        {
            "id": "after",
            "stepType": "Wait",
            "inputs": {"duration": "00:00:01"},
            "outputs": {"done": "{{'yes'}}"},
        },
    ]
    steps[0]["do"][0][1] = {"id": "mark", "stepType": "Wait", "inputs": {"duration": "00:00:01"}}
    definition = await flow.define(steps, trigger="http_request")
    [vip] = await flow.http_trigger({"vip": True})
    await flow.advance(10_000)
    assert (await flow.instance(definition, vip))["status"] == "Runnable"
    assert ("after", "Complete") not in await flow.logs(definition, vip)
    await flow.advance(1000)  # "mark" ends: both branches done, the If completes
    await flow.advance(1000)  # "after" wakes
    instance = await flow.instance(definition, vip)
    assert instance["status"] == "Complete"
    assert instance["data"]["done"] == "yes"
    assert [s for s, _ in await flow.logs(definition, vip)] == [
        "check",
        "greet",
        "other",
        "mark",
        "after",
    ]

    [regular] = await flow.http_trigger({"vip": False})
    await flow.advance(1000)
    assert [s for s, _ in await flow.logs(definition, regular)] == ["check", "after"]


async def test_business_hours_and_country_routing_with_helpers(flow: Flow) -> None:
    steps = [
        {
            "id": "route",
            "stepType": "Branch",
            "selectNextStep": {
                "sg_open": "{{isCountryCode(data.payload.source, 'SG') && "
                "isTimeOfDayBetween(data.at, '09:00:00', '18:00:00', 'Singapore Standard Time')}}",
                "sg_closed": "{{isCountryCode(data.payload.source, 'SG') && "
                "!isTimeOfDayBetween(data.at, '09:00:00', '18:00:00', 'Singapore Standard Time')}}",
                "us": "{{isCountryCode(data.payload.source, 'US')}}",
                "other": None,
            },
        },
        sms("sg_open", "SG open"),
        sms("sg_closed", "SG closed"),
        sms("us", "US"),
        sms("other", "elsewhere"),
    ]
    definition = await flow.define(steps, trigger="http_request")
    cases = [
        ("+6591234567", "2020-10-15T14:40:15+07:00", "SG open"),  # 15:40 in Singapore
        ("+6591234567", "2020-10-15T12:00:00Z", "SG closed"),  # 20:00 in Singapore
        ("+12025550123", "2020-10-15T12:00:00Z", "US"),
        ("+447911123456", "2020-10-15T12:00:00Z", "elsewhere"),
    ]
    for number, at, _ in cases:
        await flow.http_trigger({"payload": {"source": number}, "at": at})
    assert await flow.texts() == [expected for *_, expected in cases]
    assert len(await flow.instances(definition)) == 4


@pytest.fixture
async def crm() -> AsyncIterator[str]:
    """A real local HTTP server the HttpRequest step calls."""
    seen: list[dict[str, Any]] = []

    async def contacts(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        seen.append(
            {
                "method": request.method,
                "query": dict(request.query),
                "body": body,
                "auth": request.headers.get("Authorization"),
            }
        )
        if request.query.get("phone") == "+6500000000":
            return web.json_response({"error": "unknown"}, status=404)
        return web.json_response({"tier": "gold", "echo": body})

    async def text(_: web.Request) -> web.Response:
        return web.Response(text="<html>not json</html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/contacts", contacts)
    app.router.add_get("/html", text)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_http_request_flow_branches_on_the_response(flow: Flow, crm: str) -> None:
    steps = [
        {
            "id": "lookup",
            "stepType": "HttpRequest",
            "inputs": {
                "url": crm + "/contacts",
                "method": "post",
                "headers": {
                    "authorization": "Bearer {{data.token}}",
                    "content-Type": "application/json",
                },
                "parameters": {"phone": "{{data.phone}}"},
                "body": {"phone": "{{data.phone}}", "tags": ["{{data.tag}}", 1, True]},
                "timeoutSeconds": 10,
            },
            "outputs": {
                "code": "{{step.responseCode}}",
                "tier": "{{step.responseBody.tier}}",
                "reason": "{{step.reasonPhrase}}",
            },
            "selectNextStep": {
                "gold": "{{step.responseCode == '200' && data.tier == 'gold'}}",
                "missing": "{{data.code >= 400 && data.code < 500}}",
            },
        },
        {"id": "gold", "stepType": "Wait", "inputs": {"duration": "00:00:01"}},
        {"id": "missing", "stepType": "Wait", "inputs": {"duration": "00:00:01"}},
    ]
    definition = await flow.define(steps, trigger="http_request")
    [found] = await flow.http_trigger({"phone": "+6591234567", "token": "t0k", "tag": "vip"})
    [unknown] = await flow.http_trigger({"phone": "+6500000000", "token": "t0k", "tag": "x"})
    await flow.advance(1000)
    gold = await flow.instance(definition, found)
    assert gold["data"]["code"] == 200
    assert gold["data"]["reason"] == "OK"
    assert [s for s, _ in await flow.logs(definition, found)] == ["lookup", "gold"]
    assert [s for s, _ in await flow.logs(definition, unknown)] == ["lookup", "missing"]
    assert (await flow.instance(definition, unknown))["data"]["tier"] is None


async def test_non_json_response_is_kept_as_text(flow: Flow, crm: str) -> None:
    steps = [
        {
            "id": "get",
            "stepType": "HttpRequest",
            "inputs": {"url": crm + "/html", "method": "GET"},
            "outputs": {"page": "{{step.responseBody}}"},
        }
    ]
    definition = await flow.define(steps, trigger="http_request")
    [workflow] = await flow.http_trigger({})
    assert (await flow.instance(definition, workflow))["data"]["page"] == "<html>not json</html>"


async def test_http_request_to_a_private_address_faults(flow: Flow, context: AppContext) -> None:
    context.http._allowlist.networks.clear()
    steps = [
        {
            "id": "leak",
            "stepType": "HttpRequest",
            "inputs": {"url": "http://169.254.169.254/latest/meta-data", "method": "GET"},
        }
    ]
    definition = await flow.define(steps, trigger="http_request")
    [workflow] = await flow.http_trigger({})
    assert (await flow.instance(definition, workflow))["status"] == "Terminated"
    [error] = await flow.errors(definition, workflow)
    assert "not allowed" in error["message"]


async def test_a_faulting_expression_terminates_with_an_error_record(flow: Flow) -> None:
    steps = [
        {"id": "ok", "stepType": "Wait", "inputs": {"duration": "00:00:01"}, "nextStepId": "bad"},
        {
            "id": "bad",
            "stepType": "SMS",
            "inputs": {
                "subAccountId": "acme_sms",
                "destination": CUSTOMER,
                "text": "{{data.customer.name.first}}",
            },
        },
    ]
    definition = await flow.define(steps, trigger="http_request")
    [workflow] = await flow.http_trigger({})
    await flow.advance(1000)
    instance = await flow.instance(definition, workflow)
    assert instance["status"] == "Terminated"
    assert [(log["stepName"], log["status"]) for log in instance["logs"]] == [
        ("ok", "Complete"),
        ("bad", "Failed"),
    ]
    [error] = await flow.errors(definition, workflow)
    assert error["workflowId"] == workflow
    assert error["step"] == "bad"
    assert "data.customer.name.first" in error["message"]
    assert error["errorTime"].endswith("Z")
    assert await flow.outbox() == []


async def test_a_provider_rejection_faults_the_step(flow: Flow) -> None:
    definition = await flow.define(
        [
            {
                "id": "send",
                "stepType": "SMS",
                "inputs": {"subAccountId": "acme_sms", "destination": "not-a-number", "text": "hi"},
            }
        ],
        trigger="http_request",
    )
    [workflow] = await flow.http_trigger({})
    [error] = await flow.errors(definition, workflow)
    assert (
        error["message"]
        == "Failed to send SMS because Invalid MSISDN format (not E.164 international number)"
    )


async def test_suspend_resume_terminate(flow: Flow) -> None:
    steps = [
        {"id": "nap", "stepType": "Wait", "inputs": {"duration": "00:01:00"}, "nextStepId": "nap2"},
        {"id": "nap2", "stepType": "Wait", "inputs": {"duration": "00:01:00"}},
    ]
    definition = await flow.define(steps, trigger="http_request")
    [workflow] = await flow.http_trigger({})
    path = f"/definitions/{definition}/workflows/{workflow}"
    await flow.call("PATCH", path, json={"status": "suspend"})
    assert (await flow.instance(definition, workflow))["status"] == "Suspended"
    await flow.advance(5 * MINUTE)  # the timer is due, but a suspended instance does not run
    assert await flow.logs(definition, workflow) == [("nap", "Sleeping")]
    await flow.call("PATCH", path, expect=400, json={"status": "suspend"})
    await flow.call("PATCH", path, json={"status": "resume"})
    await flow.run()  # the overdue timer fires at once
    assert await flow.logs(definition, workflow) == [("nap", "Complete"), ("nap2", "Sleeping")]
    await flow.call("PATCH", path, json={"status": "terminate"})
    instance = await flow.instance(definition, workflow)
    assert instance["status"] == "Terminated"
    assert await flow.logs(definition, workflow) == [("nap", "Complete"), ("nap2", "Cancelled")]
    await flow.advance(5 * MINUTE)
    for command in ("resume", "suspend", "terminate"):
        error = await flow.call("PATCH", path, expect=400, json={"status": command})
        assert error["code"] == 1310
    assert (await flow.call("PATCH", path, expect=400, json={"status": "pause"}))["code"] == 1003
    assert (
        await flow.call(
            "PATCH",
            f"/definitions/{definition}/workflows/nothex",
            expect=400,
            json={"status": "resume"},
        )
    )["code"] == 1000
    assert (
        await flow.call(
            "PATCH",
            f"/definitions/{definition}/workflows/{'0' * 24}",
            expect=404,
            json={"status": "resume"},
        )
    )["code"] == 1301


async def test_instances_keep_their_version(flow: Flow) -> None:
    v1 = [
        {
            "id": "slow",
            "stepType": "Wait",
            "inputs": {"duration": "00:10:00"},
            "nextStepId": "tell",
        },
        sms("tell", "version one"),
    ]
    definition = await flow.define(v1)
    [old] = (await flow.sms(CUSTOMER, "go"))["started"]
    assert await flow.update(definition, [sms("tell", "version two")]) == 2
    [new] = (await flow.sms("+6598765432", "go"))["started"]
    await flow.advance(10 * MINUTE)
    assert await flow.texts() == ["version two", "version one"]
    assert (await flow.instance(definition, old))["version"] == 1
    assert (await flow.instance(definition, new))["version"] == 2
    assert [i["workflowId"] for i in await flow.instances(definition)] == [new]
    assert [i["workflowId"] for i in await flow.instances(definition, version=1)] == [old]


async def test_instance_listing_filters(flow: Flow) -> None:
    definition = await flow.define(
        [{"id": "w", "stepType": "Wait", "inputs": {"duration": "00:01:30"}}],
        trigger="http_request",
    )
    [first] = await flow.http_trigger({})
    flow.clock.advance(MINUTE)
    [second] = await flow.http_trigger({})
    flow.clock.advance(MINUTE)
    await flow.run()
    assert [i["workflowId"] for i in await flow.instances(definition)] == [second, first]
    assert [i["workflowId"] for i in await flow.instances(definition, status="Complete")] == [first]
    assert [i["workflowId"] for i in await flow.instances(definition, status="Runnable")] == [
        second
    ]
    started = (await flow.instance(definition, second))["startedAt"]
    assert [i["workflowId"] for i in await flow.instances(definition, startTimeFrom=started)] == [
        second
    ]
    assert [
        i["workflowId"]
        for i in await flow.instances(definition, startTimeTo="2000-01-01T00:00:00Z")
    ] == []
    assert [i["workflowId"] for i in await flow.instances(definition, limit=1, offset=1)] == [first]
    bad = await flow.call(
        "GET", f"/definitions/{definition}/workflows", expect=400, params={"status": "Done"}
    )
    assert bad["code"] == 1003
    bad = await flow.call(
        "GET",
        f"/definitions/{definition}/workflows",
        expect=400,
        params={"startTimeFrom": "yesterday"},
    )
    assert bad["code"] == 1003


async def test_subaccount_and_status_filters_on_triggers(flow: Flow) -> None:
    wait = [{"id": "w", "stepType": "Wait", "inputs": {"duration": "00:01:00"}}]
    anywhere = await flow.define(wait, trigger="http_request")
    only_b = await flow.define(wait, trigger="http_request", subAccountId="sub_b")
    await flow.define(wait, trigger="http_request", status="disabled")
    assert len(await flow.http_trigger({})) == 1
    assert len(await flow.http_trigger({}, subAccountId="sub_a")) == 1
    assert len(await flow.http_trigger({}, subAccountId="sub_b")) == 2
    assert len(await flow.instances(anywhere)) == 3
    [b_instance] = await flow.instances(only_b)
    assert b_instance["data"]["subAccountId"] == "sub_b"


async def test_test_start_endpoint(flow: Flow) -> None:
    definition = await flow.define(
        [sms("reply", "hi {{data.payload.user.name}}")], status="disabled"
    )
    body = {
        "namespace": "SMS",
        "payload": {"source": CUSTOMER, "user": {"name": "Ann"}, "subAccountId": "sub_x"},
    }
    response = await flow.client.post(
        f"{flow.tenant.base}/definitions/{definition}/workflows",
        json=body,
        headers=flow.tenant.headers,
    )
    assert response.status_code == 201
    workflow = response.json()["workflowId"]
    assert (
        response.headers["location"]
        == f"{flow.tenant.base}/definitions/{definition}/workflows/{workflow}"
    )
    await flow.run()
    assert await flow.texts() == ["hi Ann"]
    assert (await flow.instance(definition, workflow))["data"]["subAccountId"] == "sub_x"
    missing = await flow.call(
        "POST", f"/definitions/{definition}/workflows", expect=404, params={"version": 9}, json={}
    )
    assert missing["code"] == 1300


async def test_deleting_a_definition_removes_its_instances(flow: Flow) -> None:
    definition = await flow.define(SURVEY)
    await flow.sms(CUSTOMER, "start")
    await flow.call("DELETE", f"/definitions/{definition}", expect=202)
    routed = await flow.sms(CUSTOMER, "5")  # nothing waits any more, and nothing starts
    assert routed["resumed"] == routed["started"] == []
    gone = await flow.call("GET", f"/definitions/{definition}/workflows", expect=404)
    assert gone["code"] == 1300


async def test_loop_guard_terminates_runaway_flows(flow: Flow, context: AppContext) -> None:
    steps = [
        {"id": "a", "stepType": "Branch", "selectNextStep": {"b": None}},
        {"id": "b", "stepType": "Branch", "selectNextStep": {"a": None}},
    ]
    definition = await flow.define(steps, trigger="http_request")
    [workflow] = await flow.http_trigger({})
    instance = await flow.instance(definition, workflow)
    assert instance["status"] == "Terminated"
    [error] = await flow.errors(definition, workflow)
    assert "limit" in error["message"]


async def test_chat_apps_reply_matches_channel_user(flow: Flow) -> None:
    steps = [
        {
            "id": "ask",
            "stepType": "ChatAppsMessage",
            "inputs": {
                "subAccountId": "acme_chat",
                "user": {"msisdn": "{{data.payload.user.msisdn}}"},
                "type": "text",
                "content": {"text": "Confirm?"},
            },
            "nextStepId": "wait",
        },
        {
            "id": "wait",
            "stepType": "WaitForReply",
            "inputs": {
                "from": "{{data.payload.user.channelUserId}}",
                "channel": "{{data.payload.recipient.channel}}",
            },
            "outputs": {"choice": "{{step.reply.payload.content.payload}}"},
            "selectNextStep": {"yes": "{{data.choice == 'YES'}}", "no": None},
        },
        {"id": "yes", "stepType": "Wait", "inputs": {"duration": "00:00:01"}},
        {"id": "no", "stepType": "Wait", "inputs": {"duration": "00:00:01"}},
    ]
    definition = await flow.define(steps, trigger="inbound_chat_apps")
    [workflow] = (await flow.chat("whatsapp", CUSTOMER, text="hi"))["started"]
    [message] = await flow.outbox("chatapps")
    assert message["request"]["user"] == {"msisdn": CUSTOMER}
    viber = await flow.chat("viber", CUSTOMER, text="other channel")  # not the channel waited on
    assert viber["resumed"] == []
    assert len(viber["started"]) == 1
    routed = await flow.chat("whatsapp", CUSTOMER, text="Yes", payload="YES")
    assert routed["resumed"] == [workflow]
    await flow.advance(1000)
    assert (await flow.logs(definition, workflow))[-1] == ("yes", "Complete")


async def test_usage_counts_started_workflows(flow: Flow) -> None:
    await flow.define(
        [{"id": "w", "stepType": "Wait", "inputs": {"duration": "1"}}], trigger="http_request"
    )
    for _ in range(3):
        await flow.http_trigger({})
    usage = await flow.call("GET", "/usage")
    assert usage["executedWorkflowCount"] == 3
    assert (usage["countStartedYear"], usage["countStartedMonth"]) == (2023, 11)
    [month] = await flow.call("GET", "/usage/history")
    assert month == {
        **month,
        "accountId": "acme",
        "executedWorkflowCount": 3,
        "month": 11,
        "year": 2023,
    }
    assert len(month["id"]) == 24


async def test_functions_and_timezones(flow: Flow) -> None:
    functions = await flow.call("GET", "/steps/functions")
    assert {f["name"] for f in functions} >= {
        "isCountryCode",
        "stringContains",
        "isTimeOfDayBetween",
        "isDayOfWeek",
        "uuid",
    }
    zones = await flow.call("GET", "/steps/timezones", params={"contains": "singapore"})
    assert "Singapore Standard Time" in {zone["id"] for zone in zones}
    assert all(set(zone) == {"id", "name"} for zone in zones)


async def test_start_rate_limit(flow: Flow, context: AppContext) -> None:
    from relayflow.engine.router import StartRateLimiter

    context.router._limiter = StartRateLimiter(rate_per_s=0.001, burst=2)
    definition = await flow.define(
        [{"id": "w", "stepType": "Wait", "inputs": {"duration": "1"}}], trigger="http_request"
    )
    await flow.http_trigger({})
    await flow.http_trigger({})
    response = await flow.client.post(
        f"{flow.tenant.base}/triggers/http_request", json={}, headers=flow.tenant.headers
    )
    assert response.status_code == 429
    assert response.json()["code"] == 1429
    assert int(response.headers["retry-after"]) >= 1
    assert len(await flow.instances(definition)) == 2


async def test_every_way_to_start_answers_the_rate_limit_alike(
    flow: Flow, context: AppContext
) -> None:
    """The engine refuses in its own words (StartsRateLimited); every service that starts
    instances answers 8x8's 429 + Retry-After: the test start, the sandbox and 8x8's webhook."""
    from relayflow.engine.router import StartRateLimiter

    context.router._limiter = StartRateLimiter(rate_per_s=0.001, burst=0)
    sms = await flow.define([{"id": "w", "stepType": "Wait", "inputs": {"duration": "1"}}])
    base, headers = flow.tenant.base, flow.tenant.headers
    answers = [
        await flow.client.post(f"{base}/definitions/{sms}/workflows", json={}, headers=headers),
        await flow.client.post(
            f"{base}/sandbox/inbound/sms",
            json={"from": "+6591234567", "to": "+6580000000", "text": "hi"},
            headers=headers,
        ),
    ]
    for answer in answers:
        assert answer.status_code == 429, answer.text
        assert answer.json()["code"] == 1429
        assert int(answer.headers["retry-after"]) >= 1
    assert await flow.instances(sms) == []
