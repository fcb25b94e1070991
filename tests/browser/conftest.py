"""Fixtures for real-browser tests: a real `relayflow serve`, Debian's headless Chromium.

- `relayflow_server` (module): a `relayflow serve` process on a free port and a fresh SQLite
  database holding two accounts, `acme` and `globex`, made with `relayflow accounts create`.
- `browser` (package): one Playwright `Browser` on /usr/bin/chromium (Debian's `chromium`
  package; no browser is ever downloaded). Package scope rather than session: while Playwright's
  sync API is alive it marks its event loop as running in the main thread, which would break
  every pytest-asyncio test that runs after the browser tests.
- `page` (function, parametrized "desktop" 1280×800 / "phone" 390×844): a fresh context and
  page. Teardown fails the test when the page logged a console error or threw a page error, or
  when a page it visited has no screenshot.
- `screenshot(page, name)`: saves a full-page PNG as
  tests/browser/screenshots/<name>-<viewport>.png.

Without /usr/bin/chromium the browser tests skip with a message, except under CI (`CI` set),
where that is a failure (`make browser-deps` installs it, as .ci/run does).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Error,
    Frame,
    Page,
    Response,
    expect,
    sync_playwright,
)

from tests.support.processes import RELAYFLOW, child_env, free_port

# Debian's `chromium` package; RELAYFLOW_TEST_CHROMIUM points elsewhere (like RELAYFLOW_TEST_PG).
CHROMIUM = Path(os.environ.get("RELAYFLOW_TEST_CHROMIUM", "/usr/bin/chromium"))
# The machine has no internet: without these Chromium keeps trying to reach Google's services.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).parent / "screenshots"
ACCOUNTS = ("acme", "globex")
# A missing element fails a test in seconds instead of Playwright's default 30 s.
ACTION_TIMEOUT_MS = 5_000
SCREENSHOT_TIMEOUT_MS = 15_000
START_DEADLINE_S = 30.0


@dataclass(frozen=True)
class Viewport:
    name: str
    width: int
    height: int
    is_mobile: bool = False


VIEWPORTS = (Viewport("desktop", 1280, 800), Viewport("phone", 390, 844, is_mobile=True))


# --------------------------------------------------------------------------------------------
# The relayflow process


@dataclass(frozen=True)
class Account:
    account_id: str
    api_key: str
    webhook_token: str


@dataclass(frozen=True)
class RelayflowServer:
    base_url: str
    accounts: dict[str, Account]
    log_path: Path

    @property
    def acme_key(self) -> str:
        return self.accounts["acme"].api_key

    @property
    def globex_key(self) -> str:
        return self.accounts["globex"].api_key


def create_account(env: dict[str, str], account_id: str) -> Account:
    """`relayflow accounts create ID`; it prints {"accountId", "apiKey", "webhookToken"}."""
    result = subprocess.run(
        [str(RELAYFLOW), "accounts", "create", account_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"accounts create {account_id}: {result.stderr}"
    created: dict[str, Any] = json.loads(result.stdout)
    return Account(created["accountId"], created["apiKey"], created["webhookToken"])


def _wait_healthy(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"relayflow serve exited with {process.returncode}\n{log_path.read_text()}")
        try:
            response = httpx.get(f"{base_url}/healthz", timeout=1.0)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text}"
        except httpx.TransportError as error:
            last = repr(error)
        time.sleep(0.05)
    pytest.fail(f"relayflow serve: /healthz not 200 in {START_DEADLINE_S} s ({last})")


@pytest.fixture(scope="module")
def relayflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayflowServer]:
    """A real `relayflow serve` on 127.0.0.1:<free port> with accounts acme and globex."""
    workdir = tmp_path_factory.mktemp("relayflow-browser")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = child_env(
        database_url=f"sqlite:///{workdir / 'relayflow.db'}",
        secret_key=secrets.token_urlsafe(32),
        public_url=base_url,
    )
    accounts = {account_id: create_account(env, account_id) for account_id in ACCOUNTS}
    log_path = workdir / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(RELAYFLOW), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(process, base_url, log_path)
        yield RelayflowServer(base_url, accounts, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# --------------------------------------------------------------------------------------------
# The browser


@pytest.fixture(scope="package")
def chromium_path() -> Path:
    """/usr/bin/chromium; skips the browser tests when it is absent, fails under CI."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    message = (
        f"{CHROMIUM} not found: browser tests need Debian's chromium package "
        "(`make browser-deps`, as root: apt-get install -y chromium chromium-driver)"
    )
    if os.environ.get("CI"):
        pytest.fail(f"{message}; it is required under CI")
    pytest.skip(f"{message}; browser tests skipped")


@pytest.fixture(scope="package")
def browser(chromium_path: Path) -> Iterator[Browser]:
    """One headless Chromium for every browser test. Playwright gives it a fresh temporary
    user-data dir (and deletes it on close); nothing is downloaded."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(chromium_path), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember whether the test itself failed (or xfailed), for `page`'s teardown."""
    report = yield
    if call.when == "call":
        item.stash[CALL_FAILED] = call.excinfo is not None
    return report


@dataclass
class PageRecord:
    """What a page did, checked when its test ends."""

    viewport: Viewport
    errors: list[str] = field(default_factory=list)
    visited: list[str] = field(default_factory=list)
    screenshotted: set[str] = field(default_factory=set)
    html_shown: bool = False  # the main frame shows an HTML document (not JSON, not text)
    # Pages the test means to be refused (a 404 of another account's URL): Chromium logs
    # "Failed to load resource" for them, which is the point, not a console error.
    refused: set[str] = field(default_factory=set)


_RECORDS: dict[int, PageRecord] = {}


def _without_fragment(url: str) -> str:
    return url.split("#", 1)[0]


def _is_favicon_miss(url: str) -> bool:
    return urlsplit(url).path == "/favicon.ico"


@pytest.fixture(params=VIEWPORTS, ids=[viewport.name for viewport in VIEWPORTS])
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a fresh context (no cookies, no storage) at the parametrized viewport."""
    viewport: Viewport = request.param
    context = browser.new_context(
        viewport={"width": viewport.width, "height": viewport.height},
        device_scale_factor=1,
        is_mobile=viewport.is_mobile,
        has_touch=viewport.is_mobile,
    )
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    new_page = context.new_page()
    record = _RECORDS[id(new_page)] = PageRecord(viewport)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            location = message.location
            if _is_favicon_miss(location.get("url", "")) and not record.html_shown:
                return  # a JSON or text document names no icon: Chromium asks for /favicon.ico
            if _without_fragment(location.get("url", "")) in record.refused and (
                message.text.startswith("Failed to load resource")
            ):
                return
            where = (
                f" at {location['url']}:{location.get('lineNumber')}" if location.get("url") else ""
            )
            record.errors.append(f"console.error{where}: {message.text}")

    def on_page_error(error: Error) -> None:
        record.errors.append(f"page error: {error.name}: {error.message}")

    def on_navigated(frame: Frame) -> None:
        if frame == new_page.main_frame and frame.url != "about:blank":
            url = _without_fragment(frame.url)
            if url not in record.visited:
                record.visited.append(url)

    def on_response(response: Response) -> None:
        if response.request.is_navigation_request() and response.frame == new_page.main_frame:
            content_type = response.header_value("content-type") or ""
            record.html_shown = content_type.startswith("text/html")

    new_page.on("console", on_console)
    new_page.on("pageerror", on_page_error)
    new_page.on("framenavigated", on_navigated)
    new_page.on("response", on_response)
    try:
        yield new_page
    finally:
        context.close()
        del _RECORDS[id(new_page)]
    problems = list(record.errors)
    problems += [
        f"no screenshot of {url} (call screenshot(page, name) on every page visited)"
        for url in record.visited
        if url not in record.screenshotted
    ]
    report = f"[{viewport.name}] " + "\n".join(problems)
    if request.node.stash.get(CALL_FAILED, False):
        if problems:  # the test failed already: show these with it instead of a second error
            print(report)
        return
    assert not problems, report


def save_screenshot(page: Page, name: str) -> Path:
    """Full-page PNG at tests/browser/screenshots/<name>-<viewport>.png."""
    record = _RECORDS.get(id(page))
    viewport = (
        record.viewport.name
        if record
        else "{width}x{height}".format_map(page.viewport_size or {"width": 0, "height": 0})
    )
    path = SCREENSHOTS / f"{name}-{viewport}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True, timeout=SCREENSHOT_TIMEOUT_MS)
    if record is not None:
        record.screenshotted.add(_without_fragment(page.url))
    return path


Screenshot = Callable[[Page, str], Path]


def expect_refusal(page: Page, url: str) -> None:
    """`url` is meant to answer 4xx in this test (its console message is not an error)."""
    record = _RECORDS.get(id(page))
    if record is not None:
        record.refused.add(_without_fragment(url))


def sign_in(page: Page, server: RelayflowServer, key: str, screenshot: Screenshot) -> None:
    """Through the login page, to the definitions list."""
    page.goto(f"{server.base_url}/console")
    page.wait_for_url(re.compile(r"/console/login$"))
    screenshot(page, "console-login")
    page.locator("#api-key").fill(key)
    page.locator("#sign-in").click()
    page.wait_for_url(lambda url: urlsplit(url).path == "/console/definitions")
    expect(page.locator("h1")).to_have_text("Definitions")


@pytest.fixture
def screenshot() -> Screenshot:
    """`screenshot(page, name) -> Path`: see `save_screenshot`."""
    return save_screenshot
