"""The `*.flowtest.json` format (issue 11, a public contract): what loads, and every problem
`relayflow test` reports (exit 2, the file and the JSON path) before anything runs."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from relayflow.testing.environment import DEFAULT_ACCOUNT, DEFAULT_START
from relayflow.testing.mockspec import (
    ConnectionErrorAnswer,
    JsonAnswer,
    ProviderAnswer,
    TextAnswer,
    TimeoutAnswer,
)
from relayflow.testing.script import Advance, Checkpoint, Dtmf, HttpTrigger, InboundChat, InboundSms
from relayflow.testing.testfile import FlowTestFileError, find_test_files, load_test_file
from tests.support.definitions import sms_definition
from tests.support.flowtest import PHONE, invoke, sms, write_test

VALID: dict[str, Any] = {
    "name": "valid",
    "definition": sms_definition(),
    "account": "acme",
    "start": "2026-03-02T09:00:00Z",
    "mocks": {
        "http": [
            {
                "method": "GET",
                "url": "https://crm.example.com/orders/42",
                "respond": [{"status": 200, "json": {"state": "shipped"}}, {"timeout": True}],
            },
            {
                "urlPrefix": "https://crm.example.com/tickets",
                "respond": [
                    {"status": 201, "text": "ok", "contentType": "text/plain"},
                    {"connectionError": True},
                ],
            },
        ],
        "sms": [{"httpStatus": 200}, {"httpStatus": 400, "message": "Invalid destination"}],
        "chatapps": [{"httpStatus": 503}, {"httpStatus": 429}],
        "voice": [{"timeout": True}],
    },
    "script": [
        {
            "do": "inbound_sms",
            "from": PHONE,
            "to": "+6580000000",
            "text": "hi",
            "subAccountId": "acme_sms",
        },
        {
            "do": "inbound_chat",
            "channel": "whatsapp",
            "from": PHONE,
            "text": "Yes",
            "payload": "yes",
            "subAccountId": "acme_wa",
        },
        {"do": "http_trigger", "body": {"phone": PHONE}, "subAccountId": None},
        {"do": "dtmf", "digits": "2", "to": PHONE},
        {"do": "advance", "by": "1.00:00:00"},
        {"do": "advance", "by": 2},
        {"expect": {"outbox": [{"channel": "sms", "to": PHONE, "text": "Thanks!"}]}},
    ],
    "expect": {
        "outbox": [{"channel": "sms", "to": PHONE, "text": "Thanks!", "request": {}}],
        "instances": [
            {
                "status": "Complete",
                "data": {"answer": "yes"},
                "version": 1,
                "errors": [{"step": "s", "message": "m"}],
            }
        ],
        "httpCalls": [{"method": "GET", "url": "https://crm.example.com/orders/42"}],
    },
}


def test_every_field_of_the_format_loads_typed(tmp_path: Path) -> None:
    test = load_test_file(write_test(tmp_path, VALID))
    assert test.name == "valid"
    assert test.account == "acme"
    assert test.start == "2026-03-02T09:00:00Z"
    assert test.definition == sms_definition()
    first, second = test.mocks.http
    assert (first.method, first.url, first.url_prefix) == (
        "GET",
        VALID["mocks"]["http"][0]["url"],
        None,
    )
    assert first.respond == (JsonAnswer(200, {"state": "shipped"}), TimeoutAnswer())
    assert second.url_prefix == "https://crm.example.com/tickets"
    assert second.respond == (TextAnswer(201, "ok", "text/plain"), ConnectionErrorAnswer())
    assert test.mocks.sms == (ProviderAnswer(200), ProviderAnswer(400, "Invalid destination"))
    assert test.mocks.chatapps == (ProviderAnswer(503), ProviderAnswer(429))
    assert test.mocks.voice == (ProviderAnswer(None),)
    assert test.mocks.voice[0].timeout
    assert test.script == (
        InboundSms(PHONE, "hi", "+6580000000", "acme_sms"),
        InboundChat("whatsapp", PHONE, "Yes", "yes", "acme_wa"),
        HttpTrigger({"phone": PHONE}, None),
        Dtmf("2", PHONE),
        Advance("1.00:00:00"),
        Advance(2),
        test.script[6],
    )
    assert isinstance(test.script[6], Checkpoint)
    assert test.script[6].expect.outbox == [{"channel": "sms", "to": PHONE, "text": "Thanks!"}]
    assert test.expect is not None
    assert test.expect.as_json() == VALID["expect"]
    assert test.mocks.as_json()["http"][0]["respond"][1] == {"timeout": True}


def test_optional_fields_have_documented_defaults(tmp_path: Path) -> None:
    test = load_test_file(
        write_test(tmp_path, {"definition": sms_definition()}, "hello.flowtest.json")
    )
    assert test.name == "hello.flowtest.json"
    assert test.account == DEFAULT_ACCOUNT == "acme"
    assert test.start == DEFAULT_START == "2026-01-05T09:00:00Z"
    assert test.script == ()
    assert test.expect is None
    assert test.mocks.http == ()


def test_definition_may_be_a_path_relative_to_the_test_file(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "reply.json").write_text(json.dumps(sms_definition(text="From a file")))
    file = write_test(tmp_path / "tests", {"definition": "../flows/reply.json"})
    test = load_test_file(file)
    assert test.definition == sms_definition(text="From a file")
    assert test.definition_file == tmp_path / "tests" / "../flows/reply.json"
    result = invoke(str(file))
    assert result.exit_code == 0, result.output


def test_definitions_in_tolerant_forms_are_accepted(tmp_path: Path) -> None:
    tolerant = {
        "Trigger": "inbound_sms",
        "STATUS": "enabled",
        "definition": {
            "name": "x",
            "steps": [{**sms("a", "hi"), "stepType": "sms", "nextStepId": None, "do": []}],
        },
    }
    assert load_test_file(write_test(tmp_path, {"definition": tolerant})).definition == tolerant


Change = Callable[[dict[str, Any]], None]


def put(path: str, value: Any) -> Change:
    """Set (or with `...` delete) the value at a dotted path with [n] indices."""

    def change(document: dict[str, Any]) -> None:
        parts = path.replace("[", ".").replace("]", "").split(".")
        node: Any = document
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        last = parts[-1]
        if isinstance(node, list):
            node[int(last)] = value
        elif value is ...:
            del node[last]
        else:
            node[last] = value

    return change


BAD_FLOW = sms_definition()
BAD_FLOW["definition"]["steps"][0]["nextStepId"] = "nowhere"  # type: ignore[index]

# (change to VALID, the JSON path reported, a fragment of the message)
PROBLEMS: list[tuple[Change, str, str]] = [
    (put("mock", {}), "mock", "unknown key; expected one of: name, definition, account"),
    (put("name", 3), "name", "must be a string, not a number"),
    (put("name", ""), "name", "must not be empty"),
    (put("definition", ...), "definition", "is required"),
    (put("definition", 7), "definition", "must be an object (the body of POST /definitions)"),
    (put("definition", "missing.json"), "definition", "missing.json: cannot read"),
    (put("definition", BAD_FLOW), "definition.definition.steps[0].nextStepId", "nowhere"),
    (
        put("definition", {"trigger": "inbound_sms", "definition": {"steps": []}}),
        "definition.definition.name",
        "Workflow name is required. (code 5001)",
    ),
    (put("account", "-acme"), "account", "use 1-100 letters"),
    (put("account", None), "account", "must be a string, not null"),
    (put("start", "yesterday"), "start", '"yesterday" is not an ISO-8601 date and time'),
    (put("start", 1767600000000), "start", "must be a string"),
    (put("mocks", []), "mocks", "must be an object, not an array"),
    (put("mocks.email", []), "mocks.email", "unknown key; expected one of: http, sms"),
    (put("mocks.http", {}), "mocks.http", "must be an array"),
    (put("mocks.http[0]", "GET"), "mocks.http[0]", "must be an object, not a string"),
    (put("mocks.http[0].url", ...), "mocks.http[0]", "needs exactly one of 'url'"),
    (put("mocks.http[0].urlPrefix", "https://x"), "mocks.http[0]", "needs exactly one of"),
    (put("mocks.http[0].url", 5), "mocks.http[0].url", "must be a string"),
    (put("mocks.http[0].method", "GET /x"), "mocks.http[0].method", "is not an HTTP method"),
    (put("mocks.http[0].headers", {}), "mocks.http[0].headers", "unknown key"),
    (put("mocks.http[0].respond", ...), "mocks.http[0].respond", "is required"),
    (put("mocks.http[0].respond", {}), "mocks.http[0].respond", "must be an array"),
    (put("mocks.http[0].respond", []), "mocks.http[0].respond", "at least one answer"),
    (put("mocks.http[0].respond[0]", 200), "mocks.http[0].respond[0]", "must be an object"),
    (put("mocks.http[0].respond[0]", {"status": 200}), "mocks.http[0].respond[0]", "an answer is"),
    (
        put("mocks.http[0].respond[0]", {"status": 200, "json": 1, "text": "1"}),
        "mocks.http[0].respond[0]",
        'an answer is {"status", "json"}, {"status", "text", "contentType"?}',
    ),
    (
        put("mocks.http[0].respond[0]", {"status": "200", "json": 1}),
        "mocks.http[0].respond[0].status",
        "must be a whole number, not a string",
    ),
    (
        put("mocks.http[0].respond[0]", {"status": 99, "json": 1}),
        "mocks.http[0].respond[0].status",
        "99 is not an HTTP status (100-599)",
    ),
    (
        put("mocks.http[0].respond[0]", {"json": 1}),
        "mocks.http[0].respond[0].status",
        "is required",
    ),
    (
        put("mocks.http[0].respond[0]", {"status": 200, "json": 1, "contentType": "a/b"}),
        "mocks.http[0].respond[0].contentType",
        "goes with 'text' only",
    ),
    (
        put("mocks.http[0].respond[0]", {"status": 200, "text": 5}),
        "mocks.http[0].respond[0].text",
        "must be a string, not a number",
    ),
    (
        put("mocks.http[0].respond[0]", {"status": 200, "text": "", "delay": 1}),
        "mocks.http[0].respond[0].delay",
        "unknown key",
    ),
    (
        put("mocks.http[0].respond[1]", {"timeout": False}),
        "mocks.http[0].respond[1].timeout",
        "must be true, not a boolean",
    ),
    (
        put("mocks.http[0].respond[1]", {"timeout": True, "status": 504}),
        "mocks.http[0].respond[1].status",
        "unknown key; expected one of: timeout",
    ),
    (
        put("mocks.http[1].respond[1]", {"connectionError": 1}),
        "mocks.http[1].respond[1].connectionError",
        "must be true",
    ),
    (put("mocks.sms", {}), "mocks.sms", "must be an array"),
    (put("mocks.sms[0]", {"httpStatus": 302}), "mocks.sms[0].httpStatus", "302 is not an answer"),
    (put("mocks.sms[0]", {"httpStatus": 201}), "mocks.sms[0].httpStatus", "use 200 (accepted)"),
    (put("mocks.sms[0]", {}), "mocks.sms[0].httpStatus", "is required"),
    (put("mocks.sms[0]", {"httpStatus": True}), "mocks.sms[0].httpStatus", "a whole number"),
    (
        put("mocks.chatapps[0]", {"httpStatus": 200, "message": "ok"}),
        "mocks.chatapps[0].message",
        "an accepted send (200) has no message",
    ),
    (
        put("mocks.chatapps[0]", {"httpStatus": 400, "message": 4}),
        "mocks.chatapps[0].message",
        "must be a string",
    ),
    (put("mocks.voice[0]", {"timeout": "yes"}), "mocks.voice[0].timeout", "must be true"),
    (put("mocks.voice[0]", {"status": 500}), "mocks.voice[0].status", "unknown key"),
    (put("script", {}), "script", "must be an array, not an object"),
    (put("script[0]", "hi"), "script[0]", "must be an object, not a string"),
    (put("script[0].do", ...), "script[0].do", "is required; expected one of: inbound_sms"),
    (put("script[0].do", "wait"), "script[0].do", '"wait" is not an action'),
    (put("script[0].from", ...), "script[0].from", "is required"),
    (put("script[0].from", ""), "script[0].from", "must not be empty"),
    (put("script[0].text", 5), "script[0].text", "must be a string, not a number"),
    (put("script[0].text", ...), "script[0].text", "is required"),
    (put("script[0].to", None), "script[0].to", "must be a string, not null"),
    (put("script[0].subAccountId", 5), "script[0].subAccountId", "must be a string or null"),
    (put("script[0].form", PHONE), "script[0].form", "unknown key; expected one of: do, from"),
    (put("script[1].channel", ...), "script[1].channel", "is required"),
    (put("script[1].payload", 1), "script[1].payload", "must be a string"),
    (
        lambda d: [put("script[1].text", ...)(d), put("script[1].payload", ...)(d)],
        "script[1]",
        "inbound_chat needs 'text' and/or 'payload'",
    ),
    (put("script[2].body", ...), "script[2].body", "is required"),
    (put("script[2].body", [1]), "script[2].body", "must be an object, not an array"),
    (put("script[2].text", "x"), "script[2].text", "unknown key; expected one of: do, body"),
    (put("script[3].digits", "1a"), "script[3].digits", "may only contain 0-9, * and #"),
    (put("script[3].digits", 1), "script[3].digits", "must be a string, not a number"),
    (put("script[3].to", 65), "script[3].to", "must be a string"),
    (put("script[4].by", ...), "script[4].by", "is required"),
    (put("script[4].by", "1 day"), "script[4].by", "'1 day' is not a timespan"),
    (put("script[4].by", "25:00:00"), "script[4].by", "hours must be 0-23"),
    (put("script[4].by", "-01:00:00"), "script[4].by", "is negative"),
    (put("script[4].by", -1), "script[4].by", "-1 is not a whole number of days"),
    (put("script[4].by", 1.5), "script[4].by", "1.5 is not a whole number of days"),
    (put("script[4].by", True), "script[4].by", "not a boolean"),
    (put("script[6].note", "x"), "script[6].note", "unknown key; expected one of: expect"),
    (put("script[6].expect", []), "script[6].expect", "must be an object"),
    (put("script[6].expect.outbox", {}), "script[6].expect.outbox", "must be an array"),
    (put("script[6].expect.outbox[0].txt", "x"), "script[6].expect.outbox[0].txt", "unknown key"),
    (put("expect", []), "expect", "must be an object, not an array"),
    (put("expect.http_calls", []), "expect.http_calls", "one of: outbox, instances, httpCalls"),
    (put("expect.outbox[0]", "Thanks!"), "expect.outbox[0]", "must be an object"),
    (put("expect.outbox[0].body", "x"), "expect.outbox[0].body", "unknown key"),
    (put("expect.outbox[0].channel", "email"), "expect.outbox[0].channel", "not a channel"),
    (put("expect.instances", None), "expect.instances", "must be an array, not null"),
    (put("expect.instances[0].status", "Done"), "expect.instances[0].status", "not a status"),
    (put("expect.instances[0].workflowId", "w"), "expect.instances[0].workflowId", "unknown"),
    (put("expect.instances[0].errors", {}), "expect.instances[0].errors", "must be an array"),
    (
        put("expect.instances[0].errors[0].code", 1),
        "expect.instances[0].errors[0].code",
        "unknown key; expected one of: step, message",
    ),
    (put("expect.httpCalls[0].status", 200), "expect.httpCalls[0].status", "unknown key"),
]


@pytest.mark.parametrize(
    ("change", "path", "fragment"),
    PROBLEMS,
    ids=[f"{path}:{fragment[:20]}" for _, path, fragment in PROBLEMS],
)
def test_every_problem_exits_2_naming_the_file_and_json_path(
    tmp_path: Path, change: Change, path: str, fragment: str
) -> None:
    document = copy.deepcopy(VALID)
    change(document)
    file = write_test(tmp_path, document, "survey.flowtest.json")
    result = invoke(str(file))
    assert result.exit_code == 2, result.output
    assert f"{file}: {path}: " in result.stderr
    line = next(line for line in result.stderr.splitlines() if f"{file}: {path}: " in line)
    assert fragment in line
    assert "passed" not in result.stdout  # nothing ran


def test_definition_file_problems_name_both_files_and_the_path_inside(tmp_path: Path) -> None:
    (tmp_path / "flow.json").write_text(json.dumps(BAD_FLOW))
    (tmp_path / "broken.json").write_text("{")
    bad = write_test(tmp_path, {"definition": "flow.json"}, "a.flowtest.json")
    broken = write_test(tmp_path, {"definition": "broken.json"}, "b.flowtest.json")
    with pytest.raises(FlowTestFileError) as error:
        load_test_file(bad)
    [(path, message)] = error.value.problems
    assert path == "definition"
    assert message.startswith("flow.json: definition.steps[0].nextStepId: ")
    assert message.endswith("(code 5008)")
    with pytest.raises(FlowTestFileError) as error:
        load_test_file(broken)
    assert str(error.value).startswith(f"{broken}: definition: broken.json: not valid JSON")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not valid JSON: Expecting property name enclosed in double quotes: line 1"),
        ("", "not valid JSON"),
        ("[1]", "must hold a JSON object, not an array"),
        ('{"definition": NaN}', "not valid JSON: NaN is not a JSON value"),
        (b"\xff\xfe\x00", "not valid JSON"),
    ],
)
def test_unreadable_json_exits_2(tmp_path: Path, content: str | bytes, message: str) -> None:
    file = tmp_path / "bad.flowtest.json"
    if isinstance(content, bytes):
        file.write_bytes(content)
    else:
        file.write_text(content)
    result = invoke(str(file))
    assert result.exit_code == 2
    assert f"{file}: {message}" in result.stderr


def test_every_problem_of_a_file_and_every_invalid_file_is_reported(tmp_path: Path) -> None:
    document = copy.deepcopy(VALID)
    document["script"][4]["by"] = "soon"
    document["mocks"]["sms"][0] = {"httpStatus": 1}
    document["expect"]["outbox"][0]["channel"] = "fax"
    first = write_test(tmp_path, document, "a.flowtest.json")
    second = write_test(tmp_path, {"definition": 1}, "b.flowtest.json")
    write_test(tmp_path, {"definition": sms_definition()}, "c.flowtest.json")
    result = invoke(str(tmp_path))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert [line.split(": ")[1] for line in lines[:4]] == [
        "mocks.sms[0].httpStatus",
        "script[4].by",
        "expect.outbox[0].channel",
        "definition",
    ]
    assert lines[0].startswith(f"{first}: ")
    assert lines[3].startswith(f"{second}: ")
    assert lines[4] == "error: 2 invalid test file(s); no test was run"
    assert result.stdout == ""


def test_a_path_that_does_not_exist_exits_2(tmp_path: Path) -> None:
    result = invoke(str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert f"{tmp_path / 'nope'}: no such file or directory" in result.stderr


def test_a_directory_without_test_files_exits_2(tmp_path: Path) -> None:
    (tmp_path / "flow.json").write_text("{}")
    result = invoke(str(tmp_path))
    assert result.exit_code == 2
    assert "no .flowtest.json files in" in result.stderr


def test_directories_are_searched_recursively_and_sorted(tmp_path: Path) -> None:
    for name in ("b/z.flowtest.json", "a.flowtest.json", "b/a/y.flowtest.json", "b/x.json"):
        write_test(tmp_path, {"definition": sms_definition()}, name)
    explicit = write_test(tmp_path, {"definition": sms_definition()}, "other.json")
    found = find_test_files([tmp_path, explicit, tmp_path / "a.flowtest.json"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a.flowtest.json",
        "b/a/y.flowtest.json",
        "b/z.flowtest.json",
        "other.json",
    ]
