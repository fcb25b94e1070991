"""Graceful shutdown of real processes (SIGTERM).

`relayflow serve`: a request under way when the signal arrives is answered, new connections
are refused meanwhile, and the process exits 0.

A rolling restart under load, on PostgreSQL: one `relayflow api`, two
`relayflow worker` processes and the fake 8x8 (a real HTTP server) as the SMS API. While
instances stream in over HTTP, worker A gets SIGTERM, exits 0 within the grace period holding no
lease, and starts again; then the same for worker B.

Checked at the end: every triggered instance exists and is Complete (none lost); the fake 8x8
received each instance's two SMS exactly once (no send duplicated); no timer fired later than
the grace period (+ a margin) after it was due, from the stored data (the `wait_started` audit
event's `until` against the Wait step's completion). The margin absorbs a loaded machine (two
cores shared with the database, the fake and other tests); the lease timeout is made far longer
(300 s), so a lease kept by a stopping worker would show as minutes late and as instances that
do not complete in time.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fake8x8.client import Fake8x8
from tests.support.databases import db_rows
from tests.support.definitions import definition
from tests.support.process_api import Api
from tests.support.processes import (
    RELAYFLOW,
    Child,
    Processes,
    Worker,
    child_env,
    create_account,
    wait_for,
)

pytestmark = pytest.mark.slow

KEY = "rolling-8x8-api-key-0001"
SECRET = "rolling-restart-secret-key-of-sufficient-length"
GRACE_S = 5
# Process start-up, the signal's delivery and a loaded machine: generous, not a speed claim.
MARGIN_S = 20
LEASE_S = 300
MAX_INSTANCES = 600  # the load stops by itself
RATE_PER_S = 12  # a steady stream the two workers keep up with, paced by the wall clock
WAIT_S = 3
SETTINGS = {
    "secret_key": SECRET,
    "shutdown_grace_seconds": str(GRACE_S),
    "worker_lease_seconds": str(LEASE_S),
}

FLOW = definition(
    "rolling",
    "http_request",
    [
        {
            "id": "first",
            "stepType": "SMS",
            "inputs": {
                "subAccountId": "acme_sms",
                "destination": "{{data.phone}}",
                "text": "first #{{data.n}}",
            },
            "nextStepId": "nap",
        },
        {
            "id": "nap",
            "stepType": "Wait",
            "inputs": {"duration": f"00:00:0{WAIT_S}"},
            "nextStepId": "second",
        },
        {
            "id": "second",
            "stepType": "SMS",
            "inputs": {
                "subAccountId": "acme_sms",
                "destination": "{{data.phone}}",
                "text": "second #{{data.n}}",
            },
        },
    ],
)


@pytest.fixture
def fake() -> Iterator[Fake8x8]:
    with Fake8x8(api_keys=(KEY,)) as server:
        yield server


def use_fake_8x8(db_url: str, workdir: Path, fake: Fake8x8) -> None:
    completed = subprocess.run(
        [
            str(RELAYFLOW),
            "accounts",
            "set-provider",
            "acme",
            "8x8",
            "--api-key",
            KEY,
            "--sms-url",
            fake.urls.sms,
            "--chatapps-url",
            fake.urls.chatapps,
            "--voice-url",
            fake.urls.voice,
            "--db",
            db_url,
        ],
        capture_output=True,
        text=True,
        cwd=workdir,
        env=child_env(secret_key=SECRET),
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr


class Load(threading.Thread):
    """Triggers RATE_PER_S instances a second until told to stop (or MAX_INSTANCES)."""

    def __init__(self, base_url: str, account_id: str, api_key: str) -> None:
        super().__init__(daemon=True)
        self.api = Api(base_url, account_id, api_key)
        self.started: dict[str, int] = {}  # workflowId -> n
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            began = time.monotonic()
            for n in range(MAX_INSTANCES):
                if self.stop.is_set():
                    return
                [workflow] = self.api.trigger({"phone": phone_of(n), "n": n})
                self.started[workflow] = n
                self.stop.wait(max(0.0, began + (n + 1) / RATE_PER_S - time.monotonic()))
        except BaseException as error:  # reported by the test thread
            self.error = error
        finally:
            self.api.close()

    def finish(self) -> dict[str, int]:
        self.stop.set()
        self.join(timeout=60)
        if self.error:
            raise self.error
        return dict(self.started)


def phone_of(n: int) -> str:
    return f"+6595{n:06d}"


def leases_of(pg_url: str, owner: str) -> int:
    [(held,)] = db_rows(pg_url, f"SELECT count(*) FROM instances WHERE lease_owner = '{owner}'")
    return int(held)


def log_events(child: Child, event: str) -> list[dict[str, Any]]:
    found = []
    for line in child.stderr.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("event") == event:
                found.append(entry)
    return found


def restart(
    procs: Processes, pg_url: str, worker: Worker, name: str, signals: list[float]
) -> Worker:
    """SIGTERM while it holds leases; it must exit 0 within the grace, holding none."""
    wait_for(
        lambda: leases_of(pg_url, worker.owner) > 0,
        f"{worker.name} to hold leases",
        interval_s=0.005,
    )
    signalled = time.monotonic()
    signals.append(time.time() * 1000)
    worker.process.send_signal(signal.SIGTERM)
    code = worker.process.wait(timeout=GRACE_S + MARGIN_S + 30)
    took = time.monotonic() - signalled
    assert code == 0, f"{worker.name} exited {code}\n{worker.stderr[-3000:]}"
    assert took <= GRACE_S + MARGIN_S, f"{worker.name} took {took:.1f} s to stop"
    assert leases_of(pg_url, worker.owner) == 0, f"{worker.name} exited holding leases"
    [stopped] = log_events(worker, "worker_stopped")
    assert stopped["leases_released"] is not None, "the lease release failed"
    assert worker.error_logs() == [], worker.name
    replacement = procs.worker(pg_url, name, **SETTINGS)
    replacement.wait_started()
    return replacement


@pytest.mark.postgres
def test_rolling_restart_of_two_workers_under_load(
    pg_url: str, fake: Fake8x8, tmp_path: Path
) -> None:
    started_at = time.monotonic()
    with Processes(tmp_path) as procs:
        account = create_account(pg_url, tmp_path)
        use_fake_8x8(pg_url, tmp_path, fake)
        a = procs.worker(pg_url, "worker-a", **SETTINGS)
        b = procs.worker(pg_url, "worker-b", **SETTINGS)
        server = procs.api(pg_url, "api", **SETTINGS)
        server.wait_healthy(deadline_s=90)  # a loaded machine starts processes slowly
        a.wait_started()
        b.wait_started()
        api = Api(server.base_url, account["accountId"], account["apiKey"])
        load = Load(server.base_url, account["accountId"], account["apiKey"])
        try:
            definition_id = api.define(FLOW)
            load.start()
            wait_for(lambda: len(load.started) >= 40, "the load to get going")
            signals: list[float] = []  # epoch ms of each SIGTERM, for failure messages
            a2 = restart(procs, pg_url, a, "worker-a2", signals)
            b2 = restart(procs, pg_url, b, "worker-b2", signals)
            wait_for(lambda: len(load.started) >= 150, "150 instances", deadline_s=60)
            started = load.finish()

            def all_complete() -> bool:
                [(done, total)] = db_rows(
                    pg_url,
                    "SELECT count(*) FILTER (WHERE status = 'Complete'), count(*) FROM instances",
                )
                return bool(done == total == len(started))

            wait_for(all_complete, "every instance to complete", deadline_s=120, interval_s=0.2)

            # None lost: every triggered instance is there, and Complete.
            listed = api.instances(definition_id)
            assert {i["workflowId"] for i in listed} == set(started)
            assert {i["status"] for i in listed} == {"Complete"}

            # No send duplicated: 8x8 received each instance's two texts exactly once.
            received = Counter(
                (request["body"]["destination"], request["body"]["text"])
                for request in fake.requests(role="sms")
            )
            expected = Counter(
                (phone_of(n), f"{step} #{n}")
                for n in started.values()
                for step in ("first", "second")
            )
            assert received == expected, {
                "missing": expected - received,
                "extra": received - expected,
            }

            # No timer late by more than the grace period.
            lateness = db_rows(
                pg_url,
                "SELECT p.instance_id, p.completed_at_ms - CAST(e.detail_json::json->>'until' AS "
                "BIGINT) FROM pointers p JOIN instance_events e ON e.instance_id = p.instance_id "
                "AND e.step_id = p.step_id AND e.type = 'wait_started' WHERE p.step_id = 'nap'",
            )
            assert {workflow for workflow, _ in lateness} == set(started)
            worst = max(late for _, late in lateness)
            assert worst <= (GRACE_S + MARGIN_S) * 1000, (
                f"a timer fired {worst} ms late (SIGTERMs at {signals} ms)"
            )

            for child in (a2, b2, server):
                child.check_alive()
                assert child.error_logs() == [], child.name
            for child in (a2, b2, server):  # `api` too exits 0 on SIGTERM
                child.process.send_signal(signal.SIGTERM)
            for child in (a2, b2, server):
                assert child.process.wait(timeout=GRACE_S + MARGIN_S) == 0, child.stderr[-3000:]
            print(
                f"\nrolling restart: {len(started)} instances, worst timer lateness {worst} ms, "
                f"{time.monotonic() - started_at:.1f} s"
            )
        finally:
            load.stop.set()
            api.close()


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_serve_answers_the_request_under_way_refuses_new_ones_and_exits_0(
    tmp_path: Path,
) -> None:
    db_url = f"sqlite:///{tmp_path / 'serve.db'}"
    with Processes(tmp_path) as procs:
        server = procs.serve(db_url, "serve", shutdown_grace_seconds=str(GRACE_S))
        server.wait_healthy(deadline_s=90)
        [demo] = server.printed_json()
        api = Api(server.base_url, demo["accountId"], demo["apiKey"])
        try:
            api.define(
                definition(
                    "late",
                    "http_request",
                    [{"id": "w", "stepType": "Wait", "inputs": {"duration": "00:00:01"}}],
                )
            )
        finally:
            api.close()
        body = json.dumps({"n": 1}).encode()
        # The request is under way: the app asked for its body (100 Continue), which the client
        # sends only after the SIGTERM.
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn:
            conn.sendall(
                (
                    f"POST /api/v1/accounts/{demo['accountId']}/triggers/http_request HTTP/1.1\r\n"
                    f"Host: 127.0.0.1\r\nAuthorization: Bearer {demo['apiKey']}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                    "Expect: 100-continue\r\n\r\n"
                ).encode()
            )
            assert conn.recv(1024).startswith(b"HTTP/1.1 100"), "the app never read the body"
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            wait_for(lambda: refused(server.port), "new connections to be refused")
            assert server.alive(), "the server did not wait for the request under way"
            conn.sendall(body)
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                answer += chunk
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line.startswith(b"HTTP/1.1 200"), answer
        [workflow] = json.loads(rest.partition(b"\r\n\r\n")[2])["workflowIds"]
        assert server.process.wait(timeout=GRACE_S + MARGIN_S + 30) == 0, server.stderr[-3000:]
        assert time.monotonic() - signalled <= GRACE_S + MARGIN_S
        [stopped] = log_events(server, "worker_stopped")
        assert stopped["leases_released"] == 0
        assert server.error_logs() == []
        # Accepted and stored, not run: a stopping worker takes no new work; the next one does.
        steps = db_rows(db_url, f"SELECT status FROM pointers WHERE instance_id = '{workflow}'")
        assert steps == [("Pending",)]
        second = procs.serve(db_url, "serve-2", shutdown_grace_seconds=str(GRACE_S))
        second.wait_healthy(deadline_s=90)
        wait_for(
            lambda: (
                db_rows(db_url, f"SELECT status FROM instances WHERE id = '{workflow}'")
                == [("Complete",)]
            ),
            "the stored instance to run in the next process",
        )
