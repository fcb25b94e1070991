"""`relayflow test`'s runner on the real engine: every script action, every `expect` key, every
kind of mock, checkpoints, and the failures each one reports (issue 11)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from relayflow.testing.runner import run_flow_test
from relayflow.testing.testfile import load_test_file
from tests.support.flowtest import PHONE, definition, http, run_document, sms, wait, write_test

CRM = "https://crm.example.com"


def auto_reply(text: str = "Thanks!") -> dict[str, Any]:
    return definition(
        [sms("reply", text, destination="{{data.payload.source}}")], trigger="inbound_sms"
    )


def reply_flow(channel: str, answer: str) -> list[dict[str, Any]]:
    """Ask, wait up to a day for a reply on `channel`, store `answer` (an expression)."""
    return [
        sms("ask", "Question?", "wait"),
        {
            "id": "wait",
            "stepType": "WaitForReply",
            "inputs": {"from": "{{data.phone}}", "channel": channel, "timeout": "1.00:00:00"},
            "outputs": {"answer": answer},
            "nextStepId": "thanks",
        },
        sms("thanks", "Got it: {{data.answer}}"),
    ]


def say_and_capture(step_id: str = "menu", next_step: str = "digits") -> dict[str, Any]:
    return {
        "id": step_id,
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
        "outputs": {"call": "{{step.response.clientRequestId}}"},
        "nextStepId": next_step,
    }


IVR = definition(
    [
        say_and_capture(),
        {
            "id": "digits",
            "stepType": "WaitForDTMF",
            "inputs": {"dtmfRequestId": "{{data.call}}", "timeout": "00:05:00"},
            "outputs": {"choice": "{{step.dtmfData.actionDetails.dtmf}}"},
            "nextStepId": "done",
        },
        sms("done", "You pressed {{data.choice}}"),
    ]
)


# --------------------------------------------------------------------------------------------
# Script actions


def test_inbound_sms_starts_an_instance_with_the_webhook_as_data(tmp_path: Path) -> None:
    result = run_document(
        tmp_path,
        {
            "definition": auto_reply(),
            "script": [
                {
                    "do": "inbound_sms",
                    "from": PHONE,
                    "to": "+6580000001",
                    "text": "hi",
                    "subAccountId": "acme_sms",
                },
                {"do": "inbound_sms", "from": "+6598765432", "text": "hello"},
            ],
            "expect": {
                "outbox": [
                    {"channel": "sms", "to": PHONE, "text": "Thanks!"},
                    {"channel": "sms", "to": "+6598765432", "text": "Thanks!"},
                ],
                "instances": [
                    {
                        "status": "Complete",
                        "data": {
                            "subAccountId": "acme_sms",
                            "payload": {
                                "source": PHONE,
                                "destination": "+6580000001",
                                "body": "hi",
                                "subAccountId": "acme_sms",
                            },
                        },
                    },
                    # `to` defaults to the sandbox's virtual number
                    {"status": "Complete", "data": {"payload": {"destination": "+6580000000"}}},
                ],
            },
        },
    )
    assert result.failures == []
    assert result.completed


def test_an_inbound_sms_is_a_reply_first_and_starts_nothing_then(tmp_path: Path) -> None:
    flow = definition(
        [
            sms("ask", "Question?", "wait", destination="{{data.payload.source}}"),
            {
                "id": "wait",
                "stepType": "WaitForReply",
                "inputs": {"from": "{{data.payload.source}}", "channel": "sms"},
                "outputs": {"answer": "{{step.reply.payload.body}}"},
            },
        ],
        trigger="inbound_sms",
    )
    result = run_document(
        tmp_path,
        {
            "definition": flow,
            "script": [
                {"do": "inbound_sms", "from": PHONE, "text": "start"},
                {"do": "inbound_sms", "from": PHONE, "text": "my answer"},
            ],
            "expect": {
                "outbox": [{"text": "Question?"}],
                "instances": [{"status": "Complete", "data": {"answer": "my answer"}}],
            },
        },
    )
    assert result.failures == []


def test_inbound_chat_text_and_quick_reply_payload(tmp_path: Path) -> None:
    flow = definition(
        [
            {
                "id": "ask",
                "stepType": "ChatAppsMessage",
                "inputs": {
                    "subAccountId": "acme_wa",
                    "user": {"msisdn": "{{data.payload.user.msisdn}}"},
                    "type": "text",
                    "content": {"text": "Confirm your booking?"},
                },
                "outputs": {"phone": "{{data.payload.user.msisdn}}"},
                "nextStepId": "wait",
            },
            {
                "id": "wait",
                "stepType": "WaitForReply",
                "inputs": {"from": "{{data.phone}}", "channel": "whatsapp"},
                "outputs": {
                    "title": "{{step.reply.payload.content.text}}",
                    "button": "{{step.reply.payload.content.payload}}",
                },
            },
        ],
        trigger="inbound_chat_apps",
    )
    result = run_document(
        tmp_path,
        {
            "definition": flow,
            "script": [
                {
                    "do": "inbound_chat",
                    "channel": "whatsapp",
                    "from": PHONE,
                    "text": "book",
                    "subAccountId": "acme_wa",
                },
                {
                    "do": "inbound_chat",
                    "channel": "whatsapp",
                    "from": PHONE,
                    "text": "Yes",
                    "payload": "yes",
                },
            ],
            "expect": {
                "outbox": [
                    {
                        "channel": "chatapps",
                        "text": "Confirm your booking?",
                        "subAccountId": "acme_wa",
                        "request": {"user": {"msisdn": PHONE}, "type": "text"},
                    }
                ],
                "instances": [
                    {
                        "status": "Complete",
                        "data": {
                            "subAccountId": "acme_wa",
                            "payload": {"recipient": {"channel": "whatsapp"}},
                            "title": "Yes",
                            "button": "yes",
                        },
                    }
                ],
            },
        },
    )
    assert result.failures == []


def test_inbound_chat_payload_alone_is_a_button_press(tmp_path: Path) -> None:
    result = run_document(
        tmp_path,
        {
            "definition": definition(reply_flow("viber", "{{step.reply.payload.content.payload}}")),
            "script": [
                {"do": "http_trigger", "body": {"phone": PHONE}},
                {"do": "inbound_chat", "channel": "Viber", "from": PHONE, "payload": "opt-2"},
            ],
            "expect": {"instances": [{"status": "Complete", "data": {"answer": "opt-2"}}]},
        },
    )
    assert result.failures == []


def test_http_trigger_body_and_sub_account(tmp_path: Path) -> None:
    flow = definition([sms("hello", "Hello {{data.name}}")], subAccountId="acme_eu")
    result = run_document(
        tmp_path,
        {
            "definition": flow,
            "script": [
                # A definition bound to a subaccount ignores triggers for no subaccount.
                {"do": "http_trigger", "body": {"phone": PHONE, "name": "Ann"}},
                {"expect": {"instances": []}},
                {
                    "do": "http_trigger",
                    "body": {"phone": PHONE, "name": "Bo"},
                    "subAccountId": "acme_eu",
                },
            ],
            "expect": {
                "outbox": [{"text": "Hello Bo"}],
                "instances": [
                    {
                        "status": "Complete",
                        "data": {"name": "Bo", "phone": PHONE, "subAccountId": "acme_eu"},
                    }
                ],
            },
        },
    )
    assert result.failures == []


def test_dtmf_answers_the_latest_say_and_capture_call_or_the_one_to_a_number(
    tmp_path: Path,
) -> None:
    other = "+6598765432"
    result = run_document(
        tmp_path,
        {
            "definition": IVR,
            "script": [
                {"do": "http_trigger", "body": {"phone": PHONE}},
                {"do": "http_trigger", "body": {"phone": other}},
                {"do": "dtmf", "digits": "2"},  # the latest call: to `other`
                {"expect": {"instances": [{"status": "Runnable"}, {"status": "Complete"}]}},
                {"do": "dtmf", "digits": "1", "to": PHONE},
            ],
            "expect": {
                "outbox": [
                    {"channel": "voice", "to": PHONE, "text": "Press 1 or 2"},
                    {"channel": "voice", "to": other, "text": "Press 1 or 2"},
                    {"channel": "sms", "to": other, "text": "You pressed 2"},
                    {"channel": "sms", "to": PHONE, "text": "You pressed 1"},
                ],
                "instances": [
                    {"status": "Complete", "data": {"choice": "1"}},
                    {"status": "Complete", "data": {"choice": "2"}},
                ],
            },
        },
    )
    assert result.failures == []


def test_dtmf_without_a_call_fails_the_test_and_ends_the_script(tmp_path: Path) -> None:
    result = run_document(
        tmp_path,
        {
            "definition": IVR,
            "script": [
                {"do": "http_trigger", "body": {"phone": PHONE}},
                {"do": "dtmf", "digits": "1", "to": "+6500000000"},
                {"do": "dtmf", "digits": "1"},
            ],
            "expect": {"instances": [{"status": "Complete"}]},
        },
    )
    assert result.failures == [
        "script[1] (dtmf): dtmf: no say&capture call to +6500000000 has been made"
    ]
    assert not result.completed
    assert result.instances[0]["status"] == "Runnable"  # the last dtmf never ran


def test_advance_fires_timers_in_order_within_one_span(tmp_path: Path) -> None:
    flow = definition(
        [
            {
                "id": "fork",
                "stepType": "Branch",
                "selectNextStep": {"slow": "{{true}}", "fast": "{{true}}"},
            },
            wait("slow", "02:00:00", "late"),
            wait("fast", "01:00:00", "early"),
            sms("late", "after two hours", "day"),
            sms("early", "after one hour"),
            wait("day", "1.00:00:00", "tomorrow"),
            sms("tomorrow", "a day later"),
        ]
    )
    result = run_document(
        tmp_path,
        {
            "definition": flow,
            "script": [
                {"do": "http_trigger", "body": {"phone": PHONE}},
                {"do": "advance", "by": "00:59:59"},
                {"expect": {"outbox": []}},
                {"do": "advance", "by": "00:00:01"},
                {"expect": {"outbox": [{"text": "after one hour"}]}},
                # A number is whole days: everything in that span fires, in due order.
                {"do": "advance", "by": 1},
                {"expect": {"instances": [{"status": "Runnable"}]}},
                {"do": "advance", "by": "01:00:00"},
            ],
            "expect": {
                "outbox": [
                    {"text": "after one hour"},
                    {"text": "after two hours"},
                    {"text": "a day later"},
                ],
                "instances": [{"status": "Complete"}],
            },
        },
    )
    assert result.failures == []


def test_advancing_thirty_days_fires_every_daily_timer(tmp_path: Path) -> None:
    flow = definition(
        [
            {
                "id": "tick",
                "stepType": "SMS",
                "inputs": {"subAccountId": "acme_sms", "destination": PHONE, "text": "daily"},
                "outputs": {"ticks": "{{(data.ticks || 0) + 1}}"},
                "nextStepId": "sleep",
            },
            wait("sleep", "1.00:00:00", "tick"),
        ]
    )
    result = run_document(
        tmp_path,
        {
            "definition": flow,
            "script": [{"do": "http_trigger", "body": {}}, {"do": "advance", "by": 30}],
            "expect": {"instances": [{"status": "Runnable", "data": {"ticks": 31}}]},
        },
    )
    assert result.failures == []
    assert len(result.outbox) == 31


def test_checkpoints_see_everything_so_far_and_the_script_goes_on(tmp_path: Path) -> None:
    result = run_document(
        tmp_path,
        {
            "definition": auto_reply(),
            "script": [
                {"do": "inbound_sms", "from": PHONE, "text": "one"},
                {"expect": {"outbox": [{"text": "Thanks!"}], "instances": [{}]}},
                {"do": "inbound_sms", "from": PHONE, "text": "two"},
                {"expect": {"outbox": [{"text": "Thanks!"}], "httpCalls": []}},
            ],
            "expect": {"outbox": [{}, {}], "instances": [{}, {}]},
        },
    )
    assert result.failures == [
        "script[3].expect.outbox: expected 1 entry, got 2",
        'script[3].expect.outbox[1]: not expected: {"channel": "sms", "to": "+6591234567", '
        '"text": "Thanks!", "subAccountId": "acme_sms"}',
    ]
    assert result.completed


# --------------------------------------------------------------------------------------------
# Every expect key


def test_outbox_request_is_the_exact_8x8_body(tmp_path: Path) -> None:
    document = {
        "definition": definition([sms("hi", "Hi there", source="ACME", country="SG")]),
        "script": [{"do": "http_trigger", "body": {"phone": PHONE}}],
        "expect": {
            "outbox": [
                {
                    "channel": "sms",
                    "to": PHONE,
                    "text": "Hi there",
                    "subAccountId": "acme_sms",
                    "request": {
                        "destination": PHONE,
                        "text": "Hi there",
                        "source": "ACME",
                        "country": "SG",
                    },
                }
            ]
        },
    }
    assert run_document(tmp_path, document).failures == []
    document["expect"]["outbox"][0]["request"]["source"] = "ACME Ltd"
    document["expect"]["outbox"][0]["subAccountId"] = "other"
    assert run_document(tmp_path, document).failures == [
        'expect.outbox[0].subAccountId: expected "other", got "acme_sms"',
        'expect.outbox[0].request.source: expected "ACME Ltd", got "ACME"',
    ]


def test_instances_status_data_version_and_errors(tmp_path: Path) -> None:
    document: dict[str, Any] = {
        "definition": definition([sms("one", "first", "two"), sms("two", "second")]),
        "mocks": {"sms": [{"httpStatus": 200}, {"httpStatus": 400, "message": "Bad number"}]},
        "script": [{"do": "http_trigger", "body": {"phone": PHONE}}],
        "expect": {
            "outbox": [{"text": "first"}],
            "instances": [
                {
                    "status": "Terminated",
                    "version": 1,
                    "data": {"phone": PHONE, "accountId": "acme"},
                    "errors": [{"step": "two", "message": "Failed to send SMS because Bad number"}],
                }
            ],
        },
    }
    assert run_document(tmp_path, document).failures == []
    document["expect"]["instances"] = [
        {"status": "Complete", "version": 2, "errors": [], "data": {"phone": 6591234567}}
    ]
    assert run_document(tmp_path, document).failures == [
        'expect.instances[0].status: expected "Complete", got "Terminated"',
        "expect.instances[0].version: expected 2, got 1",
        "expect.instances[0].errors: expected 0 entries, got 1",
        'expect.instances[0].errors[0]: not expected: {"step": "two", '
        '"message": "Failed to send SMS because Bad number"}',
        'expect.instances[0].data.phone: expected 6591234567, got "+6591234567"',
    ]


def test_http_calls_method_url_headers_and_body(tmp_path: Path) -> None:
    flow = definition(
        [
            http(
                "save",
                f"{CRM}/contacts",
                "post",
                headers={"Authorization": "Bearer {{data.token}}"},
                parameters={"source": "sms"},
                body={"phone": "{{data.phone}}", "tags": ["vip", 1]},
            )
        ]
    )
    document: dict[str, Any] = {
        "definition": flow,
        "mocks": {
            "http": [{"urlPrefix": f"{CRM}/contacts", "respond": [{"status": 201, "json": {}}]}]
        },
        "script": [{"do": "http_trigger", "body": {"phone": PHONE, "token": "t0k"}}],
        "expect": {
            "httpCalls": [
                {
                    "method": "POST",
                    "url": f"{CRM}/contacts?source=sms",
                    "headers": {"Authorization": "Bearer t0k"},
                    "body": {"phone": PHONE, "tags": ["vip", 1.0]},
                }
            ],
            "instances": [{"data": {"save_code": 201, "save_body": {}}}],
        },
    }
    assert run_document(tmp_path, document).failures == []
    document["expect"]["httpCalls"][0]["body"]["tags"] = ["vip"]
    document["expect"]["httpCalls"][0]["headers"] = {"Authorization": "Bearer other"}
    assert run_document(tmp_path, document).failures == [
        'expect.httpCalls[0].headers.Authorization: expected "Bearer other", got "Bearer t0k"',
        "expect.httpCalls[0].body.tags: expected 1 entry, got 2",
        "expect.httpCalls[0].body.tags[1]: not expected: 1",
    ]


def test_leaving_a_key_out_of_expect_does_not_check_it(tmp_path: Path) -> None:
    result = run_document(
        tmp_path,
        {
            "definition": auto_reply(),
            "script": [{"do": "inbound_sms", "from": PHONE, "text": "hi"}],
            "expect": {"instances": [{"status": "Complete"}]},
        },
    )
    assert result.failures == []
    assert len(result.outbox) == 1


# --------------------------------------------------------------------------------------------
# HTTP mocks


def test_http_json_and_text_answers_the_last_one_repeating(tmp_path: Path) -> None:
    steps = [
        http("a", f"{CRM}/orders/1", next_step="b"),
        http("b", f"{CRM}/orders/1", next_step="c"),
        http("c", f"{CRM}/orders/1"),
    ]
    result = run_document(
        tmp_path,
        {
            "definition": definition(steps),
            "mocks": {
                "http": [
                    {
                        "url": f"{CRM}/orders/1",
                        "respond": [
                            {"status": 200, "json": {"state": "shipped"}},
                            {"status": 404, "text": "gone", "contentType": "text/plain"},
                        ],
                    }
                ]
            },
            "script": [{"do": "http_trigger", "body": {}}],
            "expect": {
                "instances": [
                    {
                        "status": "Complete",
                        "data": {
                            "a_code": 200,
                            "a_body": {"state": "shipped"},
                            "b_code": 404,
                            "b_body": "gone",
                            "c_code": 404,
                            "c_body": "gone",
                        },
                    }
                ],
                "httpCalls": [{"method": "GET"}, {"method": "GET"}, {"method": "GET"}],
            },
        },
    )
    assert result.failures == []


def test_http_timeout_and_connection_error_are_retried_in_virtual_time(tmp_path: Path) -> None:
    result = run_document(
        tmp_path,
        {
            "definition": definition([http("a", f"{CRM}/slow")]),
            "mocks": {
                "http": [
                    {
                        "url": f"{CRM}/slow",
                        "respond": [
                            {"timeout": True},
                            {"connectionError": True},
                            {"status": 200, "json": [1, 2]},
                        ],
                    }
                ]
            },
            "script": [
                {"do": "http_trigger", "body": {}},
                {"expect": {"httpCalls": [{}], "instances": [{"status": "Runnable"}]}},
                {"do": "advance", "by": "00:01:00"},
            ],
            "expect": {
                "instances": [{"status": "Complete", "data": {"a_code": 200, "a_body": [1, 2]}}],
                "httpCalls": [{}, {}, {}],
            },
        },
    )
    assert result.failures == []


def test_exact_url_includes_the_query_string_and_url_prefix_does_not_need_it(
    tmp_path: Path,
) -> None:
    steps = [
        http("a", f"{CRM}/search", parameters={"q": "42"}, next_step="b"),
        http("b", f"{CRM}/search?q=43", next_step="c"),
        http("c", f"{CRM}/search"),
    ]
    result = run_document(
        tmp_path,
        {
            "definition": definition(steps),
            "mocks": {
                "http": [
                    {"url": f"{CRM}/search?q=42", "respond": [{"status": 200, "json": "exact"}]},
                    {"urlPrefix": f"{CRM}/search?", "respond": [{"status": 200, "json": "prefix"}]},
                    {"url": f"{CRM}/search", "respond": [{"status": 200, "json": "bare"}]},
                ]
            },
            "script": [{"do": "http_trigger", "body": {}}],
            "expect": {
                "instances": [{"data": {"a_body": "exact", "b_body": "prefix", "c_body": "bare"}}],
                "httpCalls": [
                    {"url": f"{CRM}/search?q=42"},
                    {"url": f"{CRM}/search?q=43"},
                    {"url": f"{CRM}/search"},
                ],
            },
        },
    )
    assert result.failures == []


def test_mock_method_matches_in_any_case_and_skips_other_methods(tmp_path: Path) -> None:
    steps = [http("a", f"{CRM}/x", "post", next_step="b"), http("b", f"{CRM}/x", "GET")]
    result = run_document(
        tmp_path,
        {
            "definition": definition(steps),
            "mocks": {
                "http": [
                    {"method": "Post", "url": f"{CRM}/x", "respond": [{"status": 201, "json": 1}]},
                    {"method": "get", "url": f"{CRM}/x", "respond": [{"status": 200, "json": 2}]},
                ]
            },
            "script": [{"do": "http_trigger", "body": {}}],
            "expect": {"instances": [{"data": {"a_body": 1, "b_body": 2}}]},
        },
    )
    assert result.failures == []


def test_a_call_no_mock_matches_fails_the_test_naming_method_and_url(tmp_path: Path) -> None:
    result = run_document(
        tmp_path,
        {
            "definition": definition([http("a", f"{CRM}/orders/7", "DELETE")]),
            "mocks": {
                "http": [
                    {
                        "method": "GET",
                        "url": f"{CRM}/orders/7",
                        "respond": [{"status": 200, "json": {}}],
                    }
                ]
            },
            "script": [{"do": "http_trigger", "body": {}}],
            "expect": {"instances": [{"status": "Terminated"}]},
        },
    )
    assert result.failures == [
        f"script[0] (http_trigger): no HTTP mock matches DELETE {CRM}/orders/7"
    ]
    assert result.instances[0]["errors"][0]["step"] == "a"


# --------------------------------------------------------------------------------------------
# Provider answers (sms, chatapps, voice)


def test_provider_default_answer_is_accepted_on_every_channel(tmp_path: Path) -> None:
    steps = [
        sms("text", "hello", "chat"),
        {
            "id": "chat",
            "stepType": "ChatAppsMessage",
            "inputs": {
                "subAccountId": "acme_wa",
                "user": {"msisdn": "{{data.phone}}"},
                "type": "text",
                "content": {"text": "hello on chat"},
            },
            "nextStepId": "call",
        },
        {
            "id": "call",
            "stepType": "VoiceMessage",
            "inputs": {
                "subAccountId": "acme_voice",
                "action": "say",
                "params": {
                    "source": "+6560000000",
                    "destination": "{{data.phone}}",
                    "text": "hello by voice",
                },
            },
        },
    ]
    result = run_document(
        tmp_path,
        {
            "definition": definition(steps),
            "script": [{"do": "http_trigger", "body": {"phone": PHONE}}],
            "expect": {
                "outbox": [
                    {"channel": "sms", "text": "hello"},
                    {"channel": "chatapps", "text": "hello on chat"},
                    {"channel": "voice", "text": "hello by voice", "to": PHONE},
                ],
                "instances": [{"status": "Complete", "errors": []}],
            },
        },
    )
    assert result.failures == []


SEND_STEPS: dict[str, dict[str, Any]] = {
    "sms": sms("send", "hello"),
    "chatapps": {
        "id": "send",
        "stepType": "ChatAppsMessage",
        "inputs": {
            "subAccountId": "acme_wa",
            "user": {"msisdn": "{{data.phone}}"},
            "type": "text",
            "content": {"text": "hello"},
        },
    },
    "voice": {
        "id": "send",
        "stepType": "VoiceMessage",
        "inputs": {
            "subAccountId": "acme_voice",
            "action": "say",
            "params": {"source": "+6560000000", "destination": "{{data.phone}}", "text": "hello"},
        },
    },
}


@pytest.mark.parametrize("channel", list(SEND_STEPS))
def test_a_rejected_send_fails_the_step_with_the_providers_message(
    tmp_path: Path, channel: str
) -> None:
    result = run_document(
        tmp_path,
        {
            "definition": definition([SEND_STEPS[channel]]),
            "mocks": {channel: [{"httpStatus": 400, "message": "Invalid destination"}]},
            "script": [{"do": "http_trigger", "body": {"phone": PHONE}}],
            "expect": {"outbox": [], "instances": [{"status": "Terminated"}]},
        },
    )
    assert result.failures == []
    [error] = result.instances[0]["errors"]
    assert error["step"] == "send"
    assert "Invalid destination" in error["message"]


@pytest.mark.parametrize("channel", list(SEND_STEPS))
@pytest.mark.parametrize("answer", [{"httpStatus": 503}, {"httpStatus": 429}, {"timeout": True}])
def test_transient_answers_are_retried_in_virtual_time(
    tmp_path: Path, channel: str, answer: dict[str, Any]
) -> None:
    result = run_document(
        tmp_path,
        {
            "definition": definition([SEND_STEPS[channel]]),
            "mocks": {channel: [answer, answer, {"httpStatus": 200}]},
            "script": [
                {"do": "http_trigger", "body": {"phone": PHONE}},
                {"expect": {"outbox": [], "instances": [{"status": "Runnable", "errors": []}]}},
                {"do": "advance", "by": "00:05:00"},
            ],
            "expect": {
                "outbox": [{"channel": channel, "text": "hello"}],
                "instances": [{"status": "Complete", "errors": []}],
            },
        },
    )
    assert result.failures == []


def test_transient_answers_repeating_fail_the_step_after_the_retry_window(tmp_path: Path) -> None:
    result = run_document(
        tmp_path,
        {
            "definition": definition([sms("send", "hello")]),
            "mocks": {"sms": [{"httpStatus": 503, "message": "Service Unavailable"}]},
            "script": [
                {"do": "http_trigger", "body": {"phone": PHONE}},
                {"do": "advance", "by": "02:00:00"},
            ],
            "expect": {"outbox": [], "instances": [{"status": "Terminated"}]},
        },
    )
    assert result.failures == []
    assert result.instances[0]["errors"][0]["step"] == "send"


# --------------------------------------------------------------------------------------------
# Failures that are not differences


def test_a_definition_the_engine_refuses_fails_the_test(tmp_path: Path) -> None:
    # Files are validated first (an invalid definition is exit 2); a FlowTest built by hand
    # shows what the runner does when the environment refuses the definition anyway.
    valid = load_test_file(write_test(tmp_path, {"definition": auto_reply()}))
    refused = dataclasses.replace(valid, definition={"trigger": "inbound_sms"})
    result = asyncio.run(run_flow_test(refused))
    [failure] = result.failures
    assert failure.startswith("definition: ")
    assert "Workflow name is required." in failure
    assert not result.completed


def test_a_file_without_script_or_expect_passes_with_nothing_happening(tmp_path: Path) -> None:
    result = run_document(tmp_path, {"definition": auto_reply()})
    assert result.failures == []
    assert result.completed
    assert result.state() == {"outbox": [], "instances": [], "httpCalls": []}


def test_the_same_file_gives_the_same_transcript(tmp_path: Path) -> None:
    document = {
        "definition": IVR,
        "script": [
            {"do": "http_trigger", "body": {"phone": PHONE}},
            {"do": "advance", "by": "00:01:00"},
            {"do": "dtmf", "digits": "1"},
        ],
    }
    first = run_document(tmp_path, document)
    second = run_document(tmp_path, document)
    assert first.state() == second.state()
    assert first.instances[0]["workflowId"] == second.instances[0]["workflowId"]
    assert (
        first.outbox[0]["request"]["clientRequestId"]
        == second.outbox[0]["request"]["clientRequestId"]
    )


def test_an_engine_error_fails_that_test_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("relayflow.testing.runner.perform", broken)
    result = run_document(
        tmp_path,
        {"definition": auto_reply(), "script": [{"do": "inbound_sms", "from": PHONE, "text": "x"}]},
    )
    [failure] = result.failures
    assert failure.startswith("internal error: RuntimeError: boom (")
    assert not result.completed
