"""The fake 8x8 server itself: it is the oracle for relayflow's connectors, so it must be right.

One fake process serves the whole module (reset before each test). Requests go over real HTTP;
webhooks are received by a small aiohttp server running in the test's event loop, and their
field sets are compared with spec §11.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiohttp import web

from fake8x8 import ControlError, Fake8x8, running_fake
from tests.support.processes import free_port

KEY, OTHER_KEY = "key-alpha-0001", "key-bravo-0002"
SUB = "sub-account_1"
TS2 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{2}Z$")  # 8x8's yyyy-MM-ddTHH:mm:ss.ffZ
TS3 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")  # webhook timestamps (§11)
ENVELOPE = {"namespace", "eventType", "description", "payload"}
SEND_PATH = {
    "sms": "/api/v1/subaccounts/{}/messages",
    "chatapps": "/api/v1/subaccounts/{}/messages",
    "voice": "/api/v1/subaccounts/{}/callflows",
}


def is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def fake() -> Iterator[Fake8x8]:
    server = Fake8x8(api_keys=[KEY, OTHER_KEY])
    with server:
        yield server
    assert "Traceback" not in server.log(), server.log()  # no handler crashed, drops included


@pytest.fixture(autouse=True)
def _clean(fake: Fake8x8) -> None:
    fake.reset()


@dataclass
class Api:
    """Sends to the fake's 8x8 sites like a connector would."""

    fake: Fake8x8
    http: httpx.Client

    def post(
        self,
        role: str,
        body: Any,
        sub: str = SUB,
        key: str | None = KEY,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        url = getattr(self.fake.urls, role) + SEND_PATH[role].format(sub)
        all_headers = {"Authorization": f"Bearer {key}"} if key else {}
        all_headers.update(headers or {})
        if content is not None:
            all_headers.setdefault("Content-Type", "application/json")
            return self.http.post(url, content=content, headers=all_headers)
        return self.http.post(url, json=body, headers=all_headers)


@pytest.fixture(scope="module")
def api(fake: Fake8x8) -> Iterator[Api]:
    with httpx.Client(timeout=10, verify=False) as http:  # plain http; skips the CA bundle
        yield Api(fake, http)


def sms(**fields: Any) -> dict[str, Any]:
    return {"destination": "+6591234567", "text": "Hello", **fields}


def chat(**fields: Any) -> dict[str, Any]:
    return {"user": {"msisdn": "+6591234567"}, "type": "text", "content": {"text": "Hi"}, **fields}


def legacy_voice(action: str = "say&capture", **params: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"source": "+6568332000", "destination": "+6591234567"}
    if action == "playFile":
        base["fileUrl"] = "https://example.com/a.mp3"
    else:
        base.update(text="Press a key", language="en", repetition=1, speed=1)
    if action == "say&capture":
        base.update(
            dtmfCallbackUrl="https://relay.example/dtmf",
            minDigits=1,
            maxDigits=1,
            digitTimeout=10000,
            overallTimeout=10000,
            completeOnHash=True,
            noOfTries=1,
        )
    base.update(params)
    params_out = {name: value for name, value in base.items() if value is not None}
    return {"clientRequestId": "req-1", "callflow": [{"action": action, "params": params_out}]}


def current_voice(*actions: dict[str, Any]) -> dict[str, Any]:
    make_call = {
        "action": "makeCall",
        "params": {"source": "+6588000000", "destination": "+6590000000"},
    }
    say = {"action": "say", "params": {"text": "Hi", "voiceProfile": "en-GB-Emma"}}
    return {"callflow": [make_call, *(actions or (say, {"action": "hangup"}))]}


class Receiver:
    """A webhook endpoint in the test's event loop: records posts, answers queued statuses."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(
            {"path": request.path, "headers": dict(request.headers), "body": await request.json()}
        )
        status = self.statuses.pop(0) if self.statuses else 200
        return web.json_response({"received": True}, status=status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    target = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", target.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    target.url = f"http://127.0.0.1:{port}"
    yield target
    await runner.cleanup()


# ---------------------------------------------------------------------------------------------
# Process and CLI


def test_cli_ports_open_auth_and_subaccounts_and_stop() -> None:
    """Explicit ports are used; no --api-key = any bearer token; --subaccount restricts."""
    ports = {role: free_port() for role in ("sms", "chatapps", "voice", "control")}
    for other in running_fake(api_keys=[], subaccounts=["only-sub"], ports=ports):
        for role, port in ports.items():
            assert getattr(other.urls, role) == f"http://127.0.0.1:{port}"
        assert other.urls.crm.startswith("http://127.0.0.1:")  # no --crm-port: any free port
        assert other.health() == {"ok": True}
        with httpx.Client(verify=False) as http:
            api = Api(other, http)
            assert api.post("sms", sms(), sub="only-sub", key="anything").status_code == 200
            assert api.post("sms", sms(), sub="only-sub", key=None).status_code == 401
            assert api.post("sms", sms(), sub="other-sub", key="anything").status_code == 400
        process = other._process
    assert process is not None
    assert process.returncode is not None  # terminated by stop()


# ---------------------------------------------------------------------------------------------
# Auth


@pytest.mark.parametrize("role", ["sms", "chatapps"])
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {KEY}"}],
    ids=["missing", "wrong-key", "wrong-scheme"],
)
def test_bad_auth_is_401_with_8x8_error_body(api: Api, role: str, headers: dict[str, str]) -> None:
    body = sms() if role == "sms" else chat()
    response = api.post(role, body, key=None, headers=headers)
    assert response.status_code == 401
    answer = response.json()
    assert set(answer) == {"code", "message", "errorId", "timestamp"}
    assert answer["code"] == 1200
    assert is_uuid(answer["errorId"])
    assert TS2.match(answer["timestamp"])


def test_voice_bad_auth_uses_the_voice_error_shape(api: Api) -> None:
    response = api.post("voice", legacy_voice(), key="wrong")
    assert response.status_code == 401
    answer = response.json()
    assert answer["sessionStatus"] == "NOT_CREATED"
    assert answer["statusCode"] == 401
    assert is_uuid(answer["callFlowRequestId"])


def test_every_configured_key_works_and_keys_can_be_added(api: Api, fake: Fake8x8) -> None:
    assert api.post("sms", sms(), key=OTHER_KEY).status_code == 200
    assert api.post("sms", sms(), key="late-key").status_code == 401
    fake.add_key("late-key")
    assert api.post("sms", sms(), key="late-key").status_code == 200
    fake.reset()  # back to the command-line keys
    assert api.post("sms", sms(), key="late-key").status_code == 401


# ---------------------------------------------------------------------------------------------
# SMS


def test_sms_success_shape(api: Api) -> None:
    response = api.post("sms", sms(clientMessageId="c-1", source="Relay"))
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {"umid", "clientMessageId", "destination", "encoding", "status"}
    assert is_uuid(answer["umid"])
    assert answer["clientMessageId"] == "c-1"
    assert answer["destination"] == "6591234567"
    assert answer["encoding"] == "GSM7"
    assert answer["status"] == {
        "code": "QUEUED",
        "description": "SMS is accepted and queued for processing",
    }


@pytest.mark.parametrize(
    ("text", "encoding"),
    [("plain [text] €", "GSM7"), ("你好", "UCS2"), ("emoji 🙂", "UCS2")],
)
def test_sms_encoding_is_detected(api: Api, text: str, encoding: str) -> None:
    assert api.post("sms", sms(text=text)).json()["encoding"] == encoding


def test_sms_explicit_encoding_is_echoed_and_client_message_id_optional(api: Api) -> None:
    answer = api.post("sms", sms(encoding="UCS2")).json()
    assert answer["encoding"] == "UCS2"
    assert "clientMessageId" not in answer


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        (sms(destination="12345"), 1002, "Invalid MSISDN format"),
        (sms(destination="+0651234567"), 1002, "E.164"),
        (sms(destination="+65 9123 4567"), 1002, "E.164"),
        ({"text": "x"}, 1000, "'destination'"),
        ({"destination": "+6591234567"}, 1000, "'text'"),
        (sms(text=""), 1000, "'text'"),
        (sms(text=5), 1000, "'text'"),
        (sms(source="S" * 17), 1000, "'source'"),
        (sms(clientMessageId="c" * 351), 1000, "'clientMessageId'"),
        (sms(country="SGP"), 1000, "'country'"),
        (sms(encoding="UTF8"), 1000, "'encoding'"),
        (sms(scheduled="tomorrow"), 1000, "'scheduled'"),
        (sms(dlrCallbackUrl="not a url"), 1000, "'dlrCallbackUrl'"),
        (sms(track="Always"), 1000, "'track'"),
    ],
)
def test_sms_validation(api: Api, body: dict[str, Any], code: int, fragment: str) -> None:
    response = api.post("sms", body)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert fragment in response.json()["message"]


def test_sms_limits_are_inclusive(api: Api) -> None:
    body = sms(source="S" * 16, clientMessageId="c" * 350, destination="+123456789012345")
    assert api.post("sms", body).status_code == 200


@pytest.mark.parametrize("sub", ["ab", "x" * 51, "bad!id", "with space"])
def test_illegal_subaccount_id(api: Api, sub: str) -> None:
    response = api.post("sms", sms(), sub=sub)
    assert response.status_code == 400
    assert response.json()["code"] == 1001
    assert response.json()["message"] == "Illegal SubAccountId"


def test_subaccount_allow_list(api: Api, fake: Fake8x8) -> None:
    fake.set_subaccounts(["known-sub"])
    assert api.post("sms", sms(), sub="known-sub").status_code == 200
    refused = api.post("chatapps", chat(), sub="other-sub")
    assert refused.status_code == 400
    assert refused.json()["code"] == 1001
    assert "doesn't belong" in refused.json()["message"]
    voice = api.post("voice", legacy_voice(), sub="other-sub")
    assert voice.status_code == 404
    assert voice.json()["statusMessage"] == "SubAccount not found by Id : other-sub"
    fake.set_subaccounts([])
    assert api.post("sms", sms(), sub="other-sub").status_code == 200


@pytest.mark.parametrize("role", ["sms", "chatapps"])
def test_malformed_json_and_wrong_content_type(api: Api, role: str) -> None:
    broken = api.post(role, None, content=b'{"destination": ')
    assert broken.status_code == 400
    assert broken.json()["code"] == 1000
    not_object = api.post(role, None, content=b"[1, 2]")
    assert not_object.status_code == 400
    form = api.post(role, None, content=b"a=1", headers={"Content-Type": "text/plain"})
    assert form.status_code == 400
    assert "Content-Type" in form.json()["message"]


def test_unknown_route_and_method(api: Api, fake: Fake8x8) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    missing = api.http.post(fake.urls.sms + "/api/v1/nothing", json={}, headers=headers)
    assert missing.status_code == 404
    assert missing.json()["code"] == 1300
    wrong = api.http.get(fake.urls.sms + SEND_PATH["sms"].format(SUB), headers=headers)
    assert wrong.status_code == 405


# ---------------------------------------------------------------------------------------------
# Chat Apps


def test_chat_success_shape(api: Api) -> None:
    response = api.post(
        "chatapps",
        chat(clientMessageId="m-1", type="Image", content={"url": "https://example.com/a.jpg"}),
    )
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {"umid", "user", "clientMessageId", "status"}
    assert is_uuid(answer["umid"])
    assert answer["user"] == {"msisdn": "+6591234567"}
    assert answer["status"]["state"] == "queued"
    assert TS2.match(answer["status"]["timestamp"])


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        ({"type": "text", "content": {"text": "x"}}, 3001, "'user'"),
        (chat(user={}), 3001, "'user'"),
        (chat(user={"msisdn": "12"}), 1002, "E.164"),
        (chat(user={"channelUserId": "not-a-bsuid"}), 1000, "user.channelUserId"),
        ({"user": {"msisdn": "+6591234567"}, "content": {"text": "x"}}, 1000, "'type'"),
        (chat(type="sticker"), 1000, "'type'"),
        ({"user": {"msisdn": "+6591234567"}, "type": "text"}, 1000, "'content'"),
        (chat(content={"url": "https://e.com/a.png"}), 1000, "'text'"),
        (chat(content={"text": "x" * 35001}), 1000, "'text'"),
        (chat(type="image", content={"text": "no url"}), 1000, "'url'"),
        (chat(type="location", content={"location": {"latitude": 1}}), 1000, "location"),
        (chat(type="template", content={"template": {"name": "t"}}), 1000, "'language'"),
        (chat(type="interactive", content={"text": "x"}), 1000, "content.interactive"),
        (chat(clientMessageId="c" * 51), 1000, "'clientMessageId'"),
        (chat(channels=[{"channel": "Pager"}]), 1000, "'channel'"),
        (chat(channels=[{"channel": "SMS", "fallbackAfter": 5}]), 1000, "fallbackAfter"),
        (chat(context={}), 1000, "context.umid"),
    ],
)
def test_chat_validation(api: Api, body: dict[str, Any], code: int, fragment: str) -> None:
    response = api.post("chatapps", body)
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == code
    assert fragment in response.json()["message"]


def test_chat_accepts_bsuid_line_and_national_numbers(api: Api) -> None:
    for user in (
        {"channelUserId": "US.13491208655302741918"},
        {"lineUserId": "Ua12b345678c1de0fg1a1234567891011"},
        {"msisdn": "091234567", "country": "SG"},
    ):
        assert api.post("chatapps", chat(user=user)).status_code == 200, user


def test_sms_body_on_the_chat_host_is_refused(api: Api) -> None:
    assert api.post("chatapps", sms()).json()["code"] == 3001


# ---------------------------------------------------------------------------------------------
# Voice


@pytest.mark.parametrize("action", ["say", "say&capture", "playFile"])
def test_voice_legacy_form_is_accepted(api: Api, action: str) -> None:
    response = api.post("voice", legacy_voice(action))
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {
        "sessionId",
        "sessionStatus",
        "callFlowRequestId",
        "statusCode",
        "statusMessage",
        "uid",
        "clientRequestId",
    }
    assert answer["sessionStatus"] == "CREATED"
    assert answer["statusCode"] == 1
    assert answer["statusMessage"] == "Created"
    assert answer["clientRequestId"] == "req-1"
    assert answer["uid"] == answer["sessionId"]
    assert is_uuid(answer["callFlowRequestId"])


def test_voice_current_form_is_accepted(api: Api) -> None:
    capture = {
        "action": "sayAndCapture",
        "params": {
            "promptMessage": "Press 1",
            "voiceProfile": "en-US-Neural2-C",
            "minDigits": 1,
            "maxDigits": 1,
            "digitTimeout": 5000,
            "completeOnHash": False,
        },
    }
    play = {"action": "playFile", "params": {"fileUrl": "https://e.com/a.wav", "repetition": 2}}
    for body in (current_voice(), current_voice(capture), current_voice(play)):
        response = api.post("voice", body)
        assert response.status_code == 200, response.json()
        assert set(response.json()) == {
            "sessionId",
            "sessionStatus",
            "callFlowRequestId",
            "statusCode",
            "statusMessage",
        }


@pytest.mark.parametrize(
    ("body", "http_status", "status_code"),
    [
        (legacy_voice("say", language=None), 400, -1002),
        (legacy_voice("say", language="english!"), 400, -1002),
        (legacy_voice("say", language=None, voiceProfile="en-US-BenjaminRUS"), 200, 1),
        (legacy_voice(maxDigits=None, completeOnHash=True), 400, -1003),
        (legacy_voice(overallTimeout=None), 400, -1005),
        (legacy_voice(maxDigits=None, minDigits=None, completeOnHash=False), 400, -1008),
        (legacy_voice(minDigits=3, maxDigits=2), 400, -1009),
        (legacy_voice("dance"), 400, -1007),
        (legacy_voice(destination="12"), 400, -1009),
        (legacy_voice(source=None), 400, -1009),
        (legacy_voice(text="x" * 3001), 400, -1009),
        (legacy_voice(repetition=4), 400, -1009),
        (legacy_voice(speed=3), 400, -1009),
        (legacy_voice(dtmfCallbackUrl="ftp://x/y"), 400, -1009),
        (legacy_voice("playFile", fileUrl="ftp://example.com/a.mp3"), 400, -1009),
        (legacy_voice("playFile", fileUrl=None), 400, -1009),
        ({"callflow": []}, 400, -1009),
        ({"callflow": [{"params": {}}]}, 400, -1009),
        (current_voice({"action": "dance"}), 400, -1007),
        (
            {"callflow": current_voice()["callflow"][1:] + current_voice()["callflow"][:1]},
            422,
            -1013,
        ),
        (current_voice(*current_voice()["callflow"][:1] * 2), 422, -1013),
        (current_voice({"action": "say", "params": {"text": "no voice"}}), 400, -1002),
    ],
)
def test_voice_validation(
    api: Api, body: dict[str, Any], http_status: int, status_code: int
) -> None:
    response = api.post("voice", body)
    assert response.status_code == http_status, response.json()
    answer = response.json()
    assert answer["statusCode"] == status_code
    if http_status != 200:
        assert answer["sessionStatus"] == "NOT_CREATED"
        assert set(answer) == {"sessionStatus", "callFlowRequestId", "statusCode", "statusMessage"}


def test_voice_malformed_json(api: Api) -> None:
    response = api.post("voice", None, content=b"{nope")
    assert response.status_code == 400
    assert response.json()["statusCode"] == -1001


# ---------------------------------------------------------------------------------------------
# Recording


def test_requests_are_recorded_with_redacted_auth_and_answer(api: Api, fake: Fake8x8) -> None:
    accepted = api.post("sms", sms(clientMessageId="rec-1")).json()
    api.post("sms", sms(destination="1"))
    api.post("chatapps", chat(), key="bad-key-9999")
    recorded = fake.requests(role="sms")
    assert [entry["status"] for entry in recorded] == [200, 400]
    first = recorded[0]
    assert first["method"] == "POST"
    assert first["role"] == "sms"
    assert first["path"] == f"/api/v1/subaccounts/{SUB}/messages"
    assert first["subAccountId"] == SUB
    assert first["body"] == sms(clientMessageId="rec-1")
    assert first["answer"] == accepted
    assert first["headers"]["Authorization"] == "***" + KEY[-4:]
    assert KEY not in str(recorded)
    chat_entry = fake.requests(role="chatapps")[0]
    assert chat_entry["status"] == 401
    assert chat_entry["headers"]["Authorization"] == "***9999"
    assert [entry["status"] for entry in fake.requests(status=400)] == [400]
    assert len(fake.requests()) == 3
    fake.reset()
    assert fake.requests() == []


def test_unparsable_bodies_are_recorded_as_text(api: Api, fake: Fake8x8) -> None:
    api.post("sms", None, content=b"{broken")
    assert fake.requests()[0]["body"] == "{broken"


# ---------------------------------------------------------------------------------------------
# Injected failures


def test_fail_500_then_normal(api: Api, fake: Fake8x8) -> None:
    fake.fail("sms", "500", count=2)
    statuses = [api.post("sms", sms()).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert api.post("sms", sms()).status_code == 200
    assert [entry["fault"] for entry in fake.requests()] == ["500", "500", None, None]


def test_fail_500_body_and_voice_shape(api: Api, fake: Fake8x8) -> None:
    fake.fail("*", "500", count=2)
    assert api.post("chatapps", chat()).json()["code"] == 2000
    voice = api.post("voice", legacy_voice())
    assert voice.status_code == 500
    assert voice.json()["statusCode"] == 500


def test_fail_429_has_retry_after(api: Api, fake: Fake8x8) -> None:
    fake.fail("chatapps", "429", retry_after=3)
    response = api.post("chatapps", chat())
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.json()["code"] == 429
    assert "3 second(s)" in response.json()["message"]
    assert api.post("chatapps", chat()).status_code == 200


def test_fail_only_matches_its_role(api: Api, fake: Fake8x8) -> None:
    fake.fail("voice", "400")
    assert api.post("sms", sms()).status_code == 200
    response = api.post("voice", legacy_voice())
    assert response.status_code == 400
    assert response.json()["statusCode"] == -1009
    assert fake.faults() == {"counted": [], "rates": {}, "outages": []}


def test_fail_401_even_with_a_good_key(api: Api, fake: Fake8x8) -> None:
    fake.fail("sms", "401")
    response = api.post("sms", sms())
    assert response.status_code == 401
    assert response.json()["code"] == 1200


def test_fail_400(api: Api, fake: Fake8x8) -> None:
    fake.fail("sms", "400")
    assert api.post("sms", sms()).json()["code"] == 1000


def test_fail_slow_answers_normally_after_the_delay(api: Api, fake: Fake8x8) -> None:
    fake.fail("sms", "slow", delay=0.6)
    started = time.monotonic()
    response = api.post("sms", sms())
    assert time.monotonic() - started >= 0.6
    assert response.status_code == 200
    fake.fail("sms", "slow", delay=1.0)
    with pytest.raises(httpx.ReadTimeout):
        api.http.post(
            fake.urls.sms + SEND_PATH["sms"].format(SUB),
            json=sms(),
            headers=fake.auth_headers,
            timeout=0.2,
        )


def test_fail_drop_closes_the_connection(api: Api, fake: Fake8x8) -> None:
    fake.fail("sms", "drop")
    with pytest.raises(httpx.TransportError):
        api.post("sms", sms())
    entry = fake.requests()[0]
    assert entry["fault"] == "drop"
    assert entry["status"] is None
    assert api.post("sms", sms()).status_code == 200


def test_fail_429_retry_after_defaults_to_one_second(api: Api, fake: Fake8x8) -> None:
    fake.fail("voice", "429")
    response = api.post("voice", legacy_voice())
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert response.json()["statusCode"] == 429


def test_fail_503_has_retry_after_only_when_given(api: Api, fake: Fake8x8) -> None:
    """A retry policy must cope with both: a 503 that names its wait and one that does not."""
    fake.fail("sms", "503")
    bare = api.post("sms", sms())
    assert bare.status_code == 503
    assert "Retry-After" not in bare.headers
    assert set(bare.json()) == {"code", "message", "errorId", "timestamp"}
    assert bare.json()["code"] == 2000
    fake.fail("voice", "503", retry_after=2)
    voice = api.post("voice", legacy_voice())
    assert voice.status_code == 503
    assert voice.headers["Retry-After"] == "2"
    assert voice.json()["sessionStatus"] == "NOT_CREATED"
    assert voice.json()["statusCode"] == 503
    fake.fail_rate(1, modes=["503"], role="chatapps", retry_after=0)
    assert api.post("chatapps", chat()).headers["Retry-After"] == "0"
    assert [entry["fault"] for entry in fake.requests()] == ["503", "503", "503"]
    assert [entry["status"] for entry in fake.requests()] == [503, 503, 503]


def test_fail_lost_accepts_the_message_but_drops_the_answer(api: Api, fake: Fake8x8) -> None:
    fake.fail("chatapps", "lost")
    with pytest.raises(httpx.TransportError):
        api.post("chatapps", chat(clientMessageId="lost-1"))
    fake.fail("chatapps", "drop")
    with pytest.raises(httpx.TransportError):
        api.post("chatapps", chat(clientMessageId="drop-1"))
    lost, dropped = fake.requests()
    # accepted for real: the same record an answered send gets, plus the fault
    assert (lost["fault"], lost["status"]) == ("lost", 200)
    assert is_uuid(lost["answer"]["umid"])
    assert lost["answer"]["clientMessageId"] == "lost-1"
    # never accepted: no status, no answer
    assert (dropped["fault"], dropped["status"], dropped["answer"]) == ("drop", None, None)
    assert api.post("chatapps", chat()).status_code == 200


async def test_a_lost_message_still_gets_its_receipt(
    api: Api, fake: Fake8x8, receiver: Receiver
) -> None:
    """8x8 accepted it, so its receipts come, for a umid the sender never saw."""
    fake.fail("sms", "lost")
    with pytest.raises(httpx.TransportError):
        api.post("sms", sms(clientMessageId="lost-2", dlrCallbackUrl=receiver.url + "/dlr"))
    [entry] = await fake.aio.requests(role="sms", status=200)
    result = await fake.aio.sms_receipt(entry["answer"]["umid"], "delivered")
    assert result["status"] == 200
    assert receiver.received[0]["body"]["payload"]["clientMessageId"] == "lost-2"


def test_fail_rejects_unknown_modes_and_roles(fake: Fake8x8) -> None:
    with pytest.raises(ControlError) as caught:
        fake.fail("sms", "teapot")
    assert caught.value.status == 400
    with pytest.raises(ControlError):
        fake.fail("email", "500")


def _statuses_under_rate(api: Api, fake: Fake8x8, seed: int) -> list[int | None]:
    fake.reset()
    fake.fail_rate(0.3, modes=["500", "429", "drop"], role="sms", seed=seed)
    statuses: list[int | None] = []
    for _ in range(60):
        try:
            statuses.append(api.post("sms", sms()).status_code)
        except httpx.TransportError:
            statuses.append(None)
    return statuses


def test_fail_rate_is_roughly_honoured_and_reproducible(api: Api, fake: Fake8x8) -> None:
    first = _statuses_under_rate(api, fake, seed=1)
    again = _statuses_under_rate(api, fake, seed=1)
    assert first == again
    failed = sum(status != 200 for status in first)
    assert 8 <= failed <= 30  # 0.3 of 60 = 18
    assert {status for status in first} <= {200, 500, 429, None}
    assert api.post("chatapps", chat()).status_code == 200  # other roles unaffected
    fake.fail_rate(0, role="sms")
    assert all(api.post("sms", sms()).status_code == 200 for _ in range(10))


# ---------------------------------------------------------------------------------------------
# Outages


def test_outage_with_seconds_fails_everything_then_recovers(api: Api, fake: Fake8x8) -> None:
    started = time.monotonic()
    answer = fake.outage("sms", seconds=1)
    [active] = answer["outages"]
    assert (active["role"], active["mode"]) == ("sms", "503")
    assert 0.5 < active["remaining"] <= 1
    statuses = [api.post("sms", sms()).status_code for _ in range(3)]
    assert statuses == [503, 503, 503]
    assert "Retry-After" not in api.post("sms", sms()).headers
    assert api.post("chatapps", chat()).status_code == 200  # other roles unaffected
    while api.post("sms", sms()).status_code == 503:
        assert time.monotonic() - started < 3, "the outage did not end"
        time.sleep(0.05)
    assert time.monotonic() - started >= 1
    assert fake.faults()["outages"] == []
    sms_faults = [entry["fault"] for entry in fake.requests(role="sms")]
    assert sms_faults[:4] == ["503"] * 4
    assert sms_faults[-1] is None


def test_open_ended_outage_lasts_until_ended(api: Api, fake: Fake8x8) -> None:
    fake.outage(mode="500", retry_after=4)  # every role
    assert fake.faults()["outages"] == [{"role": "*", "mode": "500", "remaining": None}]
    assert api.post("sms", sms()).status_code == 500
    assert api.post("voice", legacy_voice()).json()["statusCode"] == 500
    assert api.http.get(fake.urls.crm + "/ping").status_code == 500
    fake.end_outage()
    assert fake.faults()["outages"] == []
    assert api.post("sms", sms()).status_code == 200
    assert api.http.get(fake.urls.crm + "/ping").status_code == 200


def test_outage_503_with_retry_after_and_other_modes(api: Api, fake: Fake8x8) -> None:
    fake.outage("voice", "503", retry_after=5)
    assert api.post("voice", legacy_voice()).headers["Retry-After"] == "5"
    fake.outage("voice", "lost")  # replaces the voice outage
    with pytest.raises(httpx.TransportError):
        api.post("voice", legacy_voice())
    assert fake.requests(role="voice")[-1]["status"] == 200
    fake.outage("chatapps", "429")
    assert api.post("chatapps", chat()).headers["Retry-After"] == "1"
    assert [outage["mode"] for outage in fake.faults()["outages"]] == ["lost", "429"]


def test_outage_wins_over_counted_rules_without_using_them(api: Api, fake: Fake8x8) -> None:
    fake.fail("sms", "429", count=2)
    fake.fail_rate(1, modes=["400"], role="*")
    fake.outage("sms", "drop")
    for _ in range(3):
        with pytest.raises(httpx.TransportError):
            api.post("sms", sms())
    assert fake.faults()["counted"] == [{"role": "sms", "mode": "429", "remaining": 2}]
    fake.end_outage()
    fake.fail_rate(0, role="*")
    statuses = [api.post("sms", sms()).status_code for _ in range(3)]
    assert statuses == [429, 429, 200]
    faults = [entry["fault"] for entry in fake.requests()]
    assert faults == ["drop", "drop", "drop", "429", "429", None]


def test_reset_ends_outages(api: Api, fake: Fake8x8) -> None:
    fake.outage("*", "503")
    fake.outage("crm", "401", seconds=30)
    assert len(fake.faults()["outages"]) == 2
    fake.reset()
    assert fake.faults() == {"counted": [], "rates": {}, "outages": []}
    assert api.post("sms", sms()).status_code == 200


# ---------------------------------------------------------------------------------------------
# The crm site


def test_crm_echoes_any_method_path_query_and_body(api: Api, fake: Fake8x8) -> None:
    crm = fake.urls.crm
    got = api.http.get(crm + "/contacts/7?expand=deals&tag=a&tag=b")  # no Authorization
    assert got.status_code == 200
    assert got.json() == {
        "method": "GET",
        "path": "/contacts/7",
        "query": {"expand": "deals", "tag": ["a", "b"]},
        "body": None,
        "n": 1,
    }
    posted = api.http.post(crm + "/api/v1/subaccounts/x-1/messages", json={"name": "Ann"})
    assert posted.json()["body"] == {"name": "Ann"}
    assert posted.json()["n"] == 2
    text = api.http.request("PATCH", crm + "/notes", content=b"plain words")
    assert (text.json()["method"], text.json()["body"]) == ("PATCH", "plain words")
    assert api.http.delete(crm + "/").json()["n"] == 4
    recorded = fake.requests(role="crm")
    assert [entry["method"] for entry in recorded] == ["GET", "POST", "PATCH", "DELETE"]
    assert all(entry["subAccountId"] is None for entry in recorded)
    assert recorded[0]["query"] == "expand=deals&tag=a&tag=b"
    assert recorded[1]["status"] == 200
    assert recorded[1]["answer"] == posted.json()
    fake.reset()
    assert api.http.get(crm + "/again").json()["n"] == 1


@pytest.mark.parametrize(
    ("mode", "status"), [("500", 500), ("503", 503), ("429", 429), ("401", 401), ("400", 400)]
)
def test_crm_fault_answers_are_small_json_errors(
    api: Api, fake: Fake8x8, mode: str, status: int
) -> None:
    fake.fail("crm", mode)
    response = api.http.post(fake.urls.crm + "/hook", json={})
    assert response.status_code == status
    assert set(response.json()) == {"error"}
    assert ("Retry-After" in response.headers) == (mode == "429")
    assert fake.requests(role="crm")[0]["fault"] == mode


def test_crm_counts_faulted_requests_and_shares_star_faults(api: Api, fake: Fake8x8) -> None:
    crm = fake.urls.crm + "/orders"
    fake.fail("crm", "503", retry_after=3)
    assert api.http.get(crm).headers["Retry-After"] == "3"
    fake.fail("crm", "lost")
    with pytest.raises(httpx.TransportError):
        api.http.get(crm)
    assert fake.requests(role="crm")[-1]["answer"]["n"] == 2
    assert api.http.get(crm).json()["n"] == 3  # every request counts, faulted ones too
    fake.fail("*", "500")  # '*' takes the next request of any role, the crm's included
    assert api.http.get(crm).status_code == 500
    assert api.post("sms", sms()).status_code == 200
    fake.fail_rate(1, modes=["500"], role="*")
    assert api.http.get(crm).status_code == 500
    assert api.post("chatapps", chat()).status_code == 500
    fake.fail_rate(0, role="*")
    fake.outage("crm")
    assert api.http.get(crm).status_code == 503
    assert api.post("sms", sms()).status_code == 200


# ---------------------------------------------------------------------------------------------
# Bad control input


@pytest.mark.parametrize(
    ("path", "spec"),
    [
        ("/fail", {"role": "sms", "mode": "teapot"}),
        ("/fail", {"role": "crm", "mode": "503", "retryAfter": -1}),
        ("/fail-rate", {"rate": 0.5, "modes": ["lost", "nope"]}),
        ("/fail-rate", {"rate": 0.5, "role": "fax"}),
        ("/outage", {"mode": "slow"}),
        ("/outage", {"mode": "teapot"}),
        ("/outage", {"mode": None}),
        ("/outage", {"seconds": -1}),
        ("/outage", {"seconds": 0}),
        ("/outage", {"seconds": "soon"}),
        ("/outage", {"seconds": True}),
        ("/outage", {"role": "email"}),
        ("/outage", {"role": 3}),
        ("/outage", {"retryAfter": "later"}),
    ],
)
def test_bad_fault_control_input_is_400(
    api: Api, fake: Fake8x8, path: str, spec: dict[str, Any]
) -> None:
    response = api.http.post(fake.urls.control + path, json=spec)
    assert response.status_code == 400, response.json()
    assert set(response.json()) == {"error"}
    assert fake.faults() == {"counted": [], "rates": {}, "outages": []}


def test_outage_refusals_through_the_client(fake: Fake8x8) -> None:
    with pytest.raises(ControlError) as caught:
        fake.outage("sms", "slow")
    assert caught.value.status == 400
    assert "slow" not in str(caught.value).split("mode must be one of")[1]
    with pytest.raises(ControlError):
        fake.outage("sms", seconds=-0.5)


# ---------------------------------------------------------------------------------------------
# Webhooks


async def test_raw_webhook_with_headers(fake: Fake8x8, receiver: Receiver) -> None:
    result = await fake.aio.webhook(
        receiver.url + "/hook", {"hello": "world"}, headers={"X-Test": "1"}
    )
    assert result["status"] == 200
    assert result["response"] == {"received": True}
    assert receiver.received[0]["body"] == {"hello": "world"}
    assert receiver.received[0]["headers"]["X-Test"] == "1"
    assert receiver.received[0]["headers"]["Content-Type"] == "application/json"
    assert (await fake.aio.sent_webhooks())[0]["kind"] == "raw"


async def test_webhook_retries_are_off_by_default_and_optional(
    fake: Fake8x8, receiver: Receiver
) -> None:
    receiver.statuses = [500]
    once = await fake.aio.webhook(receiver.url, {"n": 1})
    assert once["status"] == 500
    assert len(receiver.received) == 1
    receiver.statuses = [503, 429]
    retried = await fake.aio.webhook(receiver.url, {"n": 2}, retries=[0.05, 0.05, 0.05])
    assert [attempt["status"] for attempt in retried["attempts"]] == [503, 429, 200]
    assert retried["status"] == 200


async def test_webhook_to_a_closed_port_reports_no_status(fake: Fake8x8) -> None:
    result = await fake.aio.webhook(f"http://127.0.0.1:{free_port()}/x", {}, timeout=2)
    assert result["status"] is None
    assert result["error"]


async def test_inbound_sms_shape(fake: Fake8x8, receiver: Receiver) -> None:
    result = await fake.aio.inbound_sms(
        receiver.url + "/sms", "+6581968289", "+4534735477", "Test MO message", "SubAccount-1"
    )
    assert result["status"] == 200
    body = receiver.received[0]["body"]
    assert body == result["body"]
    assert set(body) == ENVELOPE
    assert (body["namespace"], body["eventType"]) == ("SMS", "inbound_message_received")
    assert body["description"] == "SMS inbound message"
    payload = body["payload"]
    assert set(payload) == {
        "umid",
        "subAccountId",
        "timestamp",
        "source",
        "destination",
        "body",
        "encoding",
        "smsCount",
        "price",
    }
    assert is_uuid(payload["umid"])
    assert TS3.match(payload["timestamp"])
    assert payload["source"] == "+6581968289"
    assert payload["destination"] == "+4534735477"
    assert payload["body"] == "Test MO message"
    assert payload["encoding"] == "GSM7"
    assert payload["smsCount"] == 1
    assert set(payload["price"]) == {"total", "perSms", "currency"}


async def test_sms_receipt_is_filled_from_the_recorded_message(
    api: Api, fake: Fake8x8, receiver: Receiver
) -> None:
    sent = sms(clientMessageId="cm-9", source="Relay", dlrCallbackUrl=receiver.url + "/dlr")
    umid = api.post("sms", sent).json()["umid"]
    result = await fake.aio.sms_receipt(umid, "delivered")  # url: the dlrCallbackUrl
    assert result["status"] == 200
    assert receiver.received[0]["path"] == "/dlr"
    body = receiver.received[0]["body"]
    assert set(body) == ENVELOPE
    assert body["eventType"] == "outbound_message_status_changed"
    assert body["description"] == "SMS outbound message delivery receipt"
    payload = body["payload"]
    # spec §11.2 minus batchId / clientBatchId, which only batch sends carry
    assert set(payload) == {
        "umid",
        "clientMessageId",
        "subAccountId",
        "source",
        "destination",
        "status",
        "price",
        "smsCount",
    }
    assert payload["umid"] == umid
    assert payload["clientMessageId"] == "cm-9"
    assert payload["subAccountId"] == SUB
    assert payload["source"] == "Relay"
    assert payload["destination"] == "+6591234567"
    assert payload["status"]["state"] == "delivered"
    assert payload["status"]["detail"] == "delivered_to_recipient"
    assert TS2.match(payload["status"]["timestamp"])

    await fake.aio.sms_receipt(umid, "undelivered", url=receiver.url + "/other")
    failed = receiver.received[1]["body"]["payload"]["status"]
    assert set(failed) == {"state", "detail", "timestamp", "errorCode", "errorMessage"}
    assert failed["detail"] == "rejected_by_operator"


async def test_receipt_for_an_unknown_umid_is_404(fake: Fake8x8, receiver: Receiver) -> None:
    with pytest.raises(ControlError) as caught:
        await fake.aio.sms_receipt(str(uuid.uuid4()), "delivered", url=receiver.url)
    assert caught.value.status == 404
    with pytest.raises(ControlError):
        await fake.aio.sms_receipt(str(uuid.uuid4()), "lost", url=receiver.url)


@pytest.mark.parametrize("version", [2, 3])
async def test_inbound_chat_whatsapp_shape(fake: Fake8x8, receiver: Receiver, version: int) -> None:
    result = await fake.aio.inbound_chat(
        receiver.url,
        "+6591234567",
        "SubAccount-1",
        text="Yes",
        version=version,
        replyToUmid="8d1e3c2a-0000-4000-8000-000000000001",
    )
    assert result["status"] == 200
    body = receiver.received[0]["body"]
    assert set(body) == (ENVELOPE | {"version"} if version == 3 else ENVELOPE)
    assert (body["namespace"], body["eventType"]) == ("ChatApps", "inbound_message_received")
    assert body["description"] == "ChatApps inbound message"
    payload = body["payload"]
    assert set(payload) == {
        "umid",
        "subAccountId",
        "timestamp",
        "user",
        "recipient",
        "type",
        "content",
        "replyToUmid",
    }
    assert TS3.match(payload["timestamp"])
    assert payload["type"] == "Text"
    assert payload["content"] == {"text": "Yes"}
    assert set(payload["recipient"]) == {"channel", "channelId"}
    assert payload["recipient"]["channel"] == "whatsapp"
    user = payload["user"]
    assert user["msisdn"] == "+6591234567"
    if version == 2:
        assert user == {"msisdn": "+6591234567", "channelUserId": "6591234567"}
    else:
        assert body["version"] == 3
        assert re.match(r"^SG\.\d+$", user["channelUserId"])  # a WhatsApp BSUID


async def test_inbound_chat_v3_line_viber_and_buttons(fake: Fake8x8, receiver: Receiver) -> None:
    await fake.aio.inbound_chat(
        receiver.url, "Uabc123", "sub-1", text="hi", channel="line", version=3, name="Ann"
    )
    await fake.aio.inbound_chat(
        receiver.url, "+6591234567", "sub-1", text="hi", channel="viber", version=3
    )
    button = {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}}
    await fake.aio.inbound_chat(
        receiver.url, "+6591234567", "sub-1", interactive=button, payload="yes-payload"
    )
    line, viber, pressed = (item["body"]["payload"] for item in receiver.received)
    assert line["user"] == {"channelUserId": "Uabc123", "name": "Ann"}
    assert viber["user"] == {"msisdn": "+6591234567"}
    assert pressed["type"] == "Interactive"
    assert pressed["content"] == {"payload": "yes-payload", "interactive": button}


@pytest.mark.parametrize("version", [8, 9])
async def test_chat_receipt_shape(
    api: Api, fake: Fake8x8, receiver: Receiver, version: int
) -> None:
    umid = api.post("chatapps", chat(clientMessageId="cm-1")).json()["umid"]
    result = await fake.aio.chat_receipt(
        umid, "delivered", url=receiver.url, version=version, detail="delivered_to_recipient"
    )
    assert result["status"] == 200
    body = receiver.received[0]["body"]
    assert set(body) == (ENVELOPE | {"version"} if version == 9 else ENVELOPE)
    assert body["eventType"] == "outbound_message_status_changed"
    payload = body["payload"]
    expected = {"umid", "clientMessageId", "subAccountId", "channel", "user", "status"}
    assert set(payload) == (expected | {"outboundContent"} if version == 9 else expected)
    assert payload["umid"] == umid
    assert payload["clientMessageId"] == "cm-1"
    assert payload["subAccountId"] == SUB
    assert payload["channel"] == "whatsapp"
    assert payload["status"]["state"] == "delivered"
    assert TS2.match(payload["status"]["timestamp"])
    if version == 8:
        assert payload["user"] == {"msisdn": "+6591234567", "channelUserId": "6591234567"}
    else:
        assert body["version"] == 9
        assert payload["user"] == {"msisdn": "+6591234567"}
        assert payload["outboundContent"]["content"] == {"text": "Hi"}


async def test_dtmf_goes_to_the_recorded_callback_url(
    api: Api, fake: Fake8x8, receiver: Receiver
) -> None:
    body = legacy_voice(dtmfCallbackUrl=receiver.url + "/dtmf")
    uid = api.post("voice", body).json()["uid"]
    result = await fake.aio.dtmf("12345", client_request_id="req-1")
    assert result["status"] == 200
    assert receiver.received[0]["path"] == "/dtmf"
    callback = receiver.received[0]["body"]
    assert set(callback) == {"uid", "status", "destination", "clientRequestId", "actionDetails"}
    assert callback["uid"] == uid
    assert callback["status"]["code"] == "DTMF"
    assert TS3.match(callback["status"]["timestamp"])
    assert callback["destination"] == "+6591234567"
    assert callback["clientRequestId"] == "req-1"
    assert callback["actionDetails"] == {"dtmf": "12345"}
    await fake.aio.dtmf("9", uid=uid)  # by uid as well
    assert receiver.received[1]["body"]["actionDetails"] == {"dtmf": "9"}


async def test_dtmf_for_an_unknown_call_needs_url_and_destination(
    fake: Fake8x8, receiver: Receiver
) -> None:
    with pytest.raises(ControlError) as caught:
        await fake.aio.dtmf("1", client_request_id="never-sent")
    assert caught.value.status == 404
    result = await fake.aio.dtmf("1", uid="U-1", url=receiver.url, destination="+6591234567")
    assert result["body"]["uid"] == "U-1"
    assert "clientRequestId" not in result["body"]


async def test_voice_call_action_and_session_summary(
    api: Api, fake: Fake8x8, receiver: Receiver
) -> None:
    session_id = api.post("voice", current_voice()).json()["sessionId"]
    result = await fake.aio.voice_call_action(
        receiver.url, session_id, "7", eventId="e-1", clientActionId="ivr1"
    )
    assert result["status"] == 200
    body = receiver.received[0]["body"]
    assert set(body) == ENVELOPE
    assert (body["namespace"], body["eventType"]) == ("VOICE", "CALL_ACTION")
    payload = body["payload"]
    assert set(payload) == {
        "eventId",
        "callId",
        "sessionId",
        "subAccountId",
        "callStatus",
        "callDirection",
        "callType",
        "source",
        "destination",
        "sourceFormat",
        "destinationFormat",
        "sourceCountryCode",
        "destinationCountryCode",
        "sourceRefId",
        "destinationRefId",
        "callDuration",
        "eventData",
        "sipCode",
        "timestamp",
        "clientActionId",
    }
    assert payload["eventId"] == "e-1"
    assert payload["sessionId"] == session_id
    assert payload["subAccountId"] == SUB
    assert payload["callStatus"] == "ACTION_COMPLETED"
    assert payload["destination"] == "+6590000000"
    assert payload["destinationCountryCode"] == "SG"
    assert payload["eventData"] == {"dtmf": "7"}
    assert payload["clientActionId"] == "ivr1"
    assert TS3.match(payload["timestamp"])

    await fake.aio.session_summary(receiver.url, session_id, "COMPLETED")
    summary = receiver.received[1]["body"]
    assert summary["eventType"] == "SESSION_SUMMARY"
    assert {"sessionId", "subAccountId", "sessionStatus", "startTime", "endTime"} <= set(
        summary["payload"]
    )
