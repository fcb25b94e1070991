"""relayflow and the fake 8x8 as separate processes talking real HTTP: connectors, webhooks,
retries, faults. Each test uses its own subaccount so the shared account's flows do not mix."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fake8x8.client import Fake8x8
from tests.support.live_relayflow import Relayflow
from tests.support.processes import RELAYFLOW, free_port, run_cli, wait_for

pytestmark = pytest.mark.slow

ACME_KEY = "acme-8x8-api-key-0001"
CUSTOMER = "+6591234567"


@pytest.fixture(scope="module")
def fake() -> Iterator[Fake8x8]:
    with Fake8x8(api_keys=(ACME_KEY,)) as server:
        yield server


@pytest.fixture(scope="module")
def relayflow(fake: Fake8x8, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relayflow]:
    port = free_port()
    directory = tmp_path_factory.mktemp("e2e")
    env = {
        **os.environ,
        "RELAYFLOW_DATABASE_URL": f"sqlite:///{directory / 'relayflow.db'}",
        "RELAYFLOW_SECRET_KEY": "e2e-secret-key-of-sufficient-length",
        "RELAYFLOW_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "RELAYFLOW_START_BURST": "10000",
    }
    account = run_cli(env, "accounts", "create", "acme")
    run_cli(
        env,
        "accounts",
        "set-provider",
        "acme",
        "8x8",
        "--api-key",
        ACME_KEY,
        "--sms-url",
        fake.urls.sms,
        "--chatapps-url",
        fake.urls.chatapps,
        "--voice-url",
        fake.urls.voice,
    )
    log = open(directory / "serve.log", "w")  # noqa: SIM115 - closed in the finally below
    process = subprocess.Popen(
        [RELAYFLOW, "serve", "--port", str(port)], env=env, stdout=log, stderr=log
    )
    http = httpx.Client(headers={"Authorization": f"Bearer {account['apiKey']}"}, timeout=10)
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, "relayflow to start")
        yield Relayflow(
            f"http://127.0.0.1:{port}", account["apiKey"], account["webhookToken"], http
        )
    finally:
        http.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        if process.returncode not in (0, -15, 143):
            print((directory / "serve.log").read_text())


def sms_reply(step_id: str, text: str, sub_account: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "stepType": "SMS",
        "inputs": {
            "subAccountId": sub_account,
            "destination": "{{data.payload.source}}",
            "text": text,
        },
        **extra,
    }


def sent(fake: Fake8x8, role: str, sub_account: str) -> list[dict[str, Any]]:
    return [r for r in fake.requests(role=role) if r["subAccountId"] == sub_account]


def test_inbound_sms_webhook_triggers_a_reply_that_reaches_8x8(
    fake: Fake8x8, relayflow: Relayflow
) -> None:
    sub = "e2e-auto-reply"
    definition = relayflow.define(
        [sms_reply("reply", "Thanks: {{data.payload.body}}", sub)], "inbound_sms", sub
    )
    delivered = fake.inbound_sms(
        url=relayflow.webhook("sms"),
        from_=CUSTOMER,
        to="+6580000000",
        text="hello",
        sub_account_id=sub,
    )
    assert delivered["status"] == 200
    [request] = wait_for(lambda: sent(fake, "sms", sub), "the reply at 8x8")
    assert request["method"] == "POST"
    assert request["path"] == f"/api/v1/subaccounts/{sub}/messages"
    assert request["headers"]["Authorization"] == "***" + ACME_KEY[-4:]
    assert request["status"] == 200
    [instance] = relayflow.settled(definition)
    step_log = relayflow.call(
        "GET",
        f"/definitions/{definition}/workflows/{instance['workflowId']}",
        params={"includeLogs": "true"},
    )["logs"][0]
    assert request["body"] == {
        "destination": CUSTOMER,
        "text": "Thanks: hello",
        "clientMessageId": step_log["id"],
    }
    [message] = relayflow.call("GET", "/messages", params={"workflowId": instance["workflowId"]})
    assert message["provider"] == "8x8"
    assert message["umid"] == request["answer"]["umid"]

    receipt = fake.sms_receipt(
        message["umid"], "delivered", url=relayflow.webhook("sms"), detail="delivered_to_recipient"
    )
    assert receipt["status"] == 200
    history = relayflow.call("GET", f"/messages/{message['umid']}")
    assert history["status"] == "delivered"
    assert [r["state"] for r in history["receipts"]] == ["delivered"]


def test_a_webhook_delivered_twice_starts_one_instance(fake: Fake8x8, relayflow: Relayflow) -> None:
    sub = "e2e-dedupe"
    definition = relayflow.define([sms_reply("reply", "once", sub)], "inbound_sms", sub)
    first = fake.inbound_sms(
        url=relayflow.webhook("sms"),
        from_=CUSTOMER,
        to="+6580000000",
        text="hi",
        sub_account_id=sub,
    )
    again = fake.webhook(relayflow.webhook("sms"), first["body"])  # 8x8 retrying the same event
    assert (first["status"], again["status"]) == (200, 200)
    assert again["response"]["duplicate"] is True
    relayflow.settled(definition)
    time.sleep(0.5)  # anything wrongly started would have had time to send
    assert len(relayflow.instances(definition)) == 1
    assert len(sent(fake, "sms", sub)) == 1


def test_a_webhook_with_a_wrong_token_is_rejected_and_stored_nowhere(
    fake: Fake8x8, relayflow: Relayflow
) -> None:
    sub = "e2e-wrong-token"
    definition = relayflow.define([sms_reply("reply", "never", sub)], "inbound_sms", sub)
    rejected = fake.inbound_sms(
        url=relayflow.webhook("sms", token="wh_forged"),
        from_=CUSTOMER,
        to="+6580000000",
        text="hi",
        sub_account_id=sub,
    )
    assert rejected["status"] == 401
    time.sleep(0.5)
    assert relayflow.instances(definition) == []
    assert sent(fake, "sms", sub) == []


def test_whatsapp_survey_resumes_on_a_v3_button_reply(fake: Fake8x8, relayflow: Relayflow) -> None:
    sub = "e2e-whatsapp"
    ask = {
        "id": "ask",
        "stepType": "ChatAppsMessage",
        "nextStepId": "wait",
        "inputs": {
            "subAccountId": sub,
            "user": {"msisdn": "{{data.payload.user.msisdn}}"},
            "type": "text",
            "content": {"text": "Confirm your booking?"},
        },
    }
    wait = {
        "id": "wait",
        "stepType": "WaitForReply",
        "inputs": {"from": "{{data.payload.user.channelUserId}}", "channel": "whatsapp"},
        "outputs": {"choice": "{{step.reply.payload.content.payload}}"},
        "selectNextStep": {"confirmed": "{{data.choice == 'CONFIRM'}}", "other": None},
    }
    confirmed = {
        "id": "confirmed",
        "stepType": "ChatAppsMessage",
        "inputs": {
            "subAccountId": sub,
            "user": {"msisdn": "{{data.payload.user.msisdn}}"},
            "type": "text",
            "content": {"text": "Booked!"},
        },
    }
    other = {"id": "other", "stepType": "Wait", "inputs": {"duration": "0"}}
    definition = relayflow.define([ask, wait, confirmed, other], "inbound_chat_apps", sub)
    start = fake.inbound_chat(
        url=relayflow.webhook("chatapps"),
        from_=CUSTOMER,
        sub_account_id=sub,
        version=3,
        text="book",
    )
    [workflow] = start["response"]["started"]
    wait_for(lambda: sent(fake, "chatapps", sub), "the question at 8x8")
    reply = fake.inbound_chat(
        url=relayflow.webhook("chatapps"),
        from_=CUSTOMER,
        sub_account_id=sub,
        version=3,
        text="Confirm",
        payload="CONFIRM",
    )
    assert reply["response"]["resumed"] == [workflow]
    assert reply["response"]["started"] == []
    [instance] = relayflow.settled(definition)
    assert instance["data"]["choice"] == "CONFIRM"
    texts = [r["body"]["content"]["text"] for r in sent(fake, "chatapps", sub)]
    assert texts == ["Confirm your booking?", "Booked!"]


def test_ivr_resumes_on_the_dtmf_callback(fake: Fake8x8, relayflow: Relayflow) -> None:
    sub = "e2e-ivr"
    steps = [
        {
            "id": "menu",
            "stepType": "VoiceMessage",
            "nextStepId": "digits",
            "inputs": {
                "subAccountId": sub,
                "action": "say&capture",
                "clientRequestId": "{{uuid()}}",
                "params": {
                    "source": "+6560000000",
                    "destination": "{{data.phone}}",
                    "text": "Press 1",
                    "voiceProfile": "en-US-ZiraRUS",
                    "minDigits": 1,
                    "maxDigits": 1,
                    "digitTimeout": 5000,
                    "overallTimeout": 10000,
                },
            },
            "outputs": {"ref": "{{step.response.clientRequestId}}"},
        },
        {
            "id": "digits",
            "stepType": "WaitForDTMF",
            "inputs": {"dtmfRequestId": "{{data.ref}}"},
            "outputs": {"dtmf": "{{step.dtmfData.actionDetails.dtmf}}"},
            "selectNextStep": {"sales": "{{data.dtmf == '1'}}", "other": None},
        },
        {
            "id": "sales",
            "stepType": "SMS",
            "inputs": {
                "subAccountId": sub,
                "destination": "{{data.phone}}",
                "text": "Sales will call you",
            },
        },
        {"id": "other", "stepType": "Wait", "inputs": {"duration": "0"}},
    ]
    definition = relayflow.define(steps, "http_request", sub)
    relayflow.call(
        "POST", "/triggers/http_request", params={"subAccountId": sub}, json={"phone": CUSTOMER}
    )
    [call] = wait_for(lambda: sent(fake, "voice", sub), "the call at 8x8")
    callback_url = call["body"]["callflow"][0]["params"]["dtmfCallbackUrl"]
    assert callback_url.startswith(f"{relayflow.url}/webhooks/acme/voice?sig=")
    pressed = fake.dtmf(
        digits="1", client_request_id=call["body"]["clientRequestId"]
    )  # to the recorded URL
    assert pressed["status"] == 200
    [instance] = relayflow.settled(definition)
    assert instance["data"]["dtmf"] == "1"
    assert [r["body"]["text"] for r in sent(fake, "sms", sub)] == ["Sales will call you"]
    forged = fake.webhook(callback_url.replace("sig=", "sig=0"), pressed["body"])
    assert forged["status"] == 401


def test_429_and_500_are_retried_and_the_message_is_sent_once(
    fake: Fake8x8, relayflow: Relayflow
) -> None:
    sub = "e2e-retry"
    definition = relayflow.define(
        [
            {
                "id": "notify",
                "stepType": "SMS",
                "inputs": {
                    "subAccountId": sub,
                    "destination": "{{data.phone}}",
                    "text": "Your code is 1234",
                },
            }
        ],
        "http_request",
        sub,
    )
    fake.fail("sms", "500", count=1)
    fake.fail("sms", "429", count=1, retry_after=1)
    relayflow.call(
        "POST", "/triggers/http_request", params={"subAccountId": sub}, json={"phone": CUSTOMER}
    )
    [instance] = relayflow.settled(definition)
    assert instance["status"] == "Complete"
    attempts = sent(fake, "sms", sub)
    assert [a["status"] for a in attempts] == [500, 429, 200]
    assert len({a["body"]["clientMessageId"] for a in attempts}) == 1  # the same message each time


def test_a_401_from_8x8_faults_the_step_with_8x8s_message(
    fake: Fake8x8, relayflow: Relayflow
) -> None:
    sub = "e2e-unauthorized"
    definition = relayflow.define(
        [
            {
                "id": "notify",
                "stepType": "SMS",
                "inputs": {"subAccountId": sub, "destination": "{{data.phone}}", "text": "hi"},
            }
        ],
        "http_request",
        sub,
    )
    fake.fail("sms", "401", count=1)
    relayflow.call(
        "POST", "/triggers/http_request", params={"subAccountId": sub}, json={"phone": CUSTOMER}
    )
    [instance] = relayflow.settled(definition)
    assert instance["status"] == "Terminated"
    [error] = relayflow.call(
        "GET", f"/definitions/{definition}/workflows/{instance['workflowId']}/errors"
    )
    assert error["step"] == "notify"
    assert error["message"].startswith(
        "Failed to send SMS because Request was not authenticated properly"
    )
    assert len(sent(fake, "sms", sub)) == 1  # permanent: not retried


def test_an_invalid_number_is_8x8s_400_message(fake: Fake8x8, relayflow: Relayflow) -> None:
    sub = "e2e-invalid"
    definition = relayflow.define(
        [
            {
                "id": "notify",
                "stepType": "SMS",
                "inputs": {"subAccountId": sub, "destination": "{{data.phone}}", "text": "hi"},
            }
        ],
        "http_request",
        sub,
    )
    relayflow.call(
        "POST",
        "/triggers/http_request",
        params={"subAccountId": sub},
        json={"phone": "0" + uuid.uuid4().hex[:6]},
    )
    [instance] = relayflow.settled(definition)
    [error] = relayflow.call(
        "GET", f"/definitions/{definition}/workflows/{instance['workflowId']}/errors"
    )
    assert "Invalid MSISDN format" in error["message"]
