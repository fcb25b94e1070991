"""Fault injection with real processes: a flaky 8x8 (and CRM) and a PostgreSQL restarted under
load.

1. `relayflow serve` (SQLite) sends through the fake 8x8, which fails a seeded random 20% of
   calls (500, 503, 429 with Retry-After, dropped connection, accepted request whose answer is
   lost) and, in the middle of the run, answers 503 to everything for a few seconds. HttpRequest
   steps call the fake's CRM site under the same faults. Issue 9's promise is checked against
   the fake's record of every attempt: every instance completes, every message and call gets
   through, and the only duplicates are re-sends after a lost answer, each with the original
   `clientMessageId`.
2. `relayflow api` + two `relayflow worker` processes on a PostgreSQL cluster of the test's own
   (never the shared server on 5432), restarted with `pg_ctl restart -m fast` while a stream of
   instances runs: every accepted start completes with its SMS, the processes stay up and the
   workers recover on their own.

The random failures use a fixed seed (printed; `RELAYFLOW_FAULT_SEED` picks another). The fake
draws them in the order requests arrive, and concurrent sends interleave differently from run to
run, so a seed reproduces the sequence of draws, not necessarily which instance gets which one;
the expectations are therefore computed from the fake's record of what it answered.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from fake8x8.client import Fake8x8
from tests.support.databases import db_rows
from tests.support.live_relayflow import Relayflow
from tests.support.process_api import Api
from tests.support.processes import Processes, Worker, child_env, free_port, run_cli, wait_for

pytestmark = pytest.mark.slow

ACME_KEY = "acme-8x8-api-key-0001"
SECRET_KEY = "fault-injection-secret-key-of-sufficient-length"
SMS_INSTANCES = 100
CHAT_INSTANCES = 20
CRM_INSTANCES = 30
FAIL_RATE = 0.2
FAIL_MODES = ("500", "503", "429", "drop", "lost")
OUTAGE_SECONDS = 3
DEFAULT_SEED = 8_808_2024


def fault_seed() -> int:
    """A fixed seed by default (the same draws every run), RELAYFLOW_FAULT_SEED to vary it."""
    seed = int(os.environ.get("RELAYFLOW_FAULT_SEED") or DEFAULT_SEED)
    print(f"\nfault injection seed: {seed} (replay with RELAYFLOW_FAULT_SEED={seed})")
    return seed


def phone(n: int) -> str:
    return f"+6593{n:06d}"


# ---------------------------------------------------------------------------------------------
# 1. A flaky 8x8


@contextmanager
def serve_on_sqlite(fake: Fake8x8, workdir: Path) -> Iterator[Relayflow]:
    """`relayflow serve` on a SQLite file with the account `acme` sending through the fake."""
    port = free_port()
    env = {
        **child_env(),
        "RELAYFLOW_DATABASE_URL": f"sqlite:///{workdir / 'relayflow.db'}",
        "RELAYFLOW_SECRET_KEY": SECRET_KEY,
        "RELAYFLOW_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "RELAYFLOW_START_BURST": "10000",
    }
    account = run_cli(env, "accounts", "create", "acme")
    urls = fake.urls
    run_cli(
        env,
        *("accounts", "set-provider", "acme", "8x8", "--api-key", ACME_KEY),
        *("--sms-url", urls.sms, "--chatapps-url", urls.chatapps, "--voice-url", urls.voice),
    )
    with Processes(workdir) as procs:
        server = procs.serve(
            env["RELAYFLOW_DATABASE_URL"],
            "serve",
            port=port,
            secret_key=SECRET_KEY,
            public_url=env["RELAYFLOW_PUBLIC_URL"],
            start_burst="10000",
            http_allowlist="127.0.0.0/8",  # the fake's CRM site is on loopback
        )
        server.wait_healthy()
        http = httpx.Client(headers={"Authorization": f"Bearer {account['apiKey']}"}, timeout=30)
        try:
            yield Relayflow(server.base_url, account["apiKey"], account["webhookToken"], http)
            server.check_alive()
        finally:
            http.close()


def all_instances(relayflow: Relayflow, definition_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        page = relayflow.call(
            "GET",
            f"/definitions/{definition_id}/workflows",
            params={"limit": 500, "offset": len(found)},
        )
        found += page
        if len(page) < 500:
            return found


def is_2xx(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


def test_a_flaky_8x8_and_crm_lose_nothing(tmp_path: Path) -> None:
    began = time.monotonic()
    seed = fault_seed()
    sms_sub, chat_sub, crm_sub = "fi-sms-replies", "fi-chat-notices", "fi-crm-lookups"
    with Fake8x8(api_keys=(ACME_KEY,)) as fake, serve_on_sqlite(fake, tmp_path) as relayflow:
        sms_definition = relayflow.define(
            [
                {
                    "id": "reply",
                    "stepType": "SMS",
                    "inputs": {
                        "subAccountId": sms_sub,
                        "destination": "{{data.payload.source}}",
                        "text": "Re: {{data.payload.body}}",
                    },
                }
            ],
            "inbound_sms",
            sms_sub,
        )
        chat_definition = relayflow.define(
            [
                {
                    "id": "notice",
                    "stepType": "ChatAppsMessage",
                    "inputs": {
                        "subAccountId": chat_sub,
                        "user": {"msisdn": "{{data.phone}}"},
                        "type": "text",
                        "content": {"text": "Notice #{{data.n}}"},
                    },
                }
            ],
            "http_request",
            chat_sub,
        )
        crm_definition = relayflow.define(
            [
                {
                    "id": "lookup",
                    "stepType": "HttpRequest",
                    "inputs": {"url": fake.urls.crm + "/orders/{{data.n}}", "method": "GET"},
                    "outputs": {"code": "{{step.responseCode}}", "n": "{{step.responseBody.n}}"},
                }
            ],
            "http_request",
            crm_sub,
        )
        fake.fail_rate(FAIL_RATE, modes=FAIL_MODES, role="*", seed=seed, retry_after=1)

        def inbound(n: int) -> tuple[str, tuple[str, int]]:
            delivered = fake.inbound_sms(
                url=relayflow.webhook("sms"),
                from_=phone(n),
                to="+6580000000",
                text=f"message {n}",
                sub_account_id=sms_sub,
            )
            assert delivered["status"] == 200, delivered
            [workflow] = delivered["response"]["started"]
            return workflow, ("sms", n)

        def triggered(n: int) -> tuple[str, tuple[str, int]]:
            [workflow] = relayflow.call(
                "POST",
                "/triggers/http_request",
                params={"subAccountId": chat_sub},
                json={"phone": phone(n), "n": n},
            )["workflowIds"]
            return workflow, ("chat", n)

        def looked_up(n: int) -> tuple[str, tuple[str, int]]:
            [workflow] = relayflow.call(
                "POST", "/triggers/http_request", params={"subAccountId": crm_sub}, json={"n": n}
            )["workflowIds"]
            return workflow, ("crm", n)

        def start(first: int, last: int) -> dict[str, tuple[str, int]]:
            with ThreadPoolExecutor(max_workers=6) as pool:
                sms_starts = pool.map(inbound, range(first * 10, last * 10))
                chat_starts = pool.map(triggered, range(first * 2, last * 2))
                crm_starts = pool.map(looked_up, range(first * 3, last * 3))
                return dict([*sms_starts, *chat_starts, *crm_starts])

        # Half the starts under random faults, then an outage of everything while the other
        # half arrives, then random faults again until every instance has finished.
        started = start(0, 5)
        fake.outage("*", "503", seconds=OUTAGE_SECONDS)
        outage_began = time.monotonic()
        started.update(start(5, 10))
        assert len(started) == SMS_INSTANCES + CHAT_INSTANCES + CRM_INSTANCES
        definitions = {"sms": sms_definition, "chat": chat_definition, "crm": crm_definition}

        def settled() -> dict[str, dict[str, Any]]:  # empty (falsy) until all have finished
            listed = {
                i["workflowId"]: i
                for d in definitions.values()
                for i in all_instances(relayflow, d)
            }
            done = all(i["status"] in ("Complete", "Terminated") for i in listed.values())
            return listed if done and len(listed) >= len(started) else {}

        listed = wait_for(settled, "every instance to finish", deadline_s=120, interval_s=0.25)
        drained_after = time.monotonic() - outage_began - OUTAGE_SECONDS
        assert set(listed) == set(started), "an instance is missing, or one nobody started"

        # The fake's record: every attempt of every send or call, keyed by clientMessageId
        # (8x8) or path (CRM).
        attempts: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for request in fake.requests():
            if request["role"] == "crm":
                attempts[request["path"]].append(request)
            elif request["subAccountId"] in (sms_sub, chat_sub):
                attempts[request["body"]["clientMessageId"]].append(request)

        accounted: set[str] = set()
        retried_then_sent = duplicates = 0
        for workflow, (kind, n) in started.items():
            instance = relayflow.call(
                "GET",
                f"/definitions/{definitions[kind]}/workflows/{workflow}",
                params={"includeLogs": "true"},
            )
            assert instance["status"] == "Complete", (workflow, instance)
            [log] = instance["logs"]
            assert log["status"] == "Complete"
            # The step execution is the clientMessageId of every attempt of one message.
            key = f"/orders/{n}" if kind == "crm" else log["id"]
            accounted.add(key)
            tries = attempts[key]
            assert tries, f"{workflow}: the fake never saw its send"
            if kind == "sms":
                expected_body = {"destination": phone(n), "text": f"Re: message {n}"}
            elif kind == "chat":
                expected_body = {"user": {"msisdn": phone(n)}, "content": {"text": f"Notice #{n}"}}
            else:
                expected_body = {}
            for attempt in tries:
                body = attempt["body"] or {}  # a GET to the CRM has none
                assert body.items() >= expected_body.items(), (workflow, attempt)
            accepted = [a for a in tries if is_2xx(a["status"])]
            answered = [a for a in accepted if a["fault"] is None]
            # Delivered: answered exactly once, as its last attempt; before that only failures
            # and accepted requests whose answer was lost (the only source of duplicates).
            assert len(answered) == 1, (workflow, tries)
            assert tries[-1] is answered[0], f"{workflow}: sent again after an answer"
            for attempt in tries[:-1]:
                assert attempt["fault"] in FAIL_MODES, (workflow, tries)
                if is_2xx(attempt["status"]):
                    assert attempt["fault"] == "lost", (workflow, tries)
            # The step log counts the attempts the fake saw (aiohttp itself repeats a GET once
            # when a reused keep-alive connection turns out closed: one attempt, two requests).
            made = log.get("retry", {"attempts": 1})["attempts"]
            if kind == "crm":
                assert made <= len(tries), (workflow, log, tries)
            else:
                assert made == len(tries), (workflow, log, tries)
            if kind == "crm":
                assert instance["data"]["code"] == 200
                assert instance["data"]["n"] == answered[0]["answer"]["n"]
            retried_then_sent += len(tries) > 1
            duplicates += len(accepted) - 1
        assert set(attempts) == accounted, "the fake saw sends of no known instance"

        every = [a for tries in attempts.values() for a in tries]
        faults = Counter(a["fault"] for a in every if a["fault"])
        assert faults["lost"] >= duplicates
        assert set(faults) >= {"500", "503", "429", "drop", "lost"}, faults
        print(
            f"flaky 8x8 (seed {seed}): {len(started)} instances, {len(every)} attempts, "
            f"injected {dict(faults)}; all Complete ({retried_then_sent} after a retry); "
            f"duplicates={duplicates} (all after a lost answer); backlog drained "
            f"{drained_after:.1f} s after the {OUTAGE_SECONDS} s outage; "
            f"{time.monotonic() - began:.1f} s"
        )


# ---------------------------------------------------------------------------------------------
# 2. PostgreSQL restarted under load


def postgres_bindir() -> Path | None:
    candidates: list[Path] = []
    if shutil.which("pg_config"):
        found = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=False
        )
        if found.returncode == 0:
            candidates.append(Path(found.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    return None


@dataclass
class Cluster:
    """A throw-away PostgreSQL cluster in `base`, run as the `postgres` OS user when root."""

    bindir: Path
    base: Path
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/relayflow"

    def run(self, tool: str, *args: str) -> str:
        command = [str(self.bindir / tool), *args]
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, (
            f"{tool} {args}: {done.stdout}\n{done.stderr}\npostgres.log:\n{self.log()[-3000:]}"
        )
        return done.stdout

    def pg_ctl(self, action: str, *args: str) -> None:
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run(
            "pg_ctl",
            *("-D", str(self.data), "-l", str(self.base / "postgres.log"), "-w", "-t", "60"),
            *("-o", options, action, *args),
        )

    def create(self) -> None:
        self.run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.pg_ctl("start")
        self.run(
            "createdb", "-h", str(self.base), "-p", str(self.port), "-U", "postgres", "relayflow"
        )

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "stop", "-m", "fast")

    def log(self) -> str:
        path = self.base / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    bindir = postgres_bindir()
    user: pwd.struct_passwd | None = None
    as_root = os.geteuid() == 0
    if as_root and shutil.which("runuser"):
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            user = None
    if bindir is None or (as_root and user is None):
        reason = "PostgreSQL server binaries (initdb, pg_ctl) or, as root, runuser and the "
        reason += "postgres OS user are missing: cannot run a throw-away cluster"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    # Not under pytest's tmp dir: its parents are private to root, and postgres must reach it.
    base = Path(tempfile.mkdtemp(prefix="relayflow-pg-"))
    if user is not None:
        os.chown(base, user.pw_uid, user.pw_gid)
    cluster = Cluster(bindir, base)
    try:
        cluster.create()
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(base, ignore_errors=True)


NOTIFY = {
    "trigger": "http_request",
    "status": "enabled",
    "definition": {
        "name": "notify",
        "steps": [
            {
                "id": "nap",
                "stepType": "Wait",
                "inputs": {"duration": "00:00:01"},
                "nextStepId": "send",
            },
            {
                "id": "send",
                "stepType": "SMS",
                "inputs": {
                    "subAccountId": "acme_sms",
                    "destination": "{{data.phone}}",
                    "text": "Hello #{{data.n}}",
                },
            },
        ],
    },
}


class Stream(threading.Thread):
    """Starts instances one after another; a request that fails (the database is down) is
    retried until relayflow accepts it. Accepted starts are counted by their workflow ids."""

    def __init__(self, api: Api) -> None:
        super().__init__(daemon=True)
        self.api = api
        self.accepted: dict[str, int] = {}  # workflowId -> n
        self.failed_requests: list[tuple[int, str]] = []  # (n, what went wrong)
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            n = 0
            while not self.stop.is_set():
                self.start_one(n)
                n += 1
                time.sleep(0.01)
        except BaseException as error:  # reported by the test thread
            self.error = error

    def start_one(self, n: int) -> None:
        deadline = time.monotonic() + 60
        path = f"{self.api.prefix}/triggers/http_request"
        while True:
            try:
                response = self.api.http.post(path, json={"phone": phone(n), "n": n}, timeout=10)
                if response.status_code == 200:
                    [workflow] = response.json()["workflowIds"]
                    self.accepted[workflow] = n
                    return
                problem = f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as error:
                problem = repr(error)
            self.failed_requests.append((n, problem))
            if time.monotonic() > deadline:
                raise AssertionError(f"start #{n} not accepted within 60 s: {problem}")
            time.sleep(0.2)

    def wait_accepted(self, count: int, what: str) -> None:
        def enough() -> bool:
            if self.error is not None:
                raise self.error
            return len(self.accepted) >= count

        wait_for(enough, what, deadline_s=90, interval_s=0.05)

    def finish(self) -> dict[str, int]:
        self.stop.set()
        self.join(timeout=90)
        if self.error is not None:
            raise self.error
        return dict(self.accepted)


def listeners(cluster: Cluster) -> int:
    """Backends of this cluster that LISTEN for relayflow's wake-ups."""
    [(count,)] = db_rows(
        cluster.url, "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'LISTEN %'"
    )
    return int(count)


def worker_events(worker: Worker) -> Counter[str]:
    """structlog events at error level (claim_failed, sprint_failed, ...) of a worker."""
    return Counter(str(entry.get("event")) for entry in worker.error_logs())


def cut_off_sprints(workers: list[Worker]) -> Counter[str]:
    """Instance id -> number of its sprints that failed (the database went away mid-sprint)."""
    cut: Counter[str] = Counter()
    for worker in workers:
        for entry in worker.error_logs():
            if entry.get("event") == "sprint_failed":
                cut[str(entry.get("instance"))] += 1
    return cut


def test_postgres_restarted_under_load(cluster: Cluster, tmp_path: Path) -> None:
    began = time.monotonic()
    env = child_env()
    account = run_cli(env, "accounts", "create", "acme", "--db", cluster.url)
    with Processes(tmp_path) as procs:
        workers = [
            procs.worker(cluster.url, f"worker-{n}", worker_lease_seconds="5") for n in (1, 2)
        ]
        server = procs.api(cluster.url, "api", start_burst="100000")
        server.wait_healthy()
        for worker in workers:
            worker.wait_started()
        pids = {child.name: child.pid for child in procs.children}
        api = Api(server.base_url, account["accountId"], account["apiKey"])
        stream = Stream(api)
        try:
            definition_id = api.define(NOTIFY)
            listening_before = listeners(cluster)
            stream.start()
            stream.wait_accepted(60, "60 accepted starts before the restart")
            before_restart = len(stream.accepted)
            restart_began = time.monotonic()
            cluster.pg_ctl("restart", "-m", "fast")
            restart_s = time.monotonic() - restart_began
            after_restart = len(stream.accepted)
            stream.wait_accepted(after_restart + 60, "60 accepted starts after the restart")
            accepted = stream.finish()

            def finished() -> list[dict[str, Any]]:  # empty (falsy) until all are Complete
                listed = api.instances(definition_id)
                by_id = {i["workflowId"]: i for i in listed}
                ready = set(accepted) <= set(by_id) and all(
                    i["status"] == "Complete" for i in listed
                )
                bad = [i for i in listed if i["status"] not in ("Runnable", "Complete")]
                assert not bad, f"instances ended badly: {bad}"
                return listed if ready else []

            listed = wait_for(
                finished, "every instance to complete", deadline_s=120, interval_s=0.5
            )
            listed_ids = {i["workflowId"] for i in listed}
            # A start whose answer was lost (an error while committing) may still have started:
            # such an instance must belong to a request that failed, and it completes too.
            orphans = {
                i["workflowId"]: i["data"]["n"] for i in listed if i["workflowId"] not in accepted
            }
            failed_ns = {n for n, _ in stream.failed_requests}
            assert set(orphans.values()) <= failed_ns, f"instances nobody started: {orphans}"
            assert set(accepted) <= listed_ids

            # One SMS per instance; a sprint cut off by the restart may repeat its send once.
            sent = api.sent_by_instance()
            assert set(sent) <= listed_ids, "a message from an unknown instance"
            everyone = {**accepted, **orphans}
            for workflow, n in everyone.items():
                messages = sent.get(workflow, [])
                assert messages, f"{workflow} (#{n}) sent nothing"
                assert set(messages) == {(phone(n), f"Hello #{n}")}, (workflow, messages)
            cut = cut_off_sprints(workers)
            duplicates = {w: len(sent[w]) - 1 for w in everyone if len(sent[w]) > 1}
            over = {w: (d, cut[w]) for w, d in duplicates.items() if d > cut[w]}
            assert not over, f"more duplicates than cut-off sprints (dupes, cut): {over}"
            # How each duplicate came about: the step executions (pointers) that sent, and
            # whether the instance kept them (a pointer the cut-off sprint never saved is lost).
            dup_sql = ", ".join(f"'{w}'" for w in duplicates) or "''"
            sent_by = db_rows(
                cluster.url,
                f"SELECT instance_id, pointer_id FROM messages WHERE instance_id IN ({dup_sql})",
            )
            kept = {p for (p,) in db_rows(cluster.url, "SELECT id FROM pointers")}
            how: dict[str, list[tuple[str, str]]] = defaultdict(list)
            for instance_id, pointer_id in sent_by:
                how[instance_id].append(("kept" if pointer_id in kept else "lost", pointer_id))

            # The same processes are still up, and both workers worked after the restart.
            for child in procs.children:
                child.check_alive()
                assert child.pid == pids[child.name]
            late = [w for w, n in accepted.items() if n >= after_restart]
            rows = db_rows(
                cluster.url,
                "SELECT DISTINCT detail_json FROM instance_events WHERE type = 'step_started' "
                "AND instance_id IN (" + ", ".join(f"'{w}'" for w in late) + ")",
            )
            owners_after = {json.loads(detail)["worker"] for (detail,) in rows if detail}
            assert owners_after == {w.owner for w in workers}, (owners_after, late[:3])
            listening_after = listeners(cluster)

            errors = {w.name: dict(worker_events(w)) for w in workers}
            print(
                f"\npostgres restart: {len(accepted)} accepted starts ({before_restart} before, "
                f"{len(accepted) - after_restart} after the {restart_s:.1f} s restart), "
                f"{len(stream.failed_requests)} failed start requests retried "
                f"{dict(Counter(problem[:60] for _, problem in stream.failed_requests))}, "
                f"{len(orphans)} started without an answer; all Complete; "
                f"SMS sent {sum(len(m) for m in sent.values())}, "
                f"duplicates {sum(duplicates.values())} "
                f"(cut-off sprints {sum(cut.values())} on {len(cut)} instances; "
                f"sending pointers per duplicated instance {dict(how)}); "
                f"worker errors {errors}; LISTEN connections {listening_before} before, "
                f"{listening_after} after; {time.monotonic() - began:.1f} s"
            )
        finally:
            stream.stop.set()
            if stream.is_alive():
                stream.join(timeout=30)
            api.close()
