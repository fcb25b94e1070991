"""8x8's webhooks, in process: authentication, dedupe, routing, receipts (both databases)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from relayflow.api.context import AppContext
from relayflow.store.tables import inbox
from tests.support.flows import Flow
from tests.support.webhooks import CUSTOMER, inbound_sms


def inbound_chat_v3(channel_user: str, title: str, payload: str) -> dict[str, Any]:
    return {
        "namespace": "ChatApps",
        "eventType": "inbound_message_received",
        "description": "ChatApps inbound message",
        "version": 3,
        "payload": {
            "umid": str(uuid.uuid4()),
            "subAccountId": "acme_chat",
            "timestamp": "2026-01-01T14:34:56.017Z",
            "user": {"channelUserId": channel_user, "name": "Ann"},
            "recipient": {"channel": "whatsapp", "channelId": "c-1"},
            "type": "Interactive",
            "content": {
                "text": title,
                "payload": payload,
                "interactive": {
                    "type": "button_reply",
                    "button_reply": {"id": payload, "title": title},
                },
            },
        },
    }


async def post(
    flow: Flow, kind: str, body: Any, token: str | None = None, **kwargs: Any
) -> httpx.Response:
    params = {"token": token if token is not None else flow.tenant.webhook_token}
    response = await flow.client.post(f"/webhooks/acme/{kind}", json=body, params=params, **kwargs)
    await flow.run()
    return response


async def inbox_count(context: AppContext) -> int:
    async with context.db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(inbox)) or 0)


async def test_inbound_sms_webhook_starts_once_even_when_retried(flow: Flow) -> None:
    definition = await flow.define(
        [
            {
                "id": "reply",
                "stepType": "SMS",
                "inputs": {
                    "subAccountId": "acme_sms",
                    "destination": "{{data.payload.source}}",
                    "text": "got it",
                },
            }
        ]
    )
    event = inbound_sms("hello")
    first = await post(flow, "sms", event)
    assert first.status_code == 200
    assert first.json()["kind"] == "sms_inbound"
    assert len(first.json()["started"]) == 1
    again = await post(flow, "sms", event)  # 8x8 retries after a timeout
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["started"] == []
    assert len(await flow.instances(definition)) == 1
    assert len(await flow.outbox()) == 1


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({}, {}),
        ({"token": "wh_wrong"}, {}),
        ({}, {"Authorization": "Bearer wh_wrong"}),
        ({"token": "x" * 5000}, {}),
    ],
)
async def test_webhooks_with_a_wrong_token_are_rejected_and_stored_nowhere(
    flow: Flow, context: AppContext, params: dict[str, str], headers: dict[str, str]
) -> None:
    await flow.define([{"id": "w", "stepType": "Wait", "inputs": {"duration": "1"}}])
    for kind in ("sms", "chatapps", "voice"):
        response = await flow.client.post(
            f"/webhooks/acme/{kind}", json=inbound_sms("hi"), params=params, headers=headers
        )
        assert response.status_code == 401
        assert response.json()["code"] == 1200
    unknown = await flow.client.post(
        "/webhooks/nobody/sms", json=inbound_sms("hi"), params={"token": flow.tenant.webhook_token}
    )
    assert unknown.status_code == 401
    assert await inbox_count(context) == 0


async def test_bearer_token_is_accepted(flow: Flow) -> None:
    response = await flow.client.post(
        "/webhooks/acme/sms",
        json=inbound_sms("hi"),
        headers={"Authorization": f"Bearer {flow.tenant.webhook_token}"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"eventType": "inbound_message_received"},
        {"eventType": "inbound_message_received", "payload": {"source": CUSTOMER}},
        {"eventType": "inbound_message_received", "payload": {"umid": "u-1"}},
        {"eventType": "outbound_message_status_changed", "payload": {"umid": "u-1", "status": "x"}},
        [1, 2],
    ],
)
async def test_malformed_webhooks_are_400(flow: Flow, context: AppContext, body: Any) -> None:
    response = await post(flow, "sms", body)
    assert response.status_code == 400
    assert set(response.json()) >= {"code", "message", "errorId", "timestamp"}
    assert await inbox_count(context) == 0


async def test_delivery_receipts_are_stored_against_the_message(flow: Flow) -> None:
    await flow.define(
        [
            {
                "id": "reply",
                "stepType": "SMS",
                "inputs": {
                    "subAccountId": "acme_sms",
                    "destination": "{{data.payload.source}}",
                    "text": "hi",
                },
            }
        ]
    )
    await post(flow, "sms", inbound_sms("hello"))
    [sent] = await flow.outbox()
    for state, detail in (
        ("sent", "delivered_to_operator"),
        ("delivered", "delivered_to_recipient"),
    ):
        receipt = {
            "namespace": "SMS",
            "eventType": "outbound_message_status_changed",
            "description": "SMS outbound message delivery receipt",
            "payload": {
                "umid": sent["umid"],
                "clientMessageId": sent["clientMessageId"],
                "subAccountId": "acme_sms",
                "source": "8x8",
                "destination": CUSTOMER,
                "status": {"state": state, "detail": detail, "timestamp": "2026-01-01T00:00:00Z"},
                "smsCount": 1,
            },
        }
        response = await post(flow, "sms", receipt)
        assert response.json()["kind"] == "sms_receipt"
        assert (await post(flow, "sms", receipt)).json()["duplicate"] is True
    message = await flow.call("GET", f"/messages/{sent['umid']}")
    assert message["status"] == "delivered"
    assert [(r["state"], r["detail"]) for r in message["receipts"]] == [
        ("sent", "delivered_to_operator"),
        ("delivered", "delivered_to_recipient"),
    ]
    assert (await flow.call("GET", "/messages/not-a-umid", expect=404))["code"] == 1302


async def test_whatsapp_survey_resumes_on_a_v3_button_reply(flow: Flow) -> None:
    steps = [
        {
            "id": "ask",
            "stepType": "ChatAppsMessage",
            "nextStepId": "wait",
            "inputs": {
                "subAccountId": "acme_chat",
                "user": {"channelUserId": "{{data.payload.user.channelUserId}}"},
                "type": "text",
                "content": {"text": "Confirm?"},
            },
        },
        {
            "id": "wait",
            "stepType": "WaitForReply",
            "inputs": {"from": "{{data.payload.user.channelUserId}}", "channel": "whatsapp"},
            "outputs": {"choice": "{{step.reply.payload.content.payload}}"},
            "selectNextStep": {"yes": "{{data.choice == 'YES'}}", "no": None},
        },
        {"id": "yes", "stepType": "Wait", "inputs": {"duration": "0"}},
        {"id": "no", "stepType": "Wait", "inputs": {"duration": "0"}},
    ]
    definition = await flow.define(steps, trigger="inbound_chat_apps")
    first = await post(flow, "chatapps", inbound_chat_v3("SG.abc123", "hi", "START"))
    [workflow] = first.json()["started"]
    reply = await post(flow, "chatapps", inbound_chat_v3("SG.abc123", "Yes", "YES"))
    assert reply.json()["resumed"] == [workflow]
    assert reply.json()["started"] == []
    assert (await flow.logs(definition, workflow))[-1] == ("yes", "Complete")


IVR = [
    {
        "id": "call",
        "stepType": "VoiceMessage",
        "nextStepId": "keys",
        "inputs": {
            "subAccountId": "acme_voice",
            "action": "say&capture",
            "clientRequestId": "{{data.ref}}",
            "params": {
                "destination": "+6591234567",
                "text": "Press a key",
                "voiceProfile": "en-US-ZiraRUS",
            },
        },
        "outputs": {"uid": "{{step.response.uid}}"},
    },
    {
        "id": "keys",
        "stepType": "WaitForDTMF",
        "inputs": {"dtmfRequestId": "{{data.uid}}"},
        "outputs": {"digits": "{{step.dtmfData.actionDetails.dtmf}}"},
    },
]


async def test_legacy_dtmf_callback_resumes_the_ivr(flow: Flow) -> None:
    definition = await flow.define(IVR, trigger="http_request")
    [workflow] = await flow.http_trigger({"ref": "ref-1"})
    uid = (await flow.instance(definition, workflow))["data"]["uid"]
    callback = {
        "uid": uid,
        "status": {"code": "DTMF", "timestamp": "2026-01-01T10:05:15.076Z"},
        "destination": CUSTOMER,
        "clientRequestId": "not-the-wait-key",
        "actionDetails": {"dtmf": "42"},
    }
    response = await post(flow, "voice", callback)
    assert response.json()["resumed"] == [workflow]
    instance = await flow.instance(definition, workflow)
    assert instance["status"] == "Complete"
    assert instance["data"]["digits"] == "42"
    assert (await post(flow, "voice", callback)).json()["duplicate"] is True


async def test_voice_call_action_webhook_resumes_by_session(flow: Flow) -> None:
    definition = await flow.define(IVR, trigger="http_request")
    [workflow] = await flow.http_trigger({"ref": "ref-2"})
    session = (await flow.instance(definition, workflow))["data"]["uid"]
    event = {
        "namespace": "VOICE",
        "eventType": "CALL_ACTION",
        "description": "Action completed",
        "payload": {
            "eventId": str(uuid.uuid4()),
            "callId": "c-1",
            "sessionId": session,
            "subAccountId": "acme_voice",
            "callStatus": "ACTION_COMPLETED",
            "callDirection": "OUTBOUND",
            "callType": "PSTN",
            "source": "+6560000000",
            "destination": CUSTOMER,
            "eventData": {"dtmf": "7"},
            "timestamp": "2026-01-01T10:05:15Z",
        },
    }
    response = await post(flow, "voice", event)
    assert response.json()["resumed"] == [workflow]
    assert (await flow.instance(definition, workflow))["data"]["digits"] == "7"
    summary = {
        "namespace": "VOICE",
        "eventType": "SESSION_SUMMARY",
        "payload": {"sessionId": session, "sessionStatus": "COMPLETED"},
    }
    assert (await post(flow, "voice", summary)).json()["kind"] == "voice_other"
