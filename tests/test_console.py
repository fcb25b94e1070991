"""The web console over HTTP (in-process, both databases): sign-in and sessions, CSRF, the
security headers, escaping of hostile data, account isolation, and every page's happy and
unhappy paths. The real-browser journey is in tests/browser/."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relayflow.api.context import AppContext
from relayflow.console.security import CONTENT_SECURITY_POLICY
from tests.support.console import Console
from tests.support.tenants import Tenant

GALLERY = Path(__file__).parents[1] / "src/relayflow/console/static/gallery"
XSS = "<img src=x onerror=alert(1)>"
XSS_ID = '"><script>alert(1)</script>'


def gallery(name: str) -> str:
    return (GALLERY / f"{name}.json").read_text()


async def waiting_survey(console: Console, tenant: Tenant, context: AppContext) -> tuple[str, str]:
    """Signed in, with the survey template saved and one instance waiting for its reply:
    the definition's console URL and the instance's id."""
    await console.sign_in(tenant.api_key)
    location = await console.create(gallery("survey"))
    [workflow] = (
        await console.script(
            "/console/sandbox/send", {"kind": "http", "body": {"phone": "+6591234567"}}
        )
    )["started"]
    await context.worker.run_until_idle()
    return location, workflow


class _Scripts(HTMLParser):
    """Collects <script> tags and inline event-handler attributes of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.handlers: list[str] = []
        self.styles: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))
        self.handlers += [name for name, _ in attrs if name.startswith("on")]
        self.styles += [name for name, _ in attrs if name == "style"]


def executable_scripts(html: str) -> _Scripts:
    parser = _Scripts()
    parser.feed(html)
    return parser


# --- sign-in and sessions -------------------------------------------------------------------


async def test_console_root_and_pages_need_a_session(console: Console) -> None:
    root = await console.get("/console", expect=303)
    assert root.headers["location"] == "/console/definitions"
    for path in ("/console/definitions", "/console/sandbox", "/console/definitions/new"):
        response = await console.get(path, expect=303)
        assert response.headers["location"] == "/console/login"
    # Scripts get an 8x8 error body instead of a redirect.
    refused = await console.client.post("/console/validate", json={"text": "{}"})
    assert refused.status_code == 401
    assert set(refused.json()) == {"code", "message", "errorId", "timestamp"}
    assert refused.json()["code"] == 1200


async def test_sign_in_sets_a_strict_session_cookie(console: Console, tenant: Tenant) -> None:
    response = await console.sign_in(tenant.api_key)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("rf_console=")
    for flag in ("HttpOnly", "SameSite=strict", "Path=/console", "Max-Age="):
        assert flag.lower() in cookie.lower(), cookie
    assert "secure" not in cookie.lower()  # plain http here; https adds Secure
    assert tenant.api_key not in cookie
    assert tenant.api_key not in response.headers["location"]
    page = await console.get("/console/definitions")
    assert tenant.api_key not in page.text
    assert tenant.account_id in page.text


async def test_sign_in_over_https_marks_the_cookie_secure(
    context: AppContext, tenant: Tenant
) -> None:
    from relayflow.api.app import create_app

    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="https://relayflow.test") as http:
        response = await Console(http).sign_in(tenant.api_key)
    assert "secure" in response.headers["set-cookie"].lower()


@pytest.mark.parametrize("key", ["", "nonsense", "rf_abc_def", "x" * 5000])
async def test_a_bad_key_is_refused_without_saying_why(console: Console, key: str) -> None:
    response = await console.sign_in(key, expect=401)
    cookies = response.headers.get_list("set-cookie")
    assert not any(cookie.startswith("rf_console=") for cookie in cookies), cookies
    assert "not valid" in response.text or "Type your API key" in response.text
    await console.get("/console/definitions", expect=303)


async def test_sign_in_needs_the_forms_token(console: Console, tenant: Tenant) -> None:
    """Login CSRF: a page elsewhere cannot sign a browser into an attacker's account."""
    response = await console.client.post(
        "/console/login", data={"signin": "forged", "apiKey": tenant.api_key}
    )
    assert response.status_code == 403
    await console.get("/console/definitions", expect=303)


async def test_sign_out_ends_the_session_for_good(console: Console, tenant: Tenant) -> None:
    await console.sign_in(tenant.api_key)
    stolen = console.client.cookies.get("rf_console")
    assert stolen
    await console.post("/console/logout", {})
    await console.get("/console/definitions", expect=303)
    console.client.cookies.set("rf_console", stolen, path="/console")  # replaying the cookie
    await console.get("/console/definitions", expect=303)


async def test_revoking_the_key_ends_its_sessions(
    console: Console, tenant: Tenant, context: AppContext
) -> None:
    await console.sign_in(tenant.api_key)
    await console.get("/console/definitions")
    [key] = await context.accounts.list_keys(tenant.account_id)
    await context.accounts.revoke_key(key.id)
    await console.get("/console/definitions", expect=303)


async def test_an_expired_session_is_gone(
    console: Console, tenant: Tenant, context: AppContext
) -> None:
    await console.sign_in(tenant.api_key)
    context.clock.advance(13 * 3600 * 1000)  # type: ignore[attr-defined]
    await console.get("/console/definitions", expect=303)


async def test_state_changes_need_the_csrf_token(console: Console, tenant: Tenant) -> None:
    await console.sign_in(tenant.api_key)
    location = await console.create(gallery("sms-auto-reply"))
    good = console.csrf
    for token in ("", "forged", good[:-1]):
        console.csrf = token
        await console.post(f"{location}/delete", {}, expect=403)
        await console.post("/console/definitions/new", {"body": gallery("survey")}, expect=403)
        await console.script("/console/validate", {"text": "{}"}, expect=403)
        await console.script("/console/sandbox/send", {"kind": "http", "body": {}}, expect=403)
    console.csrf = good
    await console.get(location)  # still there
    listing = await console.get("/console/definitions")
    assert listing.text.count("/console/definitions/") >= 1
    assert "Survey" not in listing.text


# --- headers and hostile data ----------------------------------------------------------------


async def test_every_response_carries_the_security_headers(
    console: Console, tenant: Tenant
) -> None:
    await console.sign_in(tenant.api_key)
    location = await console.create(gallery("survey"))
    for path in (
        "/console/login",
        "/console/definitions",
        location,
        f"{location}/versions",
        f"{location}/workflows",
        "/console/sandbox",
        "/console/static/console.js",
        "/console/nowhere",
    ):
        response = await console.client.get(path)
        headers = response.headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
        assert "'unsafe-eval'" not in CONTENT_SECURITY_POLICY
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        if "/static/" not in path:
            assert headers["cache-control"] == "no-store"
            scripts = executable_scripts(response.text)
            for script in scripts.scripts:  # only files from the console itself, or data
                assert (
                    script.get("src", "").startswith("/console/static/")
                    or script.get("type") == "application/json"
                ), (path, script)
            assert scripts.handlers == [], path
            assert scripts.styles == [], path


async def test_hostile_messages_and_data_are_shown_as_text(
    console: Console, tenant: Tenant, context: AppContext
) -> None:
    await console.sign_in(tenant.api_key)
    body = gallery("survey").replace('"ask"', '"ask' + XSS_ID.replace('"', '\\"') + '"')
    body = body.replace('"nextStepId": "answer"', '"nextStepId": "answer"')
    location = await console.create(gallery("survey"))
    started = await console.script(
        "/console/sandbox/send",
        {"kind": "http", "body": {"phone": "+6591234567", "note": XSS, "n": XSS_ID}},
    )
    await context.worker.run_until_idle()
    answered = await console.script(
        "/console/sandbox/send",
        {"kind": "sms", "from": "+6591234567", "to": "+6580000000", "text": XSS},
    )
    assert answered["resumed"] == started["started"]
    await context.worker.run_until_idle()
    [workflow] = started["started"]
    page = await console.get(f"{location}/workflows/{workflow}")
    assert XSS not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert "<script>alert(1)</script>" not in page.text
    scripts = executable_scripts(page.text)
    assert scripts.handlers == []
    assert all(s.get("src") or s.get("type") == "application/json" for s in scripts.scripts)
    # The outbox feed is JSON for the page's script, which sets text, never HTML.
    outbox = await console.get("/console/sandbox/outbox")
    assert outbox.headers["content-type"].startswith("application/json")
    # A definition whose ids and texts are hostile renders escaped too.
    hostile = await console.create(body)
    shown = await console.get(hostile)
    assert "<script>alert(1)</script>" not in shown.text
    assert executable_scripts(shown.text).handlers == []


# --- isolation -------------------------------------------------------------------------------


async def test_another_accounts_pages_show_none_of_its_data(
    console: Console,
    tenant: Tenant,
    other_tenant: Tenant,
    context: AppContext,
    client: httpx.AsyncClient,
) -> None:
    await console.sign_in(tenant.api_key)
    location = await console.create(gallery("survey"))
    started = await console.script(
        "/console/sandbox/send", {"kind": "http", "body": {"phone": "+6591234567"}}
    )
    await context.worker.run_until_idle()
    [workflow] = started["started"]
    secret_page = await console.get(f"{location}/workflows/{workflow}")
    assert "How did we do" in secret_page.text

    intruder = Console(httpx.AsyncClient(transport=client._transport, base_url=client.base_url))
    async with intruder.client:
        await intruder.sign_in(other_tenant.api_key)
        for path in (
            location,
            f"{location}/versions",
            f"{location}/workflows",
            f"{location}/workflows/{workflow}",
            f"/console/workflows/{workflow}",
        ):
            response = await intruder.client.get(path)
            assert response.status_code == 404, (path, response.status_code)
            assert "How did we do" not in response.text
            assert "Survey" not in response.text
        listing = await intruder.get("/console/definitions")
        assert "Survey" not in listing.text
        outbox = await intruder.get("/console/sandbox/outbox")
        assert outbox.json() == []
        for command in ("suspend", "terminate"):
            await intruder.post(f"{location}/workflows/{workflow}/{command}", {}, expect=404)
        await intruder.post(f"{location}/delete", {}, expect=404)
    await console.get(f"{location}/workflows/{workflow}")  # untouched


# --- pages -----------------------------------------------------------------------------------


async def test_definitions_list_counts_instances_by_status(
    console: Console, tenant: Tenant, context: AppContext
) -> None:
    await console.sign_in(tenant.api_key)
    await console.get("/console/definitions")
    location = await console.create(gallery("survey"))
    for n in range(3):
        await console.script(
            "/console/sandbox/send", {"kind": "http", "body": {"phone": f"+659123456{n}"}}
        )
    await context.worker.run_until_idle()
    page = await console.get("/console/definitions")
    assert "Survey with a reminder" in page.text
    assert f'href="{location}/workflows?status=Runnable&amp;version=all">3</a>' in page.text


async def test_live_validation_points_at_lines(console: Console, tenant: Tenant) -> None:
    await console.sign_in(tenant.api_key)
    broken = gallery("survey").replace('"text": "Thanks', '"txt": "Thanks')
    answer = await console.script("/console/validate", {"text": broken})
    assert answer["valid"] is False
    [problem] = answer["errors"]
    assert problem["path"] == "definition.steps[2].inputs.text"
    line = broken.splitlines()[problem["line"] - 1]
    assert '"inputs"' in line  # the object that lacks the input
    fine = await console.script("/console/validate", {"text": gallery("survey")})
    assert fine == {"valid": True, "errors": []}
    not_json = await console.script("/console/validate", {"text": '{"trigger": '})
    assert not_json["valid"] is False
    assert not_json["errors"][0]["line"] == 1
    assert (await console.script("/console/validate", {"text": "[1]"}))["valid"] is False
    await console.script("/console/validate", {"nope": 1}, expect=400)


async def test_create_edit_enable_disable_diff_delete(console: Console, tenant: Tenant) -> None:
    await console.sign_in(tenant.api_key)
    invalid = await console.post(
        "/console/definitions/new", {"body": '{"trigger": "inbound_sms"}'}, expect=400
    )
    assert "definition.name" in invalid.text
    await console.post("/console/definitions/new", {"body": "not json"}, expect=400)
    location = await console.create(gallery("sms-auto-reply"))
    page = await console.get(location)
    assert 'class="flow-graph"' in page.text
    assert "Thanks for your message" in page.text
    edited = gallery("sms-auto-reply").replace("Thanks for your message", "Hello again")
    await console.post(f"{location}/save", {"body": edited})
    await console.post(f"{location}/save", {"body": "{}"}, expect=400)
    await console.post(f"{location}/status", {"status": "disabled"})
    await console.post(f"{location}/status", {"status": "paused"}, expect=400)
    versions = await console.get(f"{location}/versions")
    assert versions.text.count('<span class="status status-') >= 3
    diff = await console.get(f"{location}/versions", params={"a": "1", "b": "2"})
    assert '<span class="diff-del">-' in diff.text
    assert "Hello again" in diff.text
    old = await console.get(location, params={"version": "1"})
    assert "Thanks for your message" in old.text
    await console.get(location, params={"version": "99"}, expect=404)
    await console.get(f"{location}/versions", params={"a": "7"}, expect=400)
    await console.post(f"{location}/delete", {})
    await console.get(location, expect=404)


async def test_instance_page_timeline_filters_and_commands(
    console: Console, tenant: Tenant, context: AppContext
) -> None:
    await console.sign_in(tenant.api_key)
    location = await console.create(gallery("survey"))
    started = []
    for n in range(2):
        answer = await console.script(
            "/console/sandbox/send", {"kind": "http", "body": {"phone": f"+65912345{n:02d}"}}
        )
        started += answer["started"]
    await context.worker.run_until_idle()
    first, second = started
    page = await console.get(f"{location}/workflows/{first}")
    text = page.text
    assert "How did we do?" in text  # the SMS sent, with its request body
    assert "Step executions (2)" in text
    assert 'data-live="' in text
    assert "step_completed" in text
    assert '<g class="count"' in text  # the graph counts the steps the instance ran

    await console.post(f"{location}/workflows/{first}/suspend", {})
    assert "Suspended" in (await console.get(f"{location}/workflows/{first}")).text
    await console.post(f"{location}/workflows/{first}/suspend", {}, expect=400)
    await console.post(f"{location}/workflows/{first}/resume", {})
    await console.post(f"{location}/workflows/{second}/terminate", {})
    terminated = await console.get(f"{location}/workflows/{second}", params={"failed": "1"})
    assert "instance_terminated" in terminated.text
    assert "step_started" not in terminated.text
    await console.post(f"{location}/workflows/{second}/explode", {}, expect=404)

    listed = await console.get(f"{location}/workflows", params={"status": "Terminated"})
    assert second in listed.text
    assert first not in listed.text
    by_contact = await console.get(f"{location}/workflows", params={"contact": "+65 9123 4501"})
    assert second in by_contact.text
    assert first not in by_contact.text
    for bad in (
        {"status": "Sleeping"},
        {"version": "x"},
        {"startTimeFrom": "yesterday"},
        {"offset": "-1"},
    ):
        await console.get(f"{location}/workflows", params=bad, expect=400)
    found = await console.get(f"/console/workflows/{first}", expect=303)
    assert found.headers["location"] == f"{location}/workflows/{first}"
    await console.get("/console/workflows/not-an-id", expect=400)


async def test_a_long_instance_is_paged(
    console: Console, tenant: Tenant, context: AppContext
) -> None:
    steps = [
        {
            "id": "loop",
            "stepType": "Wait",
            "inputs": {"duration": "0"},
            "outputs": {"n": "{{(data.n || 0) + 1}}"},
            "selectNextStep": {"loop": "{{data.n < 250}}"},
        }
    ]
    body = (
        '{"trigger": "http_request", "status": "enabled", "definition": {"name": "loop", "steps": '
        + __import__("json").dumps(steps)
        + "}}"
    )
    await console.sign_in(tenant.api_key)
    location = await console.create(body)
    [workflow] = (await console.script("/console/sandbox/send", {"kind": "http", "body": {}}))[
        "started"
    ]
    await context.worker.run_until_idle()
    page = await console.get(f"{location}/workflows/{workflow}")
    assert "Step executions (250)" in page.text
    assert page.text.count('class="log log-') == 100
    assert "Later steps" in page.text
    later = await console.get(f"{location}/workflows/{workflow}", params={"logs": "200"})
    assert later.text.count('class="log log-') == 50


async def test_live_updates_stream_changes(
    console: Console, tenant: Tenant, context: AppContext
) -> None:
    location, workflow = await waiting_survey(console, tenant, context)
    await console.post(f"{location}/workflows/{workflow}/terminate", {})
    async with console.client.stream("GET", f"{location}/workflows/{workflow}/live") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        seen = ""
        async for chunk in stream.aiter_text():
            seen += chunk
            if "event: end" in seen:
                break
    assert "event: end" in seen


async def test_simulator_send_refuses_bad_input(console: Console, tenant: Tenant) -> None:
    await console.sign_in(tenant.api_key)
    for body in (
        {"kind": "fax"},
        {"kind": "sms", "from": "", "to": "+6580000000", "text": "hi"},
        {"kind": "chat", "channel": "whatsapp", "from": "+659"},
        {"kind": "dtmf", "digits": "12"},
        {"kind": "dtmf", "clientRequestId": "x", "digits": "<b>"},
        {"kind": "http", "body": [1, 2]},
        {"kind": "http", "body": {}, "subAccountId": 5},
        [1, 2, 3],
    ):
        answer = await console.script("/console/sandbox/send", body, expect=400)
        assert set(answer) == {"code", "message", "errorId", "timestamp"}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(
        [
            "/console/definitions/{}",
            "/console/definitions/{}/versions",
            "/console/definitions/{}/workflows",
            "/console/definitions/x/workflows/{}",
            "/console/workflows/{}",
        ]
    ),
    junk=st.text(min_size=1, max_size=60).filter(
        lambda s: "/" not in s and "?" not in s and "#" not in s
    ),
    query=st.dictionaries(
        st.sampled_from(
            ["version", "a", "b", "status", "offset", "logs", "events", "startTimeFrom", "contact"]
        ),
        st.text(max_size=30),
        max_size=3,
    ),
)
async def test_malformed_urls_never_500(
    console: Console, tenant: Tenant, path: str, junk: str, query: dict[str, str]
) -> None:
    if not console.csrf:
        await console.sign_in(tenant.api_key)
    response = await console.client.get(path.format(quote(junk, safe="")), params=query)
    assert response.status_code < 500, (path, junk, query, response.text[:300])


@pytest.mark.slow
def test_the_built_wheel_ships_every_console_asset(tmp_path: Path) -> None:
    """A plain `pip install` of a checkout must serve a working console: every template and
    static file of the source tree is in the wheel (package data is easy to forget)."""
    root = Path(__file__).parents[1]
    # Built from a copy: a build/ folder left in the checkout would hide what setuptools omits.
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, checkout / name)
    shutil.copytree(
        root / "src", checkout / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(checkout)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = wheels.glob("relayflow-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    console = root / "src/relayflow/console"
    assets = [
        path.relative_to(root / "src").as_posix()
        for folder in ("templates", "static")
        for path in (console / folder).rglob("*")
        if path.is_file()
    ]
    assert len(assets) > 10
    missing = [asset for asset in assets if asset not in shipped]
    assert missing == [], f"not in the wheel: {missing}"


async def test_skipping_a_timeout_instead_of_waiting_for_it(
    console: Console, tenant: Tenant, context: AppContext
) -> None:
    """The survey waits a day for a reply; "Skip waits" times the wait out now, so the
    reminder path runs (RapidPro's most asked-for simulator feature)."""
    location, workflow = await waiting_survey(console, tenant, context)
    page = await console.get(f"{location}/workflows/{workflow}")
    assert 'id="skip-waits"' in page.text
    await console.post(f"{location}/workflows/{workflow}/skip-waits", {})
    await context.worker.run_until_idle()
    done = await console.get(f"{location}/workflows/{workflow}")
    assert '<span class="status status-complete" id="instance-status">Complete</span>' in done.text
    assert "A gentle reminder" in done.text
    assert "waits_skipped" in done.text
    assert 'id="skip-waits"' not in done.text
    await console.post(f"{location}/workflows/{workflow}/skip-waits", {}, expect=400)


async def test_a_live_stream_catches_up_and_ends_when_the_server_stops(
    console: Console, tenant: Tenant, context: AppContext
) -> None:
    location, workflow = await waiting_survey(console, tenant, context)
    live = f"{location}/workflows/{workflow}/live"
    # The server is stopping: each stream ends after its first look ("again": the page will
    # reconnect) instead of holding the stop up. (httpx's ASGI transport hands the body over
    # once the stream has ended, so the stream must end for this test to see anything.)
    context.stopping.set()
    caught_up = (await console.get(live, params={"seen": "Runnable:1"})).text
    # A page that saw an older state (it reconnects after a pause) is told at once.
    assert caught_up.index("event: change") < caught_up.index("event: again")
    assert caught_up.count(": keep-alive") == 1
    current = (await console.get(live)).text
    assert "event: change" not in current
    assert "event: again" in current
    assert current.count(": keep-alive") == 1


async def test_the_virtual_time_simulator_fast_forwards_and_exports_a_test(
    console: Console, tenant: Tenant, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from relayflow.cli import app

    await console.sign_in(tenant.api_key)
    location = await console.create(gallery("survey"))
    definition_id = location.rsplit("/", 1)[1]
    await console.script("/console/sandbox/virtual/send", {"kind": "advance"}, expect=404)
    started = await console.script(
        "/console/sandbox/virtual/start", {"definitionId": definition_id}
    )
    assert started["new"] == []
    asked = await console.script(
        "/console/sandbox/virtual/send", {"kind": "http", "body": {"phone": "+6591234567"}}
    )
    assert [b["text"] for b in asked["new"]] == ["How did we do? Reply 1 (great) to 5 (poor)."]
    later = await console.script(
        "/console/sandbox/virtual/send", {"kind": "advance", "by": "1.00:00:00"}
    )
    assert [b["text"] for b in later["new"]] == [
        "A gentle reminder: we would love your feedback (1-5)."
    ]
    assert later["clock"] > asked["clock"]
    assert [i["status"] for i in later["instances"]] == ["Complete"]
    # Nothing reached the account's real instances or outbox.
    assert (await console.get("/console/sandbox/outbox")).json() == []
    assert "Step executions" not in (await console.get(f"{location}/workflows")).text

    exported = await console.get("/console/sandbox/virtual/export")
    assert "attachment" in exported.headers["content-disposition"]
    file = tmp_path / "survey.flowtest.json"
    file.write_text(exported.text)
    result = await asyncio.to_thread(CliRunner().invoke, app, ["test", str(file)])
    assert result.exit_code == 0, result.output
    assert "1 passed, 0 failed" in result.output


async def test_the_virtual_time_simulator_refuses_bad_input(
    console: Console, tenant: Tenant, other_tenant: Tenant, context: AppContext
) -> None:
    other = await context.definitions.create(other_tenant.account_id, json.loads(gallery("survey")))
    await console.sign_in(tenant.api_key)
    location = await console.create(gallery("survey"))
    definition_id = location.rsplit("/", 1)[1]
    await console.script("/console/sandbox/virtual/start", {"definitionId": other.id}, expect=404)
    bad_mocks = {"definitionId": definition_id, "mocks": {"http": [{"respond": "x"}]}}
    refused = await console.script("/console/sandbox/virtual/start", bad_mocks, expect=400)
    assert "mocks.http[0]" in refused["message"]
    await console.script("/console/sandbox/virtual/start", {"definitionId": definition_id})
    for body in (
        {"kind": "advance", "by": "1 day"},
        {"kind": "advance"},
        {"kind": "teleport"},
        {"kind": "dtmf", "digits": "1"},  # no say&capture call yet
        {"kind": "sms", "from": "", "text": "x", "to": "+6580000000"},
    ):
        answer = await console.script("/console/sandbox/virtual/send", body, expect=400)
        assert set(answer) == {"code", "message", "errorId", "timestamp"}


async def test_all_versions_are_listed_newest_first_and_paged(
    console: Console, tenant: Tenant, context: AppContext
) -> None:
    await console.sign_in(tenant.api_key)
    location = await console.create(gallery("survey"))
    started: list[str] = []
    for n in range(3):
        if n == 1:
            await console.post(f"{location}/save", {"body": gallery("survey")})  # version 2
        context.clock.advance(1000)  # type: ignore[attr-defined]
        answer = await console.script(
            "/console/sandbox/send", {"kind": "http", "body": {"phone": f"+659123456{n}"}}
        )
        started += answer["started"]
    every = await console.get(f"{location}/workflows", params={"version": "all"})
    found = re.findall(r'/workflows/([0-9a-f]{24})"', every.text)
    assert found == list(reversed(started))
    latest = await console.get(f"{location}/workflows")
    assert re.findall(r'/workflows/([0-9a-f]{24})"', latest.text) == list(reversed(started[1:]))
    deeper = await console.get(f"{location}/workflows", params={"version": "all", "offset": "2"})
    assert re.findall(r'/workflows/([0-9a-f]{24})"', deeper.text) == [started[0]]


async def test_older_pages_follow_a_keyset_cursor(
    console: Console, tenant: Tenant, context: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deep pages stay cheap: "Older" carries where the page ended (started time and id), not
    an offset every row before it must be walked for."""
    from relayflow.console import pages

    monkeypatch.setattr(pages, "INSTANCE_PAGE", 2)
    await console.sign_in(tenant.api_key)
    location = await console.create(gallery("survey"))
    started: list[str] = []
    for n in range(5):
        context.clock.advance(1000 if n % 2 else 0)  # type: ignore[attr-defined]  # ties too
        answer = await console.script(
            "/console/sandbox/send", {"kind": "http", "body": {"phone": f"+659123456{n}"}}
        )
        started += answer["started"]
    newest_first = sorted(
        [(i["startedAt"], i["workflowId"]) for i in await _instances(console, location)],
        reverse=True,
    )
    seen: list[str] = []
    page = await console.get(f"{location}/workflows")
    for _ in range(10):  # 5 instances, 2 a page: 3 pages
        seen += re.findall(r'/workflows/([0-9a-f]{24})"', page.text)
        older = re.search(r'href="\?([^"]*)" id="older"', page.text)
        if older is None:
            break
        assert "offset" not in older.group(1)
        page = await console.get(f"{location}/workflows?{older.group(1).replace('&amp;', '&')}")
        assert 'id="newest"' in page.text
    assert seen == [workflow for _, workflow in newest_first]
    assert sorted(seen) == sorted(started)
    for bad in ("x", "12.nothex", "1." + "a" * 23, "9" * 17 + "." + "a" * 24):
        await console.get(f"{location}/workflows", params={"before": bad}, expect=400)


async def _instances(console: Console, location: str) -> list[dict[str, Any]]:
    definition_id = location.rsplit("/", 1)[1]
    response = await console.client.get(
        f"/api/v1/accounts/acme/definitions/{definition_id}/workflows",
        headers={"Authorization": f"Bearer {console.api_key}"},
    )
    found: list[dict[str, Any]] = response.json()
    return found
