"""Hostile input against the engine endpoints and the expression sandbox, through real flows.

API fuzzing (hypothesis, like `test_hostile_input.py`): PATCH instance bodies, the http_request
trigger (bodies and `subAccountId`), the test-start endpoint, the sandbox inbound endpoints, the
instance listing's query parameters and garbage path ids. Every answer is a 2xx or an 8x8 error
body (never a 5xx), and a rejected request changes nothing: the row count of every table and
every instance row are compared before and after it. What was accepted must then run: the worker
takes every started instance to an end without raising.

Engine level: a long interpolated value works; expressions that exhaust memory, recurse deeply
or hit the time limit fault only their own instance (with an error record) while an instance
started in the same run completes; prototype tampering is refused at save time (5014), and the
tampering that the save-time whitelist lets through cannot reach another instance, another step,
or another expression of the same step.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import strategies as st
from sqlalchemy import func, select

from relayflow.api.context import AppContext
from relayflow.store.tables import instances, metadata
from tests.support.flows import Flow
from tests.support.hostile import examples, json_values
from tests.support.openapi_8x8 import assert_conforms

CUSTOMER = "+6591234567"
EXAMPLES = 12  # per strategy and database: the whole module stays well under a minute

# Text that reaches query strings and paths: anything but lone surrogates (not encodable).
any_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
HOSTILE_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\x01",
    "a\x7fb",
    "\n",
    "..",
    "../",
    "../../..",
    "%2e%2e",
    "%2F",
    "..%2f..%2fdefinitions",
    "%00",
    "%",
    "%zz",
    "' OR 1=1 --",
    "\u202e\u0635\u0648\u062a",
    "ＡＢＣ",
    "😀" * 50,
    "x" * 5000,
    "{{data}}",
    "<script>alert(1)</script>",
    "null",
    "-1",
    "0",
    "1e3",
    "0x10",
    "9" * 40,
    "NaN",
    "true",
]
hostile_text = st.sampled_from(HOSTILE_STRINGS) | any_text

RAW_BODIES = [
    b"",
    b"   ",
    b"null",
    b"[]",
    b"[{}]",
    b'"text"',
    b"42",
    b"{",
    b'{"a": }',
    b"{'a': 1}",
    b'{"a": NaN}',
    b'{"a": Infinity}',
    b'{"a": 1e999}',
    b'{"a": 123456789012345678901234567890}',
    b'{"a": 1, "a": 2}',
    b'{"a": "\\ud800"}',
    b'{"a": "\\u0000"}',
    b'{"\\u0000": 1}',
    b"\xef\xbb\xbf{}",
    b"\xff\xfe{}",
    b'{"a": "\xff"}',
    b"[" * 5000 + b"]" * 5000,
    b'{"a":' * 200 + b"1" + b"}" * 200,
    b'{"a":' * 99 + b"1" + b"}" * 99,
    json.dumps({"blob": "x" * 300_000}).encode(),
    json.dumps({"many": list(range(20_000))}).encode(),
]
raw_bodies = (
    st.sampled_from(RAW_BODIES)
    | st.binary(max_size=64)
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.dictionaries(st.text(max_size=8), json_values, max_size=4).map(
        lambda v: json.dumps(v).encode()
    )
)


def sms(step_id: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "stepType": "SMS",
        "inputs": {"subAccountId": "acme_sms", "destination": CUSTOMER, "text": text},
        **extra,
    }


def wait(step_id: str, duration: str = "00:00:01", **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "stepType": "Wait", "inputs": {"duration": duration}, **extra}


# The accepted payloads go through the sandbox too: serialising hostile `data` must work.
PROBE = [
    {
        "id": "probe",
        "stepType": "Branch",
        "selectNextStep": {"rest": "{{JSON.stringify(data).length >= 0}}"},
    },
    wait("rest", "00:00:00"),
]


async def snapshot(context: AppContext) -> tuple[Any, ...]:
    """Row counts of every table, and every instance row's state."""
    counts = select(
        *(select(func.count()).select_from(t).scalar_subquery() for t in metadata.sorted_tables)
    )
    rows = select(
        instances.c.id,
        instances.c.status,
        instances.c.data_json,
        instances.c.next_run_at_ms,
        instances.c.executions,
    ).order_by(instances.c.id)
    async with context.db.read() as conn:
        counted = tuple((await conn.execute(counts)).one())
        states = tuple(tuple(row) for row in (await conn.execute(rows)).all())
    return counted, states


def assert_answer(response: httpx.Response, request: Any) -> None:
    """A 2xx, or a 4xx with 8x8's error body; never a 5xx."""
    assert response.status_code < 500, (request, response.status_code, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/json"), request
        error = response.json()
        assert_conforms(error, "error")
        assert {"code", "message", "errorId", "timestamp"} <= set(error), (request, error)
        assert uuid.UUID(error["errorId"])
        assert error["timestamp"].endswith("Z")


class Probe:
    """Sends requests, checks each answer, and that a rejected one changed nothing."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.accepted = 0
        self.rejected = 0

    async def send(self, method: str, url: str, request: Any = None, **kwargs: Any) -> Any:
        before = await snapshot(self.flow.context)
        response = await self.flow.client.request(
            method, url, headers=self.flow.tenant.headers, **kwargs
        )
        described = request if request is not None else (method, url, kwargs)
        assert_answer(response, described)
        if response.status_code >= 400:
            self.rejected += 1
            assert await snapshot(self.flow.context) == before, (described, response.text)
            return None
        self.accepted += 1
        return response.json() if response.content else {}

    def saw_both(self) -> None:
        assert self.accepted, (self.accepted, self.rejected)
        assert self.rejected, (self.accepted, self.rejected)


async def assert_all_finish(flow: Flow, definitions: list[str]) -> None:
    """The worker runs every accepted instance to an end; faults leave an error record."""
    await flow.advance(1000)
    for definition in definitions:
        for item in await flow.instances(definition, limit=500):
            status = item["status"]
            assert status in ("Complete", "Terminated"), item
            if status == "Terminated":
                assert await flow.errors(definition, item["workflowId"]), item


# --- API fuzzing ------------------------------------------------------------------------------


async def test_http_request_trigger_survives_fuzzed_bodies_and_subaccounts(flow: Flow) -> None:
    anywhere = await flow.define(PROBE, trigger="http_request")
    only_sub = await flow.define(PROBE, trigger="http_request", subAccountId="sub_a")
    probe = Probe(flow)
    url = f"{flow.tenant.base}/triggers/http_request"
    started = 0
    every_constant = [(body, None) for body in RAW_BODIES] + [
        (b"{}", value) for value in HOSTILE_STRINGS
    ]
    cases = every_constant + examples(
        st.tuples(raw_bodies, st.none() | st.sampled_from(["sub_a", ""]) | hostile_text),
        EXAMPLES * 2,
    )
    for body, sub_account in cases:
        params = {} if sub_account is None else {"subAccountId": sub_account}
        result = await probe.send("POST", url, (body, params), content=body, params=params)
        if result is not None:
            assert set(result) == {"workflowIds"}
            started += len(result["workflowIds"])
    probe.saw_both()
    total = len(await flow.instances(anywhere, limit=500))
    total += len(await flow.instances(only_sub, limit=500))
    assert total == started
    await assert_all_finish(flow, [anywhere, only_sub])


async def test_test_start_survives_fuzzed_bodies_and_versions(flow: Flow) -> None:
    definition = await flow.define(PROBE, status="disabled")
    probe = Probe(flow)
    url = f"{flow.tenant.base}/definitions/{definition}/workflows"
    versions = (
        st.none() | st.sampled_from(["1", "2", "0", "-1", "1.0", "2147483648"]) | hostile_text
    )
    started = 0
    every_constant = [(body, None) for body in RAW_BODIES]
    cases = every_constant + examples(st.tuples(raw_bodies, versions), EXAMPLES * 2)
    for body, version in cases:
        params = {} if version is None else {"version": version}
        result = await probe.send("POST", url, (body, params), content=body, params=params)
        if result is not None:
            assert result["definitionId"] == definition
            started += 1
    probe.saw_both()
    assert len(await flow.instances(definition, limit=500)) == started
    await assert_all_finish(flow, [definition])


PATCH_COMMANDS = st.sampled_from(
    ["suspend", "resume", "SUSPEND", "Resume", "pause", "", " suspend", "terminate ", "cancel"]
)
patch_bodies = (
    st.fixed_dictionaries({"status": PATCH_COMMANDS | json_values}, optional={"x": json_values})
    .filter(lambda b: not (isinstance(b["status"], str) and b["status"].lower() == "terminate"))
    .map(lambda b: json.dumps(b).encode())
) | raw_bodies


async def test_patch_instance_survives_fuzzed_bodies(flow: Flow) -> None:
    definition = await flow.define([wait("nap", "00:10:00")], trigger="http_request")
    [workflow] = await flow.http_trigger({})
    url = f"{flow.tenant.base}/definitions/{definition}/workflows/{workflow}"
    probe = Probe(flow)
    every_constant = [
        json.dumps({"status": command}).encode()
        for command in ("suspend", "SUSPEND", "resume", "Resume", "resume", "pause")
    ]
    for body in every_constant + examples(patch_bodies, EXAMPLES * 2):
        before = (await flow.instance(definition, workflow))["status"]
        result = await probe.send("PATCH", url, body, content=body)
        after = (await flow.instance(definition, workflow))["status"]
        if result is not None:
            command = json.loads(body)["status"].lower()
            assert (before, after) == (
                ("Runnable", "Suspended") if command == "suspend" else ("Suspended", "Runnable")
            )
    probe.saw_both()
    # Still controllable after the barrage.
    await flow.call("PATCH", url.removeprefix(flow.tenant.base), json={"status": "terminate"})
    assert (await flow.instance(definition, workflow))["status"] == "Terminated"


def _mostly_valid(
    valid: dict[str, st.SearchStrategy[Any]], hostile: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """Bodies that are often accepted (so acceptance is exercised) and often not."""
    extras = {key: value for key, value in hostile.items() if key not in valid}
    plausible = st.fixed_dictionaries(valid, optional=extras)
    garbage = st.fixed_dictionaries({}, optional=hostile)
    return plausible | garbage


sms_bodies = _mostly_valid(
    {
        "from": st.sampled_from([CUSTOMER, "+65 9123 4567", "acme"]),
        "to": st.just("+6580000000"),
        "text": hostile_text,
    },
    {
        "from": hostile_text | json_values,
        "to": hostile_text | json_values,
        "text": hostile_text | json_values,
        "subAccountId": st.none() | hostile_text | json_values,
        "extra": json_values,
    },
)
chat_bodies = _mostly_valid(
    {
        "channel": st.sampled_from(["whatsapp", "viber", "WhatsApp"]),
        "from": st.just(CUSTOMER),
        "text": hostile_text,
    },
    {
        "channel": hostile_text | json_values,
        "from": hostile_text | json_values,
        "text": st.none() | hostile_text | json_values,
        "payload": st.none() | hostile_text | json_values,
        "subAccountId": st.none() | hostile_text,
        "extra": json_values,
    },
)
dtmf_bodies = _mostly_valid(
    {
        "digits": st.sampled_from(["1", "*#0", "12345678901234567890123456789012"]),
        "uid": st.sampled_from(["call-1", str(uuid.UUID(int=7))]) | hostile_text,
    },
    {
        "digits": st.from_regex(r"[0-9*#]{0,40}", fullmatch=True) | hostile_text | json_values,
        "clientRequestId": st.none() | hostile_text | json_values,
        "uid": st.none() | hostile_text | json_values,
        "extra": json_values,
    },
)


@pytest.mark.parametrize(
    ("endpoint", "bodies", "valid"),
    [
        ("inbound/sms", sms_bodies, {"from": CUSTOMER, "to": "+6580000000", "text": "hi"}),
        ("inbound/chatapps", chat_bodies, {"channel": "whatsapp", "from": CUSTOMER, "text": "hi"}),
        ("dtmf", dtmf_bodies, {"digits": "1", "uid": "call-1"}),
    ],
)
async def test_sandbox_inbound_endpoints_survive_fuzzed_bodies(
    flow: Flow, endpoint: str, bodies: st.SearchStrategy[Any], valid: dict[str, str]
) -> None:
    reply = await flow.define([sms("reply", "got {{data.payload.content.text}}")])
    chat = await flow.define(
        [
            {
                "id": "reply",
                "stepType": "ChatAppsMessage",
                "inputs": {
                    "subAccountId": "acme_chat",
                    "user": {"msisdn": "{{data.payload.user.msisdn}}"},
                    "type": "text",
                    "content": {"text": "got it"},
                },
            }
        ],
        trigger="inbound_chat_apps",
    )
    probe = Probe(flow)
    url = f"{flow.tenant.base}/sandbox/{endpoint}"
    encoded = bodies.map(lambda b: json.dumps(b).encode()) | raw_bodies
    every_constant = [json.dumps(valid).encode(), *RAW_BODIES]
    for body in every_constant + examples(encoded, EXAMPLES * 2):
        result = await probe.send("POST", url, body, content=body)
        if result is not None:
            assert {"event", "started", "resumed", "duplicate"} <= set(result)
    probe.saw_both()
    await assert_all_finish(flow, [reply, chat])


LISTING_PARAMS = ["limit", "offset", "version", "status", "startTimeFrom", "startTimeTo"]
listing_values = (
    hostile_text
    | st.integers(-(2**70), 2**70).map(str)
    | st.floats().map(str)
    | st.sampled_from(["Runnable", "Complete", "2023-11-14T22:13:20Z", "2023-11-14", "500", "501"])
)


async def test_instance_listing_survives_garbage_query_params(flow: Flow) -> None:
    definition = await flow.define([wait("nap")], trigger="http_request")
    for _ in range(3):
        await flow.http_trigger({})
    probe = Probe(flow)
    url = f"{flow.tenant.base}/definitions/{definition}/workflows"
    params_strategy = st.lists(
        st.tuples(st.sampled_from([*LISTING_PARAMS, "includeLogs", "x"]), listing_values),
        max_size=4,
    )
    every_constant = [[], [("limit", "1")], [("status", "Runnable")]] + [
        [(LISTING_PARAMS[i % len(LISTING_PARAMS)], value)]
        for i, value in enumerate(HOSTILE_STRINGS)
    ]
    for params in every_constant + examples(params_strategy, EXAMPLES * 2):
        result = await probe.send("GET", url, params, params=params)
        if result is not None:
            assert isinstance(result, list)
            assert len(result) <= 3
    probe.saw_both()


PATH_IDS = [
    "..",
    "../..",
    "%2e%2e",
    "..%2F..%2F",
    "%252e%252e",
    "a/b",
    "x" * 5000,
    "0" * 24 + "\n",
    "0" * 23,
    "0" * 25,
    "G" * 24,
    "{" + str(uuid.UUID(int=1)) + "}",
    "urn:uuid:" + str(uuid.UUID(int=1)),
    str(uuid.UUID(int=1)).upper(),
    str(uuid.UUID(int=1)).replace("-", ""),
    str(uuid.UUID(int=1)) + "%00",
    "\u0660" * 24,
    "٠١٢٣٤٥٦٧٨٩" * 3,
]
path_ids = st.sampled_from(PATH_IDS) | hostile_text


def _segment(value: str, raw: bool) -> str:
    """The id as a path segment: percent-encoded, or raw when it is printable ASCII."""
    return value if raw and value.isascii() and value.isprintable() else quote(value, safe="")


async def test_garbage_path_ids_are_rejected_cleanly(flow: Flow) -> None:
    definition = await flow.define([wait("nap", "00:10:00")], trigger="http_request")
    [workflow] = await flow.http_trigger({})
    probe = Probe(flow)
    base = flow.tenant.base
    every_constant = [
        (("definition", "workflow")[i % 2], value, raw, "get")
        for i, value in enumerate(PATH_IDS + HOSTILE_STRINGS)
        for raw in ((False, True) if quote(value, safe="") != value else (False,))
    ]
    cases = every_constant + examples(
        st.tuples(
            st.sampled_from(["definition", "workflow", "both"]),
            path_ids,
            st.booleans(),
            st.sampled_from(["get", "errors", "events", "patch", "start", "list"]),
        ),
        EXAMPLES * 2,
    )
    for target, value, raw, operation in cases:
        definition_id = _segment(value, raw) if target != "workflow" else definition
        workflow_id = _segment(value, raw) if target != "definition" else workflow
        instance_url = f"{base}/definitions/{definition_id}/workflows/{workflow_id}"
        method, url, body = {
            "get": ("GET", instance_url, None),
            "errors": ("GET", instance_url + "/errors", None),
            "events": ("GET", instance_url + "/events", None),
            "patch": ("PATCH", instance_url, b'{"status": "suspend"}'),
            "start": ("POST", f"{base}/definitions/{definition_id}/workflows", b"{}"),
            "list": ("GET", f"{base}/definitions/{definition_id}/workflows", None),
        }[operation]
        await probe.send(method, url, (method, url), content=body)
        if probe.accepted:  # a lenient id form reached our instance: put it back as it was
            state = (await flow.instance(definition, workflow))["status"]
            if state == "Suspended":
                path = f"/definitions/{definition}/workflows/{workflow}"
                await flow.call("PATCH", path, json={"status": "resume"})
    assert probe.rejected


NUL = "a\x00b"
# PostgreSQL cannot store or compare NUL in text: each of these once ended in a 500 there.
# (id, method, path under the account, query params, JSON body)
NUL_CASES: list[tuple[str, str, str, dict[str, str], Any]] = [
    ("trigger-subaccount", "POST", "/triggers/http_request", {"subAccountId": NUL}, {}),
    ("trigger-body", "POST", "/triggers/http_request", {}, {"x": NUL, NUL: 1}),
    ("start-subaccount", "POST", "/definitions/{d}/workflows", {},
     {"payload": {"subAccountId": NUL}}),
    ("start-body", "POST", "/definitions/{d}/workflows", {}, {"payload": {"x": NUL}}),
    ("sms-from", "POST", "/sandbox/inbound/sms", {}, {"from": NUL, "to": "1", "text": "t"}),
    ("sms-subaccount", "POST", "/sandbox/inbound/sms", {},
     {"from": CUSTOMER, "to": "1", "text": "t", "subAccountId": NUL}),
    ("sms-to-and-text", "POST", "/sandbox/inbound/sms", {},
     {"from": CUSTOMER, "to": NUL, "text": NUL}),
    ("chat-channel", "POST", "/sandbox/inbound/chatapps", {},
     {"channel": NUL, "from": CUSTOMER, "text": "t"}),
    ("chat-from", "POST", "/sandbox/inbound/chatapps", {},
     {"channel": "whatsapp", "from": NUL, "text": "t"}),
    ("chat-text-and-payload", "POST", "/sandbox/inbound/chatapps", {},
     {"channel": "whatsapp", "from": CUSTOMER, "text": NUL, "payload": NUL}),
    ("dtmf-uid", "POST", "/sandbox/dtmf", {}, {"digits": "1", "uid": NUL}),
    ("dtmf-client-request-id", "POST", "/sandbox/dtmf", {},
     {"digits": "1", "clientRequestId": NUL}),
    ("outbox-workflow-id", "GET", "/sandbox/outbox", {"workflowId": NUL}, None),
    ("list-start-time", "GET", "/definitions/{d}/workflows", {"startTimeFrom": NUL}, None),
    ("path-workflow-id", "GET", "/definitions/{d}/workflows/%00", {}, None),
    ("timezones-contains", "GET", "/steps/timezones", {"contains": NUL}, None),
    ("definition-name", "POST", "/definitions", {},
     {"trigger": "http_request", "definition": {"name": NUL, "steps": PROBE}}),
    ("definition-subaccount", "POST", "/definitions", {},
     {"trigger": "http_request", "subAccountId": NUL, "definition": {"name": "n", "steps": PROBE}}),
]  # fmt: skip


async def test_nul_characters_never_cause_a_5xx(flow: Flow) -> None:
    definition = await flow.define(PROBE, trigger="http_request")
    probe = Probe(flow)
    for name, method, path, params, body in NUL_CASES:
        await probe.send(
            method,
            flow.tenant.base + path.format(d=definition),
            (name, params, body),
            params=params,
            content=None if body is None else json.dumps(body),
        )
    assert probe.accepted == 0  # refused up front alike on both databases (400)
    await assert_all_finish(flow, [definition])


# --- engine-level hostile expressions ----------------------------------------------------------


async def test_a_long_interpolated_value_works(flow: Flow) -> None:
    # `{{data.s}}` is a plain path (evaluated without the sandbox); `.slice(0)` goes through it.
    steps = [
        sms("echo", "{{data.s}}", nextStepId="echo_js"),
        sms("echo_js", "{{data.s.slice(0)}}", nextStepId="echo_text"),
        sms("echo_text", "<{{data.s.slice(0)}}>"),
    ]
    definition = await flow.define(steps, trigger="http_request")
    long_text = ("0123456789" * 1000)[:10_000]
    [workflow] = await flow.http_trigger({"s": long_text})
    assert (await flow.instance(definition, workflow))["status"] == "Complete"
    assert await flow.texts() == [long_text, long_text, f"<{long_text}>"]


BENIGN = [sms("fine", "still fine: {{data.n}}")]
LIMIT_WORDS = (
    "memory",
    "stack",
    "recursion",
    "500 ms",
    "nested deeper",
    "too much",
    "array elements",
)

# Each faults with a resource-limit message; all of them run in the same worker run.
HOGS = {
    "memory_repeat": "'x'.repeat(1e9)",
    "memory_array": "Array(1e7).fill('x').length",
    "recursion_json_parse": "JSON.parse('['.repeat(1e5) + ']'.repeat(1e5))",
    "result_too_deep": "JSON.parse('['.repeat(200) + ']'.repeat(200))",
    "catastrophic_regex": "/(a+)+$/.test(data.s)",
    "time_index_of": "Array(1e9).indexOf(1)",
}
HOG_DATA = {"s": "a" * 30 + "b"}


async def _run_hogs(flow: Flow, hogs: dict[str, str]) -> None:
    """One trigger starts every hog and a benign instance in the same run: each hog faults
    with an error record naming a limit, the benign one completes, and the run stays short."""
    definitions = {
        name: await flow.define([sms(name, "{{" + source + "}}")], trigger="http_request")
        for name, source in hogs.items()
    }
    benign = await flow.define(BENIGN, trigger="http_request")
    workflows = await flow.http_trigger({**HOG_DATA, "n": 1})
    assert len(workflows) == len(hogs) + 1
    problems = []
    for name, definition in definitions.items():
        [hogged] = await flow.instances(definition)
        errors = await flow.errors(definition, hogged["workflowId"])
        if hogged["status"] != "Terminated" or len(errors) != 1:
            problems.append((name, hogged["status"], errors))
        elif errors[0]["step"] != name or not any(w in errors[0]["message"] for w in LIMIT_WORDS):
            problems.append((name, errors[0]))
    assert not problems, problems
    [fine] = await flow.instances(benign)
    assert fine["status"] == "Complete"
    assert await flow.errors(benign, fine["workflowId"]) == []
    assert await flow.texts() == ["still fine: 1"]


async def test_resource_hogs_fault_only_their_own_instance(flow: Flow) -> None:
    await _run_hogs(flow, HOGS)


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(
            "'x'.repeat(1e7).split('').length",
            id="memory-split",
        ),
        pytest.param(
            "Array(3e7).join('') + 'done'",
            id="time-limit-bypass-join",
        ),
    ],
)
async def test_resource_hogs_that_once_slipped_through(flow: Flow, source: str) -> None:
    await _run_hogs(flow, {"hog": source})


TAMPERING = [
    "Object.prototype.polluted = 1",
    "data.__proto__.polluted",
    "data['__proto__']",
    "data[`__proto__`]",
    "data['\\x5f_proto__']",
    "data['\\u005f_proto__']",
    "({}).constructor",
    "data.constructor.constructor('return this')()",
    "''['constructor']",
    "Object.defineProperty(Object.prototype, 'x', {value: 1})",
    "Object.getPrototypeOf(data).__defineGetter__",
    "eval('1')",
    "Function('return 1')()",
    "(() => 1)()",
    "(function () { return 1 })()",
    "delete data.x",
    "data.x = 1",
    "data.n++",
    "this",
    "({ ...data, ['__proto__']: {} })",
]


async def test_prototype_tampering_is_rejected_at_save_time(flow: Flow) -> None:
    before = await snapshot(flow.context)
    wrong = []
    for expression in TAMPERING:
        body = {
            "trigger": "http_request",
            "status": "enabled",
            "definition": {"name": "tamper", "steps": [sms("t", "{{" + expression + "}}")]},
        }
        response = await flow.client.post(
            f"{flow.tenant.base}/definitions", json=body, headers=flow.tenant.headers
        )
        assert_answer(response, expression)
        if response.status_code != 400 or response.json()["code"] != 5014:
            wrong.append((expression, response.status_code, response.text))
        report = await flow.call("POST", "/definitions/validate", json=body)
        if report["valid"] or {p["code"] for p in report["errors"]} != {5014}:
            wrong.append((expression, "validate", report))
    assert not wrong, "\n".join(map(str, wrong))
    assert await snapshot(flow.context) == before  # nothing was saved


# Tampering that the save-time whitelist lets through: built-ins it cannot name are reached
# through calls. Every intrinsic of the realm is frozen, so changing one fails the expression
# (and faults its step); an expression's own copies of `data`/`step` may change, but die with it.
TAMPER_OUTPUTS = {
    "t_codegen": "{{typeof data['constr' + 'uctor']}}",
    "t_data": "{{Object.assign(data, {n: 'tampered'}) !== null}}",
    "t_proto": "{{Reflect.setPrototypeOf(data, null)}}",
}
INTRINSIC_TAMPERS = [
    "{{Object.assign(Object, {keys: Object.values}) === Object}}",
    "{{Object.defineProperty(Object.getPrototypeOf(/a/), 'test', {value: Boolean}) !== null}}",
    "{{Object.assign(Math, {max: Math.min}) === Math}}",
    "{{Object.assign(JSON, {polluted: 'yes'}).polluted}}",
    "{{Object.assign(Object.getPrototypeOf([].values()), {polluted: 'yes'}) !== null}}",
]
READ_OUTPUTS = {
    "keys": "{{Object.keys({a: 1})[0]}}",
    "regex": "{{/x/.test('y')}}",
    "max": "{{Math.max(1, 2)}}",
    "json": "{{typeof JSON.polluted}}",
    "n": "{{data.n}}",
    "has_own": "{{typeof data.hasOwnProperty}}",
}
UNTAMPERED = {
    "keys": "a",
    "regex": False,
    "max": 2,
    "json": "undefined",
    "has_own": "function",
}


def _reads(prefix: str) -> dict[str, str]:
    return {prefix + key: value for key, value in READ_OUTPUTS.items()}


async def test_tampering_past_the_whitelist_reaches_no_other_instance_or_step(
    flow: Flow,
) -> None:
    for source in [*TAMPER_OUTPUTS.values(), *INTRINSIC_TAMPERS]:  # they pass the whitelist
        report = await flow.call(
            "POST",
            "/definitions/validate",
            json={
                "trigger": "http_request",
                "definition": {"name": "t", "steps": [sms("s", "x", outputs={"o": source})]},
            },
        )
        assert report["valid"], (source, report)
    tamper = await flow.define(
        [
            sms("tamper", "tampering", outputs=TAMPER_OUTPUTS, nextStepId="later"),
            sms("later", "later", outputs=_reads("later_")),
        ],
        trigger="http_request",
    )
    intrinsic_tampers = [
        await flow.define([sms("tamper", "x", outputs={"o": source})], trigger="http_request")
        for source in INTRINSIC_TAMPERS
    ]
    victim = await flow.define(
        [sms("victim", "victim", outputs=_reads("v_"))], trigger="http_request"
    )
    await flow.http_trigger({"n": 1})  # every instance runs in the same worker run
    await flow.http_trigger({"n": 2})
    for definition in intrinsic_tampers:
        for item in await flow.instances(definition):
            assert item["status"] == "Terminated"
            [error] = await flow.errors(definition, item["workflowId"])
            assert "TypeError" in error["message"], error
    for definition, prefix in ((tamper, "later_"), (victim, "v_")):
        for item in await flow.instances(definition):
            instance = await flow.instance(definition, item["workflowId"])
            assert instance["status"] == "Complete", await flow.errors(
                definition, item["workflowId"]
            )
            data = instance["data"]
            for key, value in UNTAMPERED.items():
                assert data[prefix + key] == value, (prefix + key, data)
            assert data[prefix + "n"] == data["n"]
            assert "polluted" not in data
    codegen = [
        (await flow.instance(tamper, item["workflowId"]))["data"]["t_codegen"]
        for item in await flow.instances(tamper)
    ]
    assert codegen == ["function", "function"]
    # The Function constructor is reachable by computed names, but cannot generate code.
    escape = await flow.define(
        [sms("escape", "{{data['constr' + 'uctor']['constr' + 'uctor']('return 1')()}}")],
        trigger="http_request",
    )
    await flow.http_trigger({"n": 3})
    [escaped] = await flow.instances(escape)
    assert escaped["status"] == "Terminated"
    [error] = await flow.errors(escape, escaped["workflowId"])
    assert "code generation from strings is disabled" in error["message"]


async def test_tampering_past_the_whitelist_reaches_no_other_expression_of_its_step(
    flow: Flow,
) -> None:
    definition = await flow.define(
        [sms("tamper", "tampering", outputs={**TAMPER_OUTPUTS, **_reads("same_")})],
        trigger="http_request",
    )
    [workflow] = await flow.http_trigger({"n": 1})
    data = (await flow.instance(definition, workflow))["data"]
    assert {key: data["same_" + key] for key in [*UNTAMPERED, "n"]} == {**UNTAMPERED, "n": 1}
