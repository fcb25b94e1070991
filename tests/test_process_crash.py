"""Crash recovery of a real `relayflow serve` process, on SQLite and PostgreSQL.

The server is killed with SIGKILL (no shutdown hook runs, the database is left as the last
commit left it) while instances sleep on timers and wait for replies, and again several times
during a stream of inbound messages; a new process on the same database must finish every
instance, with the messages each instance should send and no more.

The helpers here (processes, the HTTP client, direct database reads) are shared with
`tests/test_process_workers.py`.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest

from tests.conftest import PG_ADMIN_DSN

pytestmark = pytest.mark.slow

RELAYFLOW = Path(sys.executable).parent / "relayflow"
# A killed process keeps the leases it held; the next process takes them over when they expire.
# The default (60 s) would make every test wait a minute.
LEASE_SECONDS = "3"
T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# Processes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def child_env(**settings: str) -> dict[str, str]:
    """This environment without RELAYFLOW_* variables, plus `settings` as RELAYFLOW_<NAME>."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAYFLOW_")}
    env.update({f"RELAYFLOW_{name.upper()}": value for name, value in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wait_for(
    check: Callable[[], T], what: str, deadline_s: float = 30.0, interval_s: float = 0.05
) -> T:
    """Poll `check` until it returns something truthy; fail after `deadline_s`."""
    deadline = time.monotonic() + deadline_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {deadline_s} s waiting for {what}")
        time.sleep(interval_s)


class Child:
    """One relayflow process. stdout and stderr go to files: a full pipe would block it."""

    def __init__(self, workdir: Path, name: str, args: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.stdout_path = workdir / f"{name}.stdout"
        self.stderr_path = workdir / f"{name}.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [str(RELAYFLOW), *args],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                cwd=workdir,
                env=env,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            pytest.fail(
                f"{self.name} exited with {self.process.returncode}\n"
                f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
            )

    def kill9(self) -> None:
        """SIGKILL: no handler, no cleanup, no final commit."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def error_logs(self) -> list[dict[str, Any]]:
        """structlog lines at error level or above (e.g. sprint_failed, claim_failed)."""
        found = []
        for line in self.stderr.splitlines():
            if not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("level") in ("error", "critical", "exception"):
                found.append(entry)
        return found


class Server(Child):
    """`relayflow serve` or `relayflow api` on a port of its own."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        command: str,
        db_url: str,
        env: dict[str, str],
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        super().__init__(workdir, name, [command, "--db", db_url, "--port", str(self.port)], env)

    def wait_healthy(self, deadline_s: float = 30.0) -> None:
        deadline = time.monotonic() + deadline_s
        last = "no answer"
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                response = httpx.get(f"{self.base_url}/healthz", timeout=1.0)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text}"
            except httpx.TransportError as error:
                last = repr(error)
            time.sleep(0.05)
        pytest.fail(f"{self.name}: /healthz not 200 within {deadline_s} s ({last})\n{self.stderr}")

    def printed_json(self) -> list[dict[str, Any]]:
        """Every JSON object printed on stdout (the demo credentials on a first start)."""
        text = self.stdout
        decoder = json.JSONDecoder()
        found: list[dict[str, Any]] = []
        index = text.find("{")
        while index != -1:
            document, end = decoder.raw_decode(text, index)
            found.append(document)
            index = text.find("{", end)
        return found


class Worker(Child):
    """`relayflow worker`; its owner id is printed on stdout at start."""

    def __init__(self, workdir: Path, name: str, db_url: str, env: dict[str, str]) -> None:
        super().__init__(workdir, name, ["worker", "--db", db_url], env)
        self.owner = ""

    def wait_started(self, deadline_s: float = 30.0) -> str:
        def started() -> str | None:
            self.check_alive()
            match = re.search(r"relayflow worker (\S+) running", self.stdout)
            return match.group(1) if match and "worker_started" in self.stderr else None

        self.owner = wait_for(started, f"{self.name} to start", deadline_s)
        return self.owner


class Processes:
    """Every process a test starts. On exit, SIGKILL whatever still runs (by pid); when the
    test failed, print each process's stderr so the failure report shows it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[Child] = []

    def serve(self, db_url: str, name: str, port: int | None = None, **settings: str) -> Server:
        env = child_env(worker_lease_seconds=LEASE_SECONDS, **settings)
        server = Server(self.workdir, name, "serve", db_url, env, port)
        self.children.append(server)
        return server

    def api(self, db_url: str, name: str, **settings: str) -> Server:
        server = Server(self.workdir, name, "api", db_url, child_env(**settings))
        self.children.append(server)
        return server

    def worker(self, db_url: str, name: str, **settings: str) -> Worker:
        worker = Worker(self.workdir, name, db_url, child_env(**settings))
        self.children.append(worker)
        return worker

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for child in self.children:
            try:
                child.kill9()
            except (OSError, subprocess.TimeoutExpired) as error:
                print(f"could not kill {child.name} (pid {child.pid}): {error}")
        if exc_type is not None:
            for child in self.children:
                lines = child.stderr.splitlines()
                print(f"\n----- {child.name} (pid {child.pid}) stderr, last 150 lines -----")
                print("\n".join(lines[-150:]))


# --------------------------------------------------------------------------------------------
# Talking to the processes


class Api:
    """A client of one account's API, through whichever server is up now."""

    def __init__(self, base_url: str, account_id: str, api_key: str) -> None:
        self.account_id = account_id
        self.api_key = api_key
        self.prefix = f"/api/v1/accounts/{account_id}"
        self.http = httpx.Client(base_url=base_url, headers=self.headers, timeout=15.0)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def rebase(self, base_url: str) -> None:
        self.http.close()
        self.http = httpx.Client(base_url=base_url, headers=self.headers, timeout=15.0)

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = self.http.request(method, f"{self.prefix}{path}", **kwargs)
        assert response.status_code == expect, f"{method} {path}: {response.text}"
        return response.json() if response.content else None

    def define(self, body: dict[str, Any]) -> str:
        definition_id: str = self.call("POST", "/definitions", expect=201, json=body)["id"]
        return definition_id

    def inbound_sms(self, sender: str, text: str) -> dict[str, Any]:
        body = {"from": sender, "to": "+6580000000", "text": text}
        routed: dict[str, Any] = self.call("POST", "/sandbox/inbound/sms", json=body)
        return routed

    def trigger(self, body: dict[str, Any]) -> list[str]:
        started: list[str] = self.call("POST", "/triggers/http_request", json=body)["workflowIds"]
        return started

    def instance(self, definition_id: str, workflow_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.call(
            "GET",
            f"/definitions/{definition_id}/workflows/{workflow_id}",
            params={"includeLogs": "true"},
        )
        return found

    def logs(self, definition_id: str, workflow_id: str) -> list[tuple[str, str]]:
        logs = self.instance(definition_id, workflow_id)["logs"]
        return [(log["stepName"], log["status"]) for log in logs]

    def instances(self, definition_id: str) -> list[dict[str, Any]]:
        """Every instance of the definition (all pages)."""
        found: list[dict[str, Any]] = []
        while True:
            page = self.call(
                "GET",
                f"/definitions/{definition_id}/workflows",
                params={"limit": 500, "offset": len(found)},
            )
            found += page
            if len(page) < 500:
                return found

    def outbox(self) -> list[dict[str, Any]]:
        """Every message the account's workflows sent, oldest first (all pages)."""
        found: list[dict[str, Any]] = []
        while True:
            page = self.call("GET", "/sandbox/outbox", params={"limit": 500, "offset": len(found)})
            found += page
            if len(page) < 500:
                return list(reversed(found))

    def sent_by_instance(self) -> dict[str, list[tuple[str, str]]]:
        """workflowId -> [(destination, text)], in send order."""
        sent: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for message in self.outbox():
            request = message["request"]
            sent[message["workflowId"]].append((request["destination"], request["text"]))
        return sent


def all_complete(api: Api, definition_ids: list[str], expected: int) -> bool:
    """True once the definitions have `expected` instances and all of them are Complete."""
    listed = [i for d in definition_ids for i in api.instances(d)]
    bad = [i for i in listed if i["status"] not in ("Runnable", "Complete")]
    assert not bad, f"instances ended badly: {bad}"
    return len(listed) >= expected and all(i["status"] == "Complete" for i in listed)


def db_rows(db_url: str, sql: str) -> list[tuple[Any, ...]]:
    """Read the database directly (what the killed process left behind)."""
    if db_url.startswith("sqlite:///"):
        with closing(sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=10)) as conn:
            return conn.execute(sql).fetchall()

    async def fetch() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(db_url, timeout=10)
        try:
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(fetch())


def step_logs(db_url: str) -> dict[str, list[tuple[str, str, int]]]:
    """workflowId -> [(step id, status, attempts)] of every step execution, in order."""
    logs: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    rows = db_rows(
        db_url, "SELECT instance_id, step_id, status, attempt FROM pointers ORDER BY seq"
    )
    for instance_id, step_id, status, attempt in rows:
        logs[instance_id].append((step_id, status, attempt))
    return logs


def sql_ids(ids: Iterator[str] | list[str] | set[str]) -> str:
    """An SQL list of workflow ids (24 hex characters: safe to inline)."""
    checked = [i for i in ids if re.fullmatch(r"[0-9a-f]{24}", i)]
    return ", ".join(f"'{i}'" for i in checked) or "''"


# --------------------------------------------------------------------------------------------
# Databases: a SQLite file, or a PostgreSQL database of the test's own


async def pg_admin(statement: str) -> None:
    connection = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def fresh_pg_database(request: pytest.FixtureRequest, prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database (so `serve` creates the demo account), dropped after.

    The session's `postgres_url` fixture decides first whether PostgreSQL is there: a skip
    when it is not, a failure under CI."""
    request.getfixturevalue("postgres_url")
    name = f"{prefix}_{secrets.token_hex(4)}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    base, _, _ = PG_ADMIN_DSN.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def crash_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'crash.db'}"
    else:
        yield from fresh_pg_database(request, "relayflow_crash")


def sms_step(step_id: str, destination: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "stepType": "SMS",
        "inputs": {"subAccountId": "demo_sms", "destination": destination, "text": text},
        **extra,
    }


def definition(name: str, trigger: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {"trigger": trigger, "status": "enabled", "definition": {"name": name, "steps": steps}}


# --------------------------------------------------------------------------------------------
# Scenario 1: killed while instances sleep and wait

SLEEPERS = 20
SURVEYS = 10
ASK = "How was your visit? Reply 1-5"

SLEEPER = definition(
    "sleeper",
    "http_request",
    [
        # Long enough that the kill lands before any timer fires, short enough to keep the
        # test quick: the timers fire in the second process.
        {"id": "nap", "stepType": "Wait", "inputs": {"duration": "00:00:04"}, "nextStepId": "wake"},
        sms_step("wake", "{{data.phone}}", "Good morning {{data.n}}"),
    ],
)

SURVEY = definition(
    "survey",
    "inbound_sms",
    [
        sms_step("ask", "{{data.payload.source}}", ASK, nextStepId="wait"),
        {
            "id": "wait",
            "stepType": "WaitForReply",
            # Replies are sent right after the restart, well inside the timeout; the other
            # half times out in the second process.
            "inputs": {"from": "{{data.payload.source}}", "channel": "sms", "timeout": "00:00:10"},
            "outputs": {"answer": "{{step.reply.payload.body}}"},
            "selectNextStep": {
                "check": "{{ step.reply != null }}",
                "no_answer": "{{ step.reply == null }}",
            },
        },
        {
            "id": "check",
            "stepType": "Branch",
            "selectNextStep": {"happy": "{{ data.answer >= '4' }}", "sorry": None},
        },
        sms_step("happy", "{{data.payload.source}}", "Great, thanks for the {{data.answer}}!"),
        sms_step("sorry", "{{data.payload.source}}", "Sorry to hear that."),
        sms_step("no_answer", "{{data.payload.source}}", "We missed your answer."),
    ],
)


def test_sigkill_while_instances_sleep_and_wait(crash_db_url: str, tmp_path: Path) -> None:
    started_at = time.monotonic()
    with Processes(tmp_path) as procs:
        first = procs.serve(crash_db_url, "serve-1")
        first.wait_healthy()
        [demo] = first.printed_json()
        api = Api(first.base_url, demo["accountId"], demo["apiKey"])
        try:
            sleeper_def = api.define(SLEEPER)
            survey_def = api.define(SURVEY)

            surveys: dict[str, str] = {}  # customer number -> workflowId
            for i in range(SURVEYS):
                number = f"+6591000{i:03d}"
                routed = api.inbound_sms(number, "survey please")
                assert routed["resumed"] == [], routed
                [surveys[number]] = routed["started"]
            sleepers: dict[str, tuple[str, int]] = {}  # workflowId -> (phone, n)
            for n in range(SLEEPERS):
                phone = f"+6592000{n:03d}"
                [workflow] = api.trigger({"phone": phone, "n": n})
                sleepers[workflow] = (phone, n)

            # Kill only once every survey waits for its reply and every sleeper sleeps.
            wait_for(
                lambda: all(
                    api.logs(survey_def, w) == [("ask", "Complete"), ("wait", "WaitingForEvent")]
                    for w in surveys.values()
                ),
                "every survey to wait for its reply",
            )
            wait_for(
                lambda: all(api.logs(sleeper_def, w) == [("nap", "Sleeping")] for w in sleepers),
                "every sleeper to sleep",
            )
            first.kill9()
            assert first.process.returncode == -signal.SIGKILL

            # What the dead process left: the questions, and not one sleeper message yet.
            sent_before = Counter(
                row[0]
                for row in db_rows(
                    crash_db_url,
                    "SELECT instance_id FROM messages "
                    f"WHERE instance_id IN ({sql_ids([*sleepers, *surveys.values()])})",
                )
            )
            assert not any(w in sent_before for w in sleepers), (
                "a sleeper woke before the kill: the premise of the test failed (machine too "
                f"slow for a 4 s Wait?): {sent_before}"
            )
            assert sent_before == Counter(surveys.values()), sent_before

            second = procs.serve(crash_db_url, "serve-2")
            second.wait_healthy()
            assert second.printed_json() == [], "demo credentials printed on a restart"
            api.rebase(second.base_url)

            # Half of the customers answer now: their waits must have survived the kill.
            answers: dict[str, str] = {}  # workflowId -> the answer
            for i, (number, workflow) in enumerate(surveys.items()):
                if i % 2:
                    continue  # this one times out
                answer = "5" if i % 4 == 0 else "2"
                routed = api.inbound_sms(number, answer)
                assert routed["resumed"] == [workflow], (number, routed)
                assert routed["started"] == [], "the reply started a new survey"
                answers[workflow] = answer

            wait_for(
                lambda: all_complete(api, [sleeper_def, survey_def], SLEEPERS + SURVEYS),
                "every instance to complete",
                deadline_s=60,
                interval_s=0.2,
            )

            # Nothing lost, nothing extra.
            assert {i["workflowId"] for i in api.instances(sleeper_def)} == set(sleepers)
            assert {i["workflowId"] for i in api.instances(survey_def)} == set(surveys.values())
            for workflow in sleepers:
                assert api.logs(sleeper_def, workflow) == [
                    ("nap", "Complete"),
                    ("wake", "Complete"),
                ]
            expected_sent: dict[str, list[tuple[str, str]]] = {
                workflow: [(phone, f"Good morning {n}")]
                for workflow, (phone, n) in sleepers.items()
            }
            for number, workflow in surveys.items():
                instance = api.instance(survey_def, workflow)
                logs = [(log["stepName"], log["status"]) for log in instance["logs"]]
                answer = answers.get(workflow)
                if answer is None:
                    assert logs == [
                        ("ask", "Complete"),
                        ("wait", "Cancelled"),
                        ("no_answer", "Complete"),
                    ], (workflow, logs)
                    final = "We missed your answer."
                else:
                    branch = "happy" if answer == "5" else "sorry"
                    assert logs == [
                        ("ask", "Complete"),
                        ("wait", "Complete"),
                        ("check", "Complete"),
                        (branch, "Complete"),
                    ], (workflow, logs)
                    assert instance["data"]["answer"] == answer
                    final = "Great, thanks for the 5!" if answer == "5" else "Sorry to hear that."
                expected_sent[workflow] = [(number, ASK), (number, final)]

            sent = api.sent_by_instance()
            assert dict(sent) == expected_sent
            for child in procs.children:
                assert child.error_logs() == [], child.name
        finally:
            api.close()
    print(f"\nsigkill-while-waiting: {time.monotonic() - started_at:.1f} s")


# --------------------------------------------------------------------------------------------
# Scenario 2: killed again and again during a stream of inbound messages

MESSAGES = 50
KILLS = 3
AUTO_REPLY = definition(
    "auto reply",
    "inbound_sms",
    [sms_step("reply", "{{data.payload.source}}", "Got {{data.payload.body}}")],
)


def sender_of(i: int) -> str:
    return f"+6593{i:06d}"


class Stream(threading.Thread):
    """A customer population sending MESSAGES inbound SMS one after another, each retried
    until a server accepts it (200 with the started workflow)."""

    def __init__(self, base_url: str, api: Api, seed: int) -> None:
        super().__init__(daemon=True)
        self.base_url = base_url
        self.api = api
        self.random = random.Random(seed)
        self.accepted: dict[int, str] = {}  # message index -> workflowId
        # Requests cut off by a kill: the server may or may not have routed them.
        self.ambiguous = 0
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            # No keep-alive: a pooled connection to a dead server would make every request
            # after a kill look cut off although it was never sent.
            with httpx.Client(
                base_url=self.base_url,
                headers=self.api.headers,
                timeout=10.0,
                limits=httpx.Limits(max_keepalive_connections=0),
            ) as http:
                for i in range(MESSAGES):
                    self.send(http, i)
                    time.sleep(self.random.uniform(0, 0.03))
        except BaseException as error:  # reported by the test thread
            self.error = error

    def send(self, http: httpx.Client, i: int) -> None:
        body = {"from": sender_of(i), "to": "+6580000000", "text": f"m{i:02d}"}
        deadline = time.monotonic() + 60
        while not self.stop.is_set():
            if time.monotonic() > deadline:
                raise TimeoutError(f"message {i} not accepted within 60 s")
            try:
                response = http.post(f"{self.api.prefix}/sandbox/inbound/sms", json=body)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                time.sleep(0.05)  # nobody listening: nothing happened; retry
                continue
            except httpx.TransportError:
                self.ambiguous += 1  # cut off mid-request by a kill
                time.sleep(0.05)
                continue
            assert response.status_code == 200, response.text
            routed = response.json()
            assert routed["resumed"] == [], routed
            [self.accepted[i]] = routed["started"]
            return


def test_repeated_sigkill_during_a_stream_of_inbound_messages(
    crash_db_url: str, tmp_path: Path
) -> None:
    started_at = time.monotonic()
    seed = int(os.environ.get("RELAYFLOW_CRASH_SEED") or secrets.randbits(32))
    chance = random.Random(seed)
    print(f"\nseed {seed} (rerun with RELAYFLOW_CRASH_SEED={seed})")
    port = free_port()  # every incarnation listens here, so the stream just retries
    with Processes(tmp_path) as procs:
        server = procs.serve(crash_db_url, "serve-0", port=port)
        server.wait_healthy()
        [demo] = server.printed_json()
        api = Api(server.base_url, demo["accountId"], demo["apiKey"])
        stream = Stream(server.base_url, api, chance.randrange(2**32))
        in_flight: list[str] = []  # what each kill interrupted
        try:
            reply_def = api.define(AUTO_REPLY)
            stream.start()
            kill_points = sorted(chance.sample(range(3, MESSAGES - 3), KILLS))
            for kill, point in enumerate(kill_points, start=1):
                wait_for(
                    lambda point=point: stream.error or len(stream.accepted) >= point,
                    f"{point} accepted messages",
                )
                if stream.error:
                    break
                time.sleep(chance.uniform(0, 0.06))  # somewhere inside a request or a sprint
                server.kill9()
                [(runnable, leased)] = db_rows(
                    crash_db_url,
                    "SELECT count(*), count(lease_owner) FROM instances WHERE status = 'Runnable'",
                )
                in_flight.append(f"{runnable} runnable/{leased} leased")
                server = procs.serve(crash_db_url, f"serve-{kill}", port=port)
                server.wait_healthy()
            api.rebase(server.base_url)
            stream.join(timeout=90)
            assert not stream.is_alive(), "the stream did not finish"
            if stream.error:
                raise stream.error

            assert sorted(stream.accepted) == list(range(MESSAGES))
            wait_for(
                lambda: all_complete(api, [reply_def], MESSAGES),
                "every instance to complete",
                deadline_s=60,
                interval_s=0.2,
            )

            instances = {i["workflowId"]: i for i in api.instances(reply_def)}
            accepted = set(stream.accepted.values())
            assert accepted <= set(instances), "an accepted message lost its instance"
            # A request cut off by a kill may still have been routed; its retry then started a
            # second instance for the same text (client-side at-least-once, not an engine
            # duplicate).
            unacknowledged = set(instances) - accepted
            assert len(unacknowledged) <= stream.ambiguous, (unacknowledged, stream.ambiguous)

            sent = api.sent_by_instance()
            assert set(sent) <= set(instances), "a message from an unknown instance"
            duplicates = 0
            logs = step_logs(crash_db_url)
            # Sends run again after a kill (attempt > 1) are where a duplicate could come from.
            resent = sum(1 for steps in logs.values() for *_, attempt in steps if attempt > 1)
            for workflow, instance in instances.items():
                assert [(s, status) for s, status, _ in logs[workflow]] == [("reply", "Complete")]
                body = instance["data"]["payload"]["body"]
                source = instance["data"]["payload"]["source"]
                messages = sent.get(workflow, [])
                assert messages, f"instance {workflow} ({body}) never replied"
                assert set(messages) == {(source, f"Got {body}")}, messages
                duplicates += len(messages) - 1
            for i, workflow in stream.accepted.items():
                assert sent[workflow][0] == (sender_of(i), f"Got m{i:02d}")
            print(
                f"repeated-sigkill: kills={KILLS} after messages {kill_points} "
                f"(instances then: {', '.join(in_flight)}), cut-off requests="
                f"{stream.ambiguous}, extra instances from retries={len(unacknowledged)}, "
                f"sends run again after a kill={resent}, duplicate replies={duplicates}, "
                f"{time.monotonic() - started_at:.1f} s"
            )
            # Sends are at-least-once; the sandbox dedupes per step execution, so this should
            # in fact be 0.
            assert duplicates <= KILLS
            for child in procs.children:
                assert child.error_logs() == [], child.name
        finally:
            stream.stop.set()
            api.close()
