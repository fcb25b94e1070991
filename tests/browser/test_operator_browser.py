"""Operator actions in headless Chromium against a real `relayflow serve`, at a desktop and a
phone viewport: retry a failed instance on the definition's fixed latest version, then suspend
every matching instance of a list through the bulk action's confirmation step. Every page
visited is screenshotted (tests/browser/screenshots/operator-*)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import RelayflowServer, Screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUN_TIMEOUT_MS = 20_000  # the real server's worker runs the instance meanwhile


def definition(name: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "trigger": "http_request",
        "status": "enabled",
        "definition": {"name": name, "steps": steps},
    }


def sms(text: str) -> list[dict[str, Any]]:
    inputs = {"subAccountId": "operator", "destination": "+6591234567", "text": text}
    return [{"id": "notify", "stepType": "SMS", "inputs": inputs}]


class Api:
    def __init__(self, server: RelayflowServer) -> None:
        self.base = f"{server.base_url}/api/v1/accounts/acme"
        self.headers = {"Authorization": f"Bearer {server.acme_key}"}

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.base}{path}", headers=self.headers, **kwargs)
        assert response.is_success, response.text
        return response.json()


def test_retry_and_bulk_suspend(
    relayflow_server: RelayflowServer,
    page: Page,
    screenshot: Screenshot,
    request: pytest.FixtureRequest,
) -> None:
    server = relayflow_server
    viewport = request.node.callspec.id.split("-")[-1]
    api = Api(server)
    page.on("dialog", lambda dialog: dialog.accept())  # the Retry confirmation
    sign_in(page, server, server.acme_key, screenshot)
    screenshot(page, "operator-definitions")

    # 1. A failed instance: retry it on the fixed latest version.
    failing = api.call(
        "POST", "/definitions", json=definition(f"Retry {viewport}", sms("{{data.who.name}}"))
    )["id"]
    workflow = api.call("POST", f"/definitions/{failing}/workflows", json={})["workflowId"]
    page.goto(f"{server.base_url}/console/definitions/{failing}/workflows/{workflow}")
    expect(page.locator("#instance-status")).to_have_text("Terminated", timeout=RUN_TIMEOUT_MS)
    api.call("PUT", f"/definitions/{failing}", json=definition(f"Retry {viewport}", sms("Hi")))
    page.reload()
    expect(page.locator("#retry")).to_be_visible()
    page.locator("#retry-version").select_option("latest")
    screenshot(page, "operator-failed-instance")
    page.locator("#retry").click()
    expect(page.locator("#instance-status")).to_have_text("Complete", timeout=RUN_TIMEOUT_MS)
    expect(page.locator(".timeline .log")).to_have_count(2)  # the failed run and the retry
    expect(page.locator("#retry")).to_have_count(0)
    screenshot(page, "operator-retried-instance")
    assert api.call("GET", f"/definitions/{failing}/workflows/{workflow}")["version"] == 2

    # 2. Bulk suspend of the list's Runnable instances, after the confirmation's count.
    nap = [{"id": "nap", "stepType": "Wait", "inputs": {"duration": "01:00:00"}}]
    sleepy = api.call("POST", "/definitions", json=definition(f"Bulk {viewport}", nap))["id"]
    for _ in range(3):
        api.call("POST", f"/definitions/{sleepy}/workflows", json={})
    page.goto(f"{server.base_url}/console/definitions/{sleepy}/workflows?status=Runnable")
    expect(page.locator(".list tbody tr")).to_have_count(3)
    screenshot(page, "operator-instances")
    page.locator("#bulk-action").select_option("suspend")
    page.locator("#bulk-review").click()
    page.wait_for_url(re.compile(r"/workflows/bulk\?"))
    expect(page.locator("#bulk-count")).to_contain_text("3 of 3 matching instances")
    screenshot(page, "operator-bulk-confirm")
    page.locator("#bulk-confirm").click()
    page.wait_for_url(re.compile(r"done=suspend"))
    expect(page.locator("#bulk-done")).to_have_text(
        "Suspend: 3 changed, 0 skipped (status did not fit)."
    )
    expect(page.locator(".list tbody tr")).to_have_count(0)  # the filter: Runnable
    screenshot(page, "operator-bulk-done")
    listed = api.call("GET", f"/definitions/{sleepy}/workflows")
    assert [i["status"] for i in listed] == ["Suspended"] * 3
