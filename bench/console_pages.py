"""Console page latency with 100,000 instances in the database (issue 10, item 8).

Goal: the definitions list, the instance list and the instance page answer in under 100 ms
server-side with 100,000 instances stored. This script builds such a database (SQLite file or a
fresh PostgreSQL database), serves the whole app in-process (httpx's ASGI transport: no network,
no uvicorn), signs in through /console/login like a browser, and times each page with
`time.perf_counter()` around the request (30 repetitions after a warm-up; p50 / p95 / max).

It then replays every SQL statement a page ran, alone on a raw driver connection, so the report
can say how much of a page is the database and which statement it is (with its plan). With
`--what-if` it finally adds candidate indexes to the bench database (never to relayflow's
schema) and times the pages again, and times alone the statements of fixes that need code
(keyset paging, an indexed contact table, ...), checking that they return the same rows.

    .venv/bin/python -m bench.console_pages --db sqlite --out
    .venv/bin/python -m bench.console_pages --db pg --instances 100000 --out --explain --what-if

Before it builds and again before it measures, it waits (up to --wait-minutes) while another
`python -m bench.run` is running: the machine has 2 cores.

Data: one account, the gallery's survey definition in three versions (plus the other gallery
definitions, without instances), N instances of it started over 30 days (62 % Complete, 20 %
Terminated, 13 % Runnable = waiting for a reply, 5 % Suspended), each with the pointers, audit
events, sent messages (+ a delivery receipt) and errors the engine would have written for that
path, and one long instance of 1,000 step executions with 3,000 audit events. Rows are inserted
with SQLAlchemy Core in batches (one transaction per batch), not through the engine: building
the database takes seconds instead of hours. PostgreSQL is VACUUM ANALYZEd afterwards (what
autovacuum does on its own after such a load); SQLite is left as relayflow leaves it (no
ANALYZE, relayflow never runs one).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import secrets
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, insert, text

from bench.stats import percentile, run_fast
from relayflow.api.app import create_app
from relayflow.api.context import AppContext
from relayflow.config import Settings
from relayflow.engine.contacts import contacts_of
from relayflow.services.messages import MessageService
from relayflow.store.database import Database
from relayflow.store.tables import (
    instance_contacts,
    instance_events,
    instances,
    message_receipts,
    messages,
    pointers,
    workflow_errors,
)

ROOT = Path(__file__).resolve().parents[1]
GALLERY = ROOT / "src/relayflow/console/static/gallery"
OUT = ROOT / "bench/out"
PG_ADMIN_DSN = os.environ.get("RELAYFLOW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
ACCOUNT = "acme"
DAY_MS = 86_400_000
GOAL_MS = 100.0
BATCH = 2000  # instances per insert transaction
# Share of instances per status (the rest is Complete).
STATUS_MIX = (("Terminated", 0.20), ("Runnable", 0.13), ("Suspended", 0.05))
# Instances older than this many days started on version 1, then version 2; the rest on 3.
VERSION_AGES = ((25.5, 1), (18.0, 2))
LONG_POINTERS = 1000


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------------------------------
# Waiting for a quiet machine


def other_benchmarks() -> list[str]:
    """Command lines of running `python -m bench.run` processes (another benchmark would take
    the 2 cores this one measures on, and this one would disturb its figures)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [part.decode(errors="replace") for part in argv if part]
        if any(a == "-m" and b == "bench.run" for a, b in itertools.pairwise(args)):
            found.append(" ".join(args))
    return found


def wait_until_quiet(max_minutes: float, every_s: float = 30.0) -> dict[str, Any]:
    started = time.monotonic()
    while True:
        running = other_benchmarks()
        waited = time.monotonic() - started
        if not running:
            return {"waitedS": round(waited), "otherBenchmarkRunning": False}
        if waited >= max_minutes * 60:
            log(f"still running after {max_minutes} min, going on anyway: {running[0]}")
            return {"waitedS": round(waited), "otherBenchmarkRunning": True}
        log(f"waiting for another benchmark to end ({running[0][:90]})")
        time.sleep(every_s)


# ---------------------------------------------------------------------------------------------
# Database


@dataclass
class BenchDb:
    kind: str  # sqlite | pg
    url: str
    path: Path | None = None
    pg_name: str | None = None


async def _pg_admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _pg_url(name: str) -> str:
    base, _, _ = PG_ADMIN_DSN.rpartition("/")
    return f"{base}/{name}"


async def create_database(kind: str, directory: Path) -> BenchDb:
    if kind == "sqlite":
        path = directory / "relayflow.db"
        return BenchDb("sqlite", f"sqlite:///{path}", path=path)
    name = f"relayflow_bench_console_{secrets.token_hex(4)}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    return BenchDb("pg", _pg_url(name), pg_name=name)


async def drop_database(bench_db: BenchDb) -> None:
    if bench_db.pg_name is not None:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{bench_db.pg_name}" WITH (FORCE)')


# ---------------------------------------------------------------------------------------------
# Data


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


@dataclass
class Rows:
    instances: list[dict[str, Any]] = field(default_factory=list)
    pointers: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    receipts: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    contacts: list[dict[str, Any]] = field(default_factory=list)

    def count(self) -> int:
        return sum(
            len(rows)
            for rows in (
                self.instances,
                self.pointers,
                self.events,
                self.messages,
                self.receipts,
                self.errors,
                self.contacts,
            )
        )


class Trail:
    """The rows of one instance, in the order the engine writes them."""

    def __init__(self, generator: Generator, rows: Rows, instance_id: str) -> None:
        self.generator = generator
        self.rows = rows
        self.id = instance_id
        self.seq = 0

    def event(
        self, kind: str, step: str | None, at_ms: int, detail: dict[str, Any] | None = None
    ) -> None:
        self.rows.events.append(
            {
                "instance_id": self.id,
                "type": kind,
                "step_id": step,
                "at_ms": at_ms,
                "detail_json": _json(detail) if detail is not None else None,
            }
        )

    def pointer(
        self, step: str, status: str, at_ms: int, state: dict[str, Any], **extra: Any
    ) -> str:
        pointer_id = self.generator.uuid()
        done = status in ("Complete", "Cancelled", "Failed")
        self.rows.pointers.append(
            {
                "id": pointer_id,
                "instance_id": self.id,
                "seq": self.seq,
                "step_id": step,
                "parent_id": None,
                "status": status,
                "started_at_ms": at_ms,
                "completed_at_ms": at_ms + 40 if done else None,
                "wake_at_ms": extra.get("wake_at_ms"),
                "event_key": extra.get("event_key"),
                "event_json": extra.get("event_json"),
                "state_json": _json(state),
                "attempt": 0 if step == "answer" else 1,
            }
        )
        self.seq += 1
        return pointer_id

    def sms(self, step: str, phone: str, text_: str, at_ms: int, worker: dict[str, Any]) -> None:
        """An SMS step: its events, its pointer, the message sent and its delivery receipt."""
        self.event("step_started", step, at_ms, worker)
        inputs = {"subAccountId": "acme_sms", "destination": phone, "text": text_}
        umid = self.generator.uuid()
        result = {"umid": umid, "status": {"state": "queued"}}
        pointer_id = self.pointer(step, "Complete", at_ms, {"inputs": inputs, "result": result})
        request = {"destination": phone, "text": text_, "clientMessageId": pointer_id}
        self.rows.messages.append(
            {
                "id": umid,
                "account_id": ACCOUNT,
                "instance_id": self.id,
                "pointer_id": pointer_id,
                "channel": "sms",
                "provider": "8x8",
                "sub_account_id": "acme_sms",
                "recipient": phone,
                "client_message_id": pointer_id,
                "request_json": _json(request),
                "response_json": _json({**result, "clientMessageId": pointer_id}),
                "status": "delivered",
                "created_at_ms": at_ms + 15,
                "updated_at_ms": at_ms + 900,
            }
        )
        status = {"state": "delivered", "detail": "delivered_to_handset"}
        self.rows.receipts.append(
            {
                "account_id": ACCOUNT,
                "umid": umid,
                "state": "delivered",
                "detail": "delivered_to_handset",
                "error_code": None,
                "error_message": None,
                "status_at": _iso(at_ms + 900),
                "payload_json": _json(
                    {
                        "namespace": "SMS",
                        "eventType": "outbound_message_status_changed",
                        "payload": {"umid": umid, "status": status},
                    }
                ),
                "received_at_ms": at_ms + 900,
            }
        )


class Generator:
    """Rows shaped like the ones the engine writes for the survey definition (ask SMS → wait
    for the reply → thanks or reminder SMS)."""

    def __init__(self, seed: int, instances: int, definition_id: str, now_ms: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - reproducible data, not crypto
        self.definition_id = definition_id
        self.now_ms = now_ms
        # ~10 instances per phone number: the contact filter finds about ten.
        self.phones = [
            f"+4477{self.rng.randrange(10**8):08d}" for _ in range(max(1, instances // 10))
        ]

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _status(self) -> str:
        draw = self.rng.random()
        for status, share in STATUS_MIX:
            if draw < share:
                return status
            draw -= share
        return "Complete"

    @staticmethod
    def _version(age_ms: int) -> int:
        for days, version in VERSION_AGES:
            if age_ms > days * DAY_MS:
                return version
        return 3

    def _data(self, phone: str, at_ms: int) -> dict[str, Any]:
        """An http_request trigger's body as the router stores it (+ accountId, triggeredAt)."""
        return {
            "phone": phone,
            "customer": {"name": f"Customer {self.rng.randrange(10**6)}", "tier": "gold"},
            "payload": {
                "umid": self.uuid(),
                "subAccountId": "acme_sms",
                "source": phone,
                "destination": "+6598765432",
                "body": "Booking confirmed, please rate us",
                "encoding": "GSM7",
                "timestamp": _iso(at_ms),
            },
            "accountId": ACCOUNT,
            "triggeredAt": _iso(at_ms),
        }

    def _instance_row(
        self, trail: Trail, version: int, status: str, data: dict[str, Any], start: int, **more: Any
    ) -> dict[str, Any]:
        return {
            "id": trail.id,
            "account_id": ACCOUNT,
            "definition_id": self.definition_id,
            "version": version,
            "sub_account_id": None,
            "status": status,
            "data_json": _json(data),
            "started_at_ms": start,
            "completed_at_ms": more.get("completed_at_ms"),
            "next_run_at_ms": more.get("next_run_at_ms"),
            "lease_owner": None,
            "lease_until_ms": None,
            "executions": trail.seq,
        }

    def instance(self, rows: Rows, *, status: str | None = None, age_ms: int | None = None) -> str:
        """One survey instance on the path its status implies."""
        rng = self.rng
        trail = Trail(self, rows, f"{rng.getrandbits(96):024x}")
        age = age_ms if age_ms is not None else rng.randrange(30 * DAY_MS)
        start = self.now_ms - age
        status = status or self._status()
        phone = rng.choice(self.phones)
        data = self._data(phone, start)
        worker = {"worker": f"worker-{rng.randrange(4)}"}
        trail.event("instance_started", None, start)
        trail.sms("ask", phone, "How did we do? Reply 1 (great) to 5 (poor).", start + 5, worker)
        trail.event("step_completed", "ask", start + 45, {"status": "Complete", "next": ["answer"]})
        trail.event("step_started", "answer", start + 50, worker)
        trail.event("wait_started", "answer", start + 51, {"until": start + DAY_MS})
        wait = {"inputs": {"from": phone, "channel": "sms", "timeout": "1.00:00:00"}}
        key = f"sms:{phone}"
        if status in ("Runnable", "Suspended"):
            due = start + DAY_MS
            waiting = "WaitingForEvent"
            trail.pointer("answer", waiting, start + 50, wait, wake_at_ms=due, event_key=key)
            if status == "Suspended":
                trail.event("instance_suspended", None, start + rng.randrange(60_000, DAY_MS))
            return self._finish(trail, age, status, data, start, next_run_at_ms=start + DAY_MS)
        if status == "Terminated":
            trail.pointer("answer", "Cancelled", start + 50, wait)
            ended = start + rng.randrange(60_000, DAY_MS)
            reason = "Terminated through the API."
            if rng.random() < 0.5:
                reason = "Step 'answer': expression error: data.score is not defined."
                trail.event("step_failed", "answer", ended, {"message": reason})
                rows.errors.append(
                    {
                        "instance_id": trail.id,
                        "step_id": "answer",
                        "message": reason,
                        "error_time_ms": ended,
                    }
                )
            trail.event("instance_terminated", "answer", ended, {"reason": reason})
            return self._finish(trail, age, status, data, start, completed_at_ms=ended)
        replied = rng.random() < 0.7
        when = start + (rng.randrange(30_000, 4 * 3_600_000) if replied else DAY_MS)
        reply = {"payload": {"source": phone, "body": str(rng.randint(1, 5))}}
        state = {**wait, "result": {"reply": reply} if replied else {}}
        event_json = _json(reply) if replied else None
        trail.pointer("answer", "Complete", start + 50, state, event_key=key, event_json=event_json)
        if replied:
            trail.event("reply_received", "answer", when)
            data["score"] = reply["payload"]["body"]
        follow = "thanks" if replied else "remind"
        trail.event("step_completed", "answer", when + 5, {"status": "Complete", "next": [follow]})
        text_ = "Thanks for your feedback!" if replied else "A gentle reminder: 1 to 5?"
        trail.sms(follow, phone, text_, when + 10, worker)
        trail.event("step_completed", follow, when + 45, {"status": "Complete", "next": []})
        trail.event("instance_completed", None, when + 50)
        return self._finish(trail, age, status, data, start, completed_at_ms=when + 50)

    def _finish(
        self, trail: Trail, age: int, status: str, data: dict[str, Any], start: int, **more: Any
    ) -> str:
        version = self._version(age)
        trail.rows.instances.append(self._instance_row(trail, version, status, data, start, **more))
        self._contacts(trail, data)
        return trail.id

    def _contacts(self, trail: Trail, data: dict[str, Any]) -> None:
        """What the engine records at start for the contact filter (engine/contacts.py)."""
        trail.rows.contacts.extend(
            {"account_id": ACCOUNT, "contact": contact, "instance_id": trail.id}
            for contact in contacts_of({k: v for k, v in data.items() if k != "triggeredAt"})
        )

    def long_instance(self, rows: Rows) -> str:
        """An instance that looped (ask → answer → remind → answer → …): 1,000 step executions,
        3 audit events each, an SMS (+ receipt) for every other step; now waiting."""
        trail = Trail(self, rows, f"{self.rng.getrandbits(96):024x}")
        phone = self.phones[0]
        start = self.now_ms - 2 * DAY_MS
        trail.event("instance_started", None, start)
        cycle = ("ask", "answer", "remind", "answer")
        worker = {"worker": "worker-1"}
        at = start
        for seq in range(LONG_POINTERS):
            step, after = cycle[seq % 4], cycle[(seq + 1) % 4]
            at += 60_000
            if seq == LONG_POINTERS - 1:  # the last one waits for a reply
                trail.event("step_started", step, at, worker)
                wait = {"inputs": {"from": phone, "channel": "sms"}}
                key = f"sms:{phone}"
                trail.pointer(
                    step, "WaitingForEvent", at, wait, wake_at_ms=at + DAY_MS, event_key=key
                )
                trail.event("wait_started", step, at + 1, {"until": at + DAY_MS})
            elif step == "answer":
                trail.event("step_started", step, at, worker)
                trail.pointer(
                    step, "Complete", at, {"inputs": {"from": phone}}, event_key=f"sms:{phone}"
                )
                trail.event("reply_received", step, at + 20)
            else:
                trail.sms(step, phone, f"Message {seq}", at, worker)
            if seq < LONG_POINTERS - 1:
                trail.event(
                    "step_completed", step, at + 40, {"status": "Complete", "next": [after]}
                )
        row = self._instance_row(
            trail, 3, "Runnable", self._data(phone, start), start, next_run_at_ms=at + DAY_MS
        )
        rows.instances.append(row)
        self._contacts(trail, self._data(phone, start))
        return trail.id


async def insert_rows(db: Database, rows: Rows) -> None:
    async with db.transaction() as conn:
        for table, batch in (
            (instances, rows.instances),
            (pointers, rows.pointers),
            (instance_events, rows.events),
            (messages, rows.messages),
            (message_receipts, rows.receipts),
            (workflow_errors, rows.errors),
            (instance_contacts, rows.contacts),
        ):
            if batch:
                await conn.execute(insert(table), batch)


@dataclass
class Dataset:
    definition_id: str
    api_key: str
    short_id: str
    long_id: str
    contact: str
    contact_matches: int
    latest_count: int
    rows: int
    seconds: float


async def build(ctx: AppContext, count: int, seed: int) -> Dataset:
    started = time.perf_counter()
    account = await ctx.accounts.create(ACCOUNT)
    for name in ("sms-auto-reply", "http-lookup", "ivr"):
        await ctx.definitions.create(ACCOUNT, json.loads((GALLERY / f"{name}.json").read_text()))
    body = json.loads((GALLERY / "survey.json").read_text())
    body["definition"]["steps"][0]["inputs"]["subAccountId"] = "acme_sms"
    row = await ctx.definitions.create(ACCOUNT, body)
    for text_ in ("How was your stay? Reply 1 to 5.", "How did we do? Reply 1 (great) to 5."):
        body["definition"]["steps"][0]["inputs"]["text"] = text_
        await ctx.definitions.update(ACCOUNT, row.id, body)
    generator = Generator(seed, count, row.id, ctx.clock.now_ms())
    total = 0
    short_id = ""
    made = 0
    while made < count:
        rows = Rows()
        size = min(BATCH, count - made)
        for _ in range(size):
            generator.instance(rows)
        if not short_id:  # a finished instance on the latest version, from yesterday
            short_id = generator.instance(rows, status="Complete", age_ms=DAY_MS)
        made += size
        total += rows.count()
        await insert_rows(ctx.db, rows)
        if made % 20_000 < BATCH:
            log(f"  {made:,} instances ({total:,} rows, {time.perf_counter() - started:.0f} s)")
    rows = Rows()
    long_id = generator.long_instance(rows)
    total += rows.count()
    await insert_rows(ctx.db, rows)
    async with ctx.db.read() as conn:
        contact, matches = await _contact(conn, generator.phones)
        latest = await conn.scalar(
            text("SELECT count(*) FROM instances WHERE definition_id = :d AND version = 3"),
            {"d": row.id},
        )
    if ctx.db.is_sqlite:
        _sqlite_checkpoint(str(ctx.db.url.database))
    else:
        await _pg_vacuum(ctx.db)
    return Dataset(
        definition_id=row.id,
        api_key=account.api_key,
        short_id=short_id,
        long_id=long_id,
        contact=contact,
        contact_matches=matches,
        latest_count=int(latest or 0),
        rows=total,
        seconds=time.perf_counter() - started,
    )


async def _contact(conn: Any, phones: list[str]) -> tuple[str, int]:
    """A number of the pool (written the way a person types it) and its instances' count."""
    phone = phones[len(phones) // 2]
    matches = await conn.scalar(
        text("SELECT count(*) FROM instances WHERE data_json LIKE :p"), {"p": f"%{phone[1:]}%"}
    )
    spaced = f"+{phone[1:3]} {phone[3:7]} {phone[7:]}"
    return spaced, int(matches or 0)


def _sqlite_checkpoint(path: str) -> None:
    """Fold the load's WAL into the database file, as SQLite's automatic checkpoints would."""
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


async def _pg_vacuum(db: Database) -> None:
    import asyncpg

    dsn = db.url.set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


# ---------------------------------------------------------------------------------------------
# The console, signed in


async def sign_in(client: httpx.AsyncClient, api_key: str) -> None:
    page = await client.get("/console/login")
    token = re.search(r'name="signin" value="([^"]+)"', page.text)
    assert token is not None, page.text[:300]
    answer = await client.post("/console/login", data={"signin": token.group(1), "apiKey": api_key})
    assert answer.status_code == 303, answer.text[:300]


def pages_of(data: Dataset) -> list[tuple[str, str]]:
    d = f"/console/definitions/{data.definition_id}"
    deep = max(0, min(50_000, data.latest_count - 100))
    contact = data.contact.replace("+", "%2B").replace(" ", "+")
    return [
        ("definitions list (counts by status)", "/console/definitions"),
        ("instances, first page", f"{d}/workflows"),
        ("instances, status=Terminated", f"{d}/workflows?status=Terminated"),
        ("instances, version=all", f"{d}/workflows?version=all"),
        (f"instances, contact (~{data.contact_matches} match)", f"{d}/workflows?contact={contact}"),
        (f"instances, offset={deep:,}", f"{d}/workflows?offset={deep}"),
        ("instance page, 3 steps", f"{d}/workflows/{data.short_id}"),
        (f"instance page, {LONG_POINTERS:,} steps", f"{d}/workflows/{data.long_id}"),
        ("definition (graph) page", d),
        ("versions (diff) page", f"{d}/versions"),
    ]


def _rows_on_page(html: str) -> int:
    return len(re.findall(r'href="/console/definitions/[^/"]+/workflows/[0-9a-f]{24}"', html))


async def time_pages(
    client: httpx.AsyncClient, pages: list[tuple[str, str]], reps: int, warmup: int
) -> list[dict[str, Any]]:
    results = []
    pages = list(pages)
    for name, url in list(pages):
        if "?offset=" in url:
            # The same depth by keyset: the "Older" link of the page at that offset.
            html = (await client.get(url)).text
            older = re.search(r'href="\?([^"]*)" id="older"', html)
            if older is not None:
                base = url.split("?", 1)[0]
                keyset = f"{base}?{older.group(1).replace('&amp;', '&')}"
                pages.insert(
                    pages.index((name, url)) + 1, (name.replace("offset", "keyset"), keyset)
                )
    for name, url in pages:
        for _ in range(warmup):
            response = await client.get(url)
            assert response.status_code == 200, (url, response.status_code, response.text[:300])
        samples = []
        for _ in range(reps):
            began = time.perf_counter()
            response = await client.get(url)
            samples.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        ordered = sorted(samples)
        results.append(
            {
                "page": name,
                "url": url,
                "reps": reps,
                "p50": percentile(ordered, 0.50),
                "p95": percentile(ordered, 0.95),
                "max": ordered[-1],
                "mean": statistics.fmean(ordered),
                "bytes": len(response.content),
                "links": _rows_on_page(response.text),
            }
        )
        log(f"  {name:<38} p50 {results[-1]['p50']:7.1f}  p95 {results[-1]['p95']:7.1f} ms")
    return results


# ---------------------------------------------------------------------------------------------
# Where the time goes: every statement of a page, replayed alone on a raw connection


class StatementLog:
    """The SQL a page runs (text + driver parameters), captured from SQLAlchemy's cursor
    events. Only attached for this pass: any engine event listener slows every statement."""

    def __init__(self, db: Database) -> None:
        engine = db._sqlite if db.is_sqlite else db._postgres.sync_engine  # type: ignore[union-attr]
        assert engine is not None
        self.engine = engine
        self.statements: list[tuple[str, Any]] = []

    def _record(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        self.statements.append((statement, parameters))

    def __enter__(self) -> StatementLog:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_: Any) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)


class Replayer:
    """Runs a captured statement with its parameters on a plain driver connection, fetching
    every row, and times it; and explains it."""

    def __init__(self, bench_db: BenchDb, db: Database) -> None:
        self.bench_db = bench_db
        self.db = db
        self._sqlite: sqlite3.Connection | None = None
        self._pg: Any = None

    async def open(self) -> None:
        if self.bench_db.path is not None:
            self._sqlite = sqlite3.connect(str(self.bench_db.path))
        else:
            import asyncpg

            dsn = self.db.url.set(drivername="postgresql").render_as_string(hide_password=False)
            self._pg = await asyncpg.connect(dsn, timeout=10)

    async def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            await self._pg.close()

    async def run(self, statement: str, parameters: Any) -> float:
        began = time.perf_counter()
        if self._sqlite is not None:
            self._sqlite.execute(statement, parameters or ()).fetchall()
        else:
            await self._pg.fetch(statement, *(parameters or ()))
        return (time.perf_counter() - began) * 1000

    async def execute(self, statement: str) -> None:
        """DDL / maintenance on the bench database (the what-if pass)."""
        if self._sqlite is not None:
            self._sqlite.execute(statement)
            self._sqlite.commit()
        else:
            await self._pg.execute(statement)

    def native(self, sql: str) -> str:
        """`?` placeholders as the driver wants them."""
        if self._sqlite is not None:
            return sql
        parts = sql.split("?")
        return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))

    async def fetch(self, sql: str, *parameters: Any) -> list[tuple[Any, ...]]:
        if self._sqlite is not None:
            return list(self._sqlite.execute(sql, parameters).fetchall())
        return [tuple(row) for row in await self._pg.fetch(self.native(sql), *parameters)]

    async def timed(self, sql: str, parameters: tuple[Any, ...], reps: int) -> float:
        statement = self.native(sql)
        return statistics.median([await self.run(statement, parameters) for _ in range(reps)])

    async def explain(self, statement: str, parameters: Any) -> str:
        if self._sqlite is not None:
            plan = self._sqlite.execute("EXPLAIN QUERY PLAN " + statement, parameters or ())
            return "\n".join(f"{row[0]:>3} {row[1]:>3}  {row[3]}" for row in plan)
        rows = await self._pg.fetch("EXPLAIN (ANALYZE, BUFFERS) " + statement, *(parameters or ()))
        return "\n".join(row[0] for row in rows)


def _short(statement: str) -> str:
    flat = " ".join(statement.split())
    flat = re.sub(r"SELECT .*? FROM", "SELECT … FROM", flat, count=1)
    return flat[:160]


async def profile_pages(
    client: httpx.AsyncClient,
    bench_db: BenchDb,
    db: Database,
    pages: list[tuple[str, str]],
    reps: int,
) -> dict[str, Any]:
    replayer = Replayer(bench_db, db)
    await replayer.open()
    profile: dict[str, Any] = {}
    try:
        for name, url in pages:
            with StatementLog(db) as captured:
                response = await client.get(url)
                assert response.status_code == 200
            statements = captured.statements
            timed = []
            for statement, parameters in statements:
                samples = sorted([await replayer.run(statement, parameters) for _ in range(reps)])
                timed.append((statistics.median(samples), statement, parameters))
            total = sum(ms for ms, _, _ in timed)
            slowest = sorted(timed, key=lambda item: -item[0])[:2]
            profile[name] = {
                "statements": len(statements),
                "sqlMs": total,
                "slowest": [
                    {
                        "ms": ms,
                        "sql": " ".join(statement.split()),
                        "short": _short(statement),
                        "parameters": [str(p) for p in (parameters or ())],
                        "plan": await replayer.explain(statement, parameters),
                    }
                    for ms, statement, parameters in slowest
                ],
            }
    finally:
        await replayer.close()
    return profile


# ---------------------------------------------------------------------------------------------
# What would fix the slow pages (bench database only; relayflow's schema is not touched)

WHAT_IF_INDEXES = (
    # counts by status: answered from the index alone instead of one row lookup per instance
    "CREATE INDEX bench_ix_instances_status ON instances (account_id, definition_id, status)",
    # version=all: newest first across versions without sorting every instance
    "CREATE INDEX bench_ix_instances_started ON instances "
    "(account_id, definition_id, started_at_ms, id)",
    # the instance page's messages: today a scan of all the account's messages
    "CREATE INDEX bench_ix_messages_instance ON messages (instance_id, seq)",
)
_LIST_COLUMNS = (
    "id, account_id, definition_id, version, status, data_json, started_at_ms, completed_at_ms"
)
_ORDER = "ORDER BY started_at_ms DESC, id DESC"


async def what_if(
    client: httpx.AsyncClient,
    bench_db: BenchDb,
    db: Database,
    data: Dataset,
    pages: list[tuple[str, str]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Add the indexes above and time every page again; time the statements that fixes
    needing code would run instead (keyset paging, an indexed contact table, one query for
    the receipts of a page's messages), each checked to return what the page shows today."""
    replayer = Replayer(bench_db, db)
    await replayer.open()
    found: dict[str, Any] = {"indexes": list(WHAT_IF_INDEXES), "statements": {}}
    try:
        for ddl in WHAT_IF_INDEXES:
            await replayer.execute(ddl)
        if not db.is_sqlite:
            await replayer.execute("ANALYZE")
        log("what-if: pages again with the extra indexes …")
        found["pages"] = await time_pages(client, pages, args.reps, args.warmup)
        profile = await profile_pages(client, bench_db, db, pages, reps=5)
        for page in found["pages"]:
            profiled = profile.get(page["page"], {})
            page["sqlMs"] = profiled.get("sqlMs")
            page["statements"] = profiled.get("statements")
        found["profile"] = profile
        # The long instance's page without its N+1 (one get + receipts query per message):
        # `MessageService.get` answered from memory, as one IN query for all would nearly be.
        long_steps = f"{LONG_POINTERS:,} steps"
        long_page = [(f"{n}, receipts prefetched", u) for n, u in pages if long_steps in n]
        real_get = MessageService.get
        memo: dict[str, Any] = {}

        async def prefetched(service: MessageService, account_id: str, umid: str) -> Any:
            if umid not in memo:
                memo[umid] = await real_get(service, account_id, umid)
            return memo[umid]

        setattr(MessageService, "get", prefetched)  # noqa: B010 - a bench-only stand-in
        try:
            await client.get(long_page[0][1])
            if memo:  # only while the page still asks for its messages one by one
                found["pages"] += await time_pages(client, long_page, args.reps, args.warmup)
        finally:
            setattr(MessageService, "get", real_get)  # noqa: B010
        statements = found["statements"]
        scope = (ACCOUNT, data.definition_id, 3)
        where = "account_id = ? AND definition_id = ? AND version = ?"
        deep = max(0, min(50_000, data.latest_count - 100))
        # Keyset paging: the page after the row the previous page ended on.
        offset_sql = (
            f"SELECT {_LIST_COLUMNS} FROM instances WHERE {where} {_ORDER} LIMIT 101 OFFSET ?"  # noqa: S608
        )
        edge_sql = (
            f"SELECT started_at_ms, id FROM instances WHERE {where} {_ORDER} LIMIT 1 OFFSET ?"  # noqa: S608
        )
        edge = (await replayer.fetch(edge_sql, *scope, deep - 1))[0] if deep else None
        if edge is not None:
            keyset_sql = (
                f"SELECT {_LIST_COLUMNS} FROM instances WHERE {where} AND started_at_ms <= ? "  # noqa: S608
                f"AND (started_at_ms < ? OR id < ?) {_ORDER} LIMIT 101"
            )
            keyset = (*scope, edge[0], edge[0], edge[1])
            same = [r[0] for r in await replayer.fetch(keyset_sql, *keyset)] == [
                r[0] for r in await replayer.fetch(offset_sql, *scope, deep)
            ]
            statements[f"offset={deep}: OFFSET (today)"] = {
                "ms": await replayer.timed(offset_sql, (*scope, deep), 10)
            }
            statements[f"offset={deep}: keyset (after the previous page's last row)"] = {
                "ms": await replayer.timed(keyset_sql, keyset, 10),
                "sameRows": same,
                "sql": keyset_sql,
            }
        # Contacts: the digits of phone-like values, written at start into an indexed table.
        phone = "replace(json_extract(data_json, '$.phone'), '+', '')"
        if not db.is_sqlite:
            phone = "replace(data_json::jsonb ->> 'phone', '+', '')"
        await replayer.execute(
            "CREATE TABLE bench_instance_contacts (account_id VARCHAR(100), contact VARCHAR(100), "
            "instance_id VARCHAR(24), PRIMARY KEY (account_id, contact, instance_id))"
        )
        await replayer.execute(
            f"INSERT INTO bench_instance_contacts SELECT account_id, {phone}, id FROM instances"  # noqa: S608
        )
        if not db.is_sqlite:
            await replayer.execute("ANALYZE bench_instance_contacts")
        needle = "".join(ch for ch in data.contact if ch.isdigit())
        like_sql = (
            f"SELECT {_LIST_COLUMNS} FROM instances WHERE {where} "  # noqa: S608
            f"AND data_json LIKE ? ESCAPE '\\' {_ORDER} LIMIT 101"
        )
        like = (*scope, f"%{needle}%")
        columns = ", ".join(f"i.{c.strip()}" for c in _LIST_COLUMNS.split(","))
        contact_sql = (
            f"SELECT {columns} FROM bench_instance_contacts c JOIN instances i "  # noqa: S608
            "ON i.id = c.instance_id WHERE c.account_id = ? AND c.contact = ? "
            "AND i.definition_id = ? AND i.version = ? "
            "ORDER BY i.started_at_ms DESC, i.id DESC LIMIT 101"
        )
        contact = (ACCOUNT, needle, data.definition_id, 3)
        like_ids = [r[0] for r in await replayer.fetch(like_sql, *like)]
        statements["contact: LIKE on data_json (today)"] = {
            "ms": await replayer.timed(like_sql, like, 5)
        }
        statements["contact: indexed contact table"] = {
            "ms": await replayer.timed(contact_sql, contact, 10),
            "sameRows": [r[0] for r in await replayer.fetch(contact_sql, *contact)] == like_ids,
            "sql": contact_sql,
        }
        if not db.is_sqlite:
            log("what-if: pg_trgm index on data_json …")
            began = time.perf_counter()
            await replayer.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            await replayer.execute(
                "CREATE INDEX bench_ix_instances_trgm ON instances USING gin "
                "(data_json gin_trgm_ops)"
            )
            await replayer.execute("ANALYZE instances")
            statements["contact: LIKE with a pg_trgm GIN index"] = {
                "ms": await replayer.timed(like_sql, like, 10),
                "sameRows": [r[0] for r in await replayer.fetch(like_sql, *like)] == like_ids,
                "indexBuildS": round(time.perf_counter() - began, 1),
            }
            await replayer.execute("DROP INDEX bench_ix_instances_trgm")
        # The long instance's receipts: one statement instead of one per message.
        umids = [
            r[0]
            for r in await replayer.fetch(
                "SELECT id FROM messages WHERE account_id = ? AND instance_id = ? "
                "ORDER BY seq DESC LIMIT 500",
                ACCOUNT,
                data.long_id,
            )
        ]
        marks = ", ".join("?" for _ in umids)
        batch_sql = (
            "SELECT * FROM message_receipts WHERE account_id = ? "  # noqa: S608
            f"AND umid IN ({marks}) ORDER BY umid, id"
        )
        statements[f"receipts of {len(umids)} messages: one IN query"] = {
            "ms": await replayer.timed(batch_sql, (ACCOUNT, *umids), 10),
            "rows": len(await replayer.fetch(batch_sql, ACCOUNT, *umids)),
        }
    finally:
        await replayer.close()
    return found


# ---------------------------------------------------------------------------------------------
# Main


async def run(args: argparse.Namespace) -> dict[str, Any]:
    quiet = wait_until_quiet(args.wait_minutes) if args.wait_minutes > 0 else {}
    directory = Path(tempfile.mkdtemp(prefix="relayflow-console-bench-"))
    bench_db = await create_database(args.db, directory)
    try:
        return await _run(args, bench_db, quiet)
    finally:
        if args.keep:
            log(f"kept the database: {bench_db.url}")
        else:
            await drop_database(bench_db)
            shutil.rmtree(directory, ignore_errors=True)


async def _run(
    args: argparse.Namespace, bench_db: BenchDb, quiet: dict[str, Any]
) -> dict[str, Any]:
    db = Database(bench_db.url)
    ctx = AppContext(settings=Settings(database_url=bench_db.url), db=db)
    try:
        await db.migrate()
        log(f"{bench_db.kind}: inserting {args.instances:,} instances …")
        data = await build(ctx, args.instances, args.seed)
        log(
            f"built in {data.seconds:.0f} s: {data.rows:,} rows; latest version has "
            f"{data.latest_count:,} instances; contact {data.contact!r} is in "
            f"{data.contact_matches} instances"
        )
        if args.wait_minutes > 0:
            again = wait_until_quiet(args.wait_minutes)
            quiet = {
                "waitedS": quiet.get("waitedS", 0) + again["waitedS"],
                "otherBenchmarkRunning": again["otherBenchmarkRunning"],
            }
        transport = httpx.ASGITransport(app=create_app(ctx))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://relayflow.test"
        ) as client:
            await sign_in(client, data.api_key)
            pages = pages_of(data)
            load_before = os.getloadavg()
            log(f"timing {len(pages)} pages × {args.reps} (after {args.warmup} warm-up) …")
            results = await time_pages(client, pages, args.reps, args.warmup)
            load_after = os.getloadavg()
            log("replaying each page's SQL alone …")
            profile = await profile_pages(client, bench_db, db, pages, reps=5)
            fixes = await what_if(client, bench_db, db, data, pages, args) if args.what_if else None
        size = _database_size(bench_db)
        if size is None:
            async with db.read() as conn:
                size = await conn.scalar(text("SELECT pg_database_size(current_database())"))
    finally:
        ctx.evaluator.close()
        await ctx.http.close()
        await db.dispose()
    for result in results:
        profiled = profile.get(result["page"], {})  # the keyset page is timed, not profiled
        result["sqlMs"] = profiled.get("sqlMs")
        result["statements"] = profiled.get("statements")
    return {
        "benchmark": "console_pages",
        "database": bench_db.kind,
        "instances": args.instances,
        "rows": data.rows,
        "buildSeconds": round(data.seconds, 1),
        "databaseBytes": size,
        "latestVersionInstances": data.latest_count,
        "contact": data.contact,
        "contactMatches": data.contact_matches,
        "reps": args.reps,
        "warmup": args.warmup,
        "goalMs": GOAL_MS,
        "machine": {
            "cpus": os.cpu_count(),
            "loadavgBefore": load_before,
            "loadavgAfter": load_after,
            **quiet,
        },
        "python": sys.version.split()[0],
        "sqliteVersion": sqlite3.sqlite_version,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "pages": results,
        "profile": profile,
        "whatIf": fixes,
    }


def _database_size(bench_db: BenchDb) -> int | None:
    if bench_db.path is not None:
        wal = bench_db.path.with_name(bench_db.path.name + "-wal")
        return bench_db.path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    return None


def print_table(result: dict[str, Any], explain: bool) -> None:
    print()
    print(
        f"Console pages, {result['database']}, {result['instances']:,} instances "
        f"({result['rows']:,} rows), {result['reps']} reps, ms server-side (in-process)"
    )
    header = (
        f"{'page':<38} {'p50':>7} {'p95':>7} {'max':>7} {'SQL':>7} {'stmts':>5} {'rows':>4}  goal"
    )
    print(header)
    print("-" * len(header))
    for page in result["pages"]:
        ok = "ok" if page["p95"] < GOAL_MS else "OVER"
        sql = f"{page['sqlMs']:7.1f}" if page.get("sqlMs") is not None else f"{'-':>7}"
        count = f"{page['statements']:5d}" if page.get("statements") is not None else f"{'-':>5}"
        print(
            f"{page['page']:<38} {page['p50']:7.1f} {page['p95']:7.1f} {page['max']:7.1f} "
            f"{sql} {count} {page['links'] or '':>4}  {ok}"
        )
    print(
        "(SQL = the page's statements replayed alone on a raw connection, medians summed; "
        "stmts = statements the page ran; rows = instances listed)"
    )
    for name, info in result["profile"].items():
        slow = info["slowest"][0] if info["slowest"] else None
        if slow is None:
            continue
        print(f"\n{name}: slowest statement {slow['ms']:.1f} ms: {slow['short']}")
        if explain:
            print(slow["sql"])
            print(slow["plan"])
    fixes = result.get("whatIf")
    if fixes:
        print("\nWhat if (bench database only):", "; ".join(fixes["indexes"]))
        before = {page["page"]: page for page in result["pages"]}
        width = max(len(page["page"]) for page in fixes["pages"])
        print(f"{'page':<{width}} {'p50':>7} {'p95':>7} {'SQL':>7}  p95 today  goal")
        for page in fixes["pages"]:
            ok = "ok" if page["p95"] < GOAL_MS else "OVER"
            today = before.get(page["page"], {}).get("p95")
            sql = f"{page['sqlMs']:7.1f}" if "sqlMs" in page else f"{'-':>7}"
            was = f"{today:9.1f}" if today is not None else f"{'-':>9}"
            print(
                f"{page['page']:<{width}} {page['p50']:7.1f} {page['p95']:7.1f} {sql}  {was}  {ok}"
            )
        print("\nStatements of fixes that need code (median ms, alone on a raw connection):")
        for name, info in fixes["statements"].items():
            same = info.get("sameRows")
            note = "" if same is None else ("  (same rows)" if same else "  (DIFFERENT rows)")
            print(f"  {name:<58} {info['ms']:8.2f}{note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "pg"), default="sqlite")
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument(
        "--wait-minutes",
        type=float,
        default=25.0,
        help="wait up to this long for running `python -m bench.run` to end (0: do not wait)",
    )
    parser.add_argument("--out", action="store_true", help="write JSON to bench/out/")
    parser.add_argument("--explain", action="store_true", help="print slow statements' plans")
    parser.add_argument(
        "--what-if",
        action="store_true",
        help="then add candidate indexes (to the bench database) and time the pages again, "
        "and time the statements of fixes that need code (keyset paging, contact table, ...)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database (to look at it)")
    args = parser.parse_args()
    result = run_fast(run(args))
    print_table(result, args.explain)
    if args.out:
        OUT.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = OUT / f"console-pages-{args.db}-{stamp}.json"
        path.write_text(json.dumps(result, indent=2))
        print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
