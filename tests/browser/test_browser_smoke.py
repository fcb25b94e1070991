"""The whole chain works: a real `relayflow serve`, Debian's headless Chromium, screenshots.

Plus the web console's sign-in contract (element ids other tests rely on).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import SCREENSHOTS, RelayflowServer, Screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_health_renders_in_chromium(
    relayflow_server: RelayflowServer, page: Page, screenshot: Screenshot
) -> None:
    response = page.goto(f"{relayflow_server.base_url}/healthz")
    assert response is not None
    assert response.status == 200
    assert response.header_value("content-type") == "application/json"
    # Chromium shows a JSON document as text in the page.
    shown = json.loads(page.locator("body").inner_text())
    assert shown["status"] == "ok"
    assert shown["database"] == "sqlite"
    path = screenshot(page, "healthz")
    assert path.parent == SCREENSHOTS
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert path.stat().st_size > 1000


def test_console_sign_in_lands_on_definitions(
    relayflow_server: RelayflowServer, page: Page, screenshot: Screenshot
) -> None:
    response = page.goto(f"{relayflow_server.base_url}/console/login")
    assert response is not None
    assert response.ok, f"GET /console/login answered {response.status}"
    screenshot(page, "console-login")

    api_key = page.locator("form input[name=apiKey]#api-key")
    expect(api_key).to_have_attribute("type", "password")
    sign_in = page.locator("form button#sign-in")
    expect(sign_in).to_have_js_property("type", "submit")

    api_key.fill(relayflow_server.acme_key)
    sign_in.click()
    page.wait_for_url(lambda url: urlsplit(url).path == "/console/definitions")
    expect(page.locator("h1")).to_have_text("Definitions")
    expect(page.locator("button#sign-out")).to_have_count(1)
    screenshot(page, "console-definitions")
