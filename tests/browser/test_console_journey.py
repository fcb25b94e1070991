"""The console's end-to-end journey in headless Chromium against a real `relayflow serve`, at a
desktop and a phone viewport: sign in; write a flow in the editor, see a validation error at its
path, fix it and save; chat with it in the simulator; watch its instance complete live; suspend
and resume another instance; be refused on another account's pages. Every page visited is
screenshotted (tests/browser/screenshots/), and the browser console must stay free of errors.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import RelayflowServer, Screenshot, expect_refusal, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LIVE_TIMEOUT_MS = 20_000
SURVEY = Path(__file__).parents[2] / "src/relayflow/console/static/gallery/survey.json"


def definition_text(name: str, sub_account: str, *, with_error: bool = False) -> str:
    """An auto-reply that waits a few seconds before saying goodbye (so it can be watched)."""

    def sms(step_id: str, text: str) -> dict[str, object]:
        inputs = {"subAccountId": sub_account, "destination": "{{data.payload.source}}"}
        if not (with_error and step_id == "reply"):
            inputs["text"] = text
        return {"id": step_id, "stepType": "SMS", "inputs": inputs}

    steps = [
        {**sms("reply", "Thanks for '{{data.payload.body}}'"), "nextStepId": "pause"},
        {
            "id": "pause",
            "stepType": "Wait",
            "inputs": {"duration": "00:00:04"},
            "nextStepId": "bye",
        },
        sms("bye", "Bye!"),
    ]
    body = {
        "trigger": "inbound_sms",
        "status": "enabled",
        "subAccountId": sub_account,
        "definition": {"name": name, "steps": steps},
    }
    return json.dumps(body, indent=2)


def test_the_console_journey(
    relayflow_server: RelayflowServer,
    page: Page,
    screenshot: Screenshot,
    request: pytest.FixtureRequest,
) -> None:
    server = relayflow_server
    viewport = request.node.callspec.id.split("-")[-1]
    sub_account = f"journey_{viewport}"
    sender = "+659100000" + ("1" if viewport == "desktop" else "2")
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmations of commands

    # 1. Sign in.
    sign_in(page, server, server.acme_key, screenshot)
    screenshot(page, "console-definitions")

    # 2. Write a flow, see the validation error at its path, fix it, save.
    page.locator("#new-definition").click()
    page.wait_for_url(re.compile(r"/console/definitions/new$"))
    editor = page.locator("#definition-text")
    editor.fill(definition_text(f"Journey {viewport}", sub_account, with_error=True))
    problem = page.locator("#problems li").first
    expect(problem).to_contain_text("definition.steps[0].inputs.text")
    expect(page.locator(".editor-highlight .line.bad")).not_to_have_count(0)
    problem.get_by_role("button", name=re.compile(r"line \d+")).click()
    expect(editor).to_be_focused()
    screenshot(page, "console-editor-error")
    editor.fill(definition_text(f"Journey {viewport}", sub_account))
    expect(page.locator("#validation")).to_have_text("Valid.")
    page.locator("#save").click()
    page.wait_for_url(re.compile(r"/console/definitions/[0-9a-f-]{36}$"))
    definition_url = page.url
    expect(page.locator("h1")).to_have_text(f"Journey {viewport}")
    expect(page.locator("svg.flow-graph .node")).to_have_count(3)
    page.locator('svg.flow-graph .node[data-step="pause"]').click()
    expect(page.locator("#node-detail")).to_contain_text('"duration": "00:00:04"')
    screenshot(page, "console-definition")
    page.goto(f"{definition_url}/versions")
    screenshot(page, "console-versions")

    # 3. Chat with it in the simulator.
    page.goto(f"{server.base_url}/console/sandbox")
    page.locator("#sim-kind").select_option("sms")
    page.locator("#sim-from").fill(sender)
    page.locator("#sim-sub").fill(sub_account)
    page.locator("#sim-text").fill("hello <b>there</b>")
    page.locator("#sim-send").click()
    reply = page.locator(".bubble.them", has_text="Thanks for 'hello <b>there</b>'")
    expect(reply).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    expect(page.locator(".bubble.me")).to_contain_text("hello <b>there</b>")  # as text
    screenshot(page, "console-sandbox")

    # 4. Open its instance (from the reply's bubble) and watch it complete live.
    navigations: list[str] = []
    reply.locator("a").click()
    page.wait_for_url(re.compile(r"/workflows/[0-9a-f]{24}(#.*)?$"))
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    status = page.locator("#instance-status")
    expect(status).to_have_text("Runnable")
    screenshot(page, "console-instance-running")
    expect(status).to_have_text("Complete", timeout=LIVE_TIMEOUT_MS)
    assert navigations == [], f"the page reloaded instead of updating live: {navigations}"
    expect(page.locator(".timeline .log")).to_have_count(3)
    expect(page.locator('svg.flow-graph .node.executed[data-step="bye"]')).to_have_count(1)
    screenshot(page, "console-instance")

    # 5. Suspend and resume another instance.
    other = httpx.post(
        f"{server.base_url}/api/v1/accounts/acme/sandbox/inbound/sms",
        headers={"Authorization": f"Bearer {server.acme_key}"},
        json={"from": sender, "to": "+6580000000", "text": "again", "subAccountId": sub_account},
        timeout=10,
    )
    assert other.status_code == 200, other.text
    [workflow] = other.json()["started"]
    page.goto(f"{definition_url}/workflows?status=Runnable")
    screenshot(page, "console-workflows")
    page.locator(f'a[href$="/workflows/{workflow}"]').click()
    page.wait_for_url(re.compile(rf"/workflows/{workflow}$"))
    page.locator("#suspend").click()
    expect(page.locator("#instance-status")).to_have_text("Suspended")
    screenshot(page, "console-instance-suspended")
    page.locator("#resume").click()
    expect(page.locator("#instance-status")).to_have_text(re.compile("Runnable|Complete"))
    screenshot(page, "console-instance-resumed")

    # 6. Another account sees none of it.
    page.locator("#sign-out").click()
    page.wait_for_url(re.compile(r"/console/login$"))
    page.locator("#api-key").fill(server.globex_key)
    page.locator("#sign-in").click()
    page.wait_for_url(lambda url: urlsplit(url).path == "/console/definitions")
    expect(page.locator("body")).not_to_contain_text(f"Journey {viewport}")
    expect_refusal(page, definition_url)
    response = page.goto(definition_url)
    assert response is not None
    assert response.status == 404
    expect(page.locator("body")).not_to_contain_text(f"Journey {viewport}")
    screenshot(page, "console-refused")


def test_the_console_works_with_the_keyboard_alone(
    relayflow_server: RelayflowServer, page: Page, screenshot: Screenshot
) -> None:
    page.goto(f"{relayflow_server.base_url}/console/login")
    screenshot(page, "console-login")
    expect(page.locator("#api-key")).to_be_focused()  # autofocus
    page.keyboard.type(relayflow_server.acme_key)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: urlsplit(url).path == "/console/definitions")
    screenshot(page, "console-definitions")
    # Skip link, then the main navigation, reached by Tab and followed by Enter.
    for _ in range(10):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement && document.activeElement.textContent")
        if focused and focused.strip() == "Sandbox":
            break
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: urlsplit(url).path == "/console/sandbox")
    expect(page.locator("h1")).to_have_text("Sandbox")
    screenshot(page, "console-sandbox")


def test_the_virtual_time_simulator(
    relayflow_server: RelayflowServer,
    page: Page,
    screenshot: Screenshot,
    request: pytest.FixtureRequest,
) -> None:
    """Fast-forward a day instead of waiting for it, then export the conversation as a test."""
    server = relayflow_server
    viewport = request.node.callspec.id.split("-")[-1]
    survey = json.loads(SURVEY.read_text())
    survey["definition"]["name"] = f"Virtual survey {viewport}"
    created = httpx.post(
        f"{server.base_url}/api/v1/accounts/acme/definitions",
        headers={"Authorization": f"Bearer {server.acme_key}"},
        json=survey,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    sign_in(page, server, server.acme_key, screenshot)
    screenshot(page, "console-definitions")
    page.goto(f"{server.base_url}/console/sandbox")
    page.locator("#mode-virtual").check()
    page.locator("#virtual-definition").select_option(created.json()["id"])
    page.locator("#virtual-start").click()
    expect(page.locator("#virtual-clock")).to_be_visible()
    page.locator("#sim-kind").select_option("http")
    page.locator("#sim-body").fill('{"phone": "+6591234567"}')
    page.locator("#sim-trigger").click()
    expect(page.locator(".bubble.them", has_text="How did we do?")).to_have_count(1)
    page.get_by_role("button", name="+1 day").click()
    expect(page.locator(".bubble.them", has_text="A gentle reminder")).to_have_count(1)
    expect(page.locator("#virtual-instances")).to_contain_text("Complete")
    screenshot(page, "console-sandbox-virtual")
    with page.expect_download() as download:
        page.locator("#virtual-export").click()
    exported = json.loads(download.value.path().read_text())
    assert [entry["do"] for entry in exported["script"]] == ["http_trigger", "advance"]
    assert exported["expect"]["instances"][0]["status"] == "Complete"
