"""The console in a real `relayflow serve`: a page's open live stream must not hold a stop up.

uvicorn waits for open connections before the app's own shutdown runs, so the server tells the
app when a stop begins (`Runtime.stopping`) and live streams end with `again` (the page will
reconnect). Without that, a console left open kept `relayflow serve` alive after SIGTERM until
uvicorn's grace period ran out, cancelling the stream with a traceback.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from tests.support.processes import Processes

pytestmark = pytest.mark.slow
SURVEY = Path(__file__).parents[2] / "src/relayflow/console/static/gallery/survey.json"


def test_sigterm_ends_open_live_streams_at_once(tmp_path: Path) -> None:
    with Processes(tmp_path) as procs:
        server = procs.serve(f"sqlite:///{tmp_path / 'relayflow.db'}", "serve")
        server.wait_healthy()
        [demo] = server.printed_json()
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            received = _stop_while_streaming(http, demo["apiKey"], server.process)
        text = "".join(received)
        # Ended by the stop ("again"), after a keep-alive or two, not by the stream's own
        # 25 s limit (~25 keep-alives) nor cut by uvicorn's grace period (no "again" at all).
        assert "event: again" in text, text
        assert text.count(": keep-alive") < 10, text
        assert "CancelledError" not in server.stderr
        # uvicorn re-raises the signal once it has shut down cleanly.
        assert server.process.returncode in (0, -signal.SIGTERM), server.stderr


def _stop_while_streaming(
    http: httpx.Client, api_key: str, process: subprocess.Popen[bytes]
) -> list[str]:
    """Sign in, start an instance, open its live stream, SIGTERM the server; what it sent."""
    page = http.get("/console/login")
    token = re.search(r'name="signin" value="([^"]+)"', page.text)
    assert token is not None
    http.post("/console/login", data={"signin": token.group(1), "apiKey": api_key})
    csrf = re.search(r'data-csrf="([^"]+)"', http.get("/console/definitions").text)
    assert csrf is not None
    created = http.post(
        "/console/definitions/new", data={"csrf": csrf.group(1), "body": SURVEY.read_text()}
    )
    [workflow] = http.post(
        "/console/sandbox/send",
        json={"kind": "http", "body": {"phone": "+6591234567"}},
        headers={"X-CSRF-Token": csrf.group(1)},
    ).json()["started"]
    live = f"{created.headers['location']}/workflows/{workflow}/live"
    received: list[str] = []
    streaming = threading.Event()

    def listen() -> None:
        with http.stream("GET", live) as stream:
            for chunk in stream.iter_text():
                received.append(chunk)
                streaming.set()

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert streaming.wait(30), "the live stream did not start"
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    listener.join(timeout=30)
    return received
