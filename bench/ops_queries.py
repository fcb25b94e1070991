"""The operator's gauges and retention purge with a million instances (SQLite and PostgreSQL).

    .venv/bin/python -m bench.ops_queries [--db sqlite,pg] [--instances 1000000]

For each database it creates a throwaway store (a SQLite file in a temporary directory, or a
fresh PostgreSQL database on 127.0.0.1:5432 that is dropped at the end) with relayflow's real
schema (`Database(url).migrate()`), bulk-loads the instances (sqlite3 `executemany` / asyncpg
`COPY`, not the engine: a million rows in seconds) and then:

1. **gauges**: times `store.monitoring.instances_by_status` (`relayflow_instances{status}`,
   cached 10 s by the service) and `store.monitoring.due_unclaimed` (`relayflow_work_due`,
   every scrape): median and p95 of 20 calls after 2 warm-ups, with the plan (`EXPLAIN QUERY
   PLAN` / `EXPLAIN (ANALYZE, BUFFERS)`);
2. **retention**: `RetentionService.purge` as shipped with a cutoff that matches every old
   instance, stopped after a few batches, at batch sizes 50 / 200 / 1000; each batch's
   transaction is timed from asking for it to its commit (on SQLite that is the writer held,
   and since SQLite runs inline on the event loop, the loop stalled too), and on SQLite one
   incremental-vacuum transaction (1,000 pages) afterwards; then the same batches again with
   an index on `subscriptions.instance_id` added to the bench database, and on SQLite also
   with the instances' final DELETE kept off `ix_instances_due` (what-ifs, this process only);
3. what-ifs for the counts by status: the live statuses alone, each ended status alone.

Data: one account; N instances of which the oldest `--old` (default 50,000) ended 120-100 days
ago (82 % Complete, 18 % Terminated), each with what the engine writes for an auto-reply with a
reply (3 pointers, 6 audit events, 2 messages + 2 delivery receipts, 1 contact: what a purge
deletes); the rest started over the last 90 days without child rows, mixed 2 % Runnable (a
quarter of them due now, a tenth of those leased), 1 % Suspended, 80 % Complete, 17 %
Terminated; those Runnable and Suspended ones that are not due wait for a reply (a pointer and a
subscription each: what a purge's foreign-key checks look at). PostgreSQL is VACUUM ANALYZEd
after the load (what autovacuum would do); SQLite is left unanalyzed, as relayflow leaves it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import secrets
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench.console_pages import PG_ADMIN_DSN, _pg_admin, _pg_url
from relayflow.api.context import AppContext
from relayflow.clock import SystemClock
from relayflow.config import Settings
from relayflow.services.monitoring import ENDED, ENDED_GAUGE_SECONDS, GAUGE_SECONDS, LIVE
from relayflow.services.retention import DAY_MS, VACUUM_PAGES_PER_TRANSACTION, RetentionService
from relayflow.store import monitoring as monitoring_store
from relayflow.store import retention as retention_store
from relayflow.store.database import Database
from relayflow.store.tables import (
    instance_contacts,
    instances,
    message_receipts,
    messages,
    pointers,
    subscriptions,
)

ACCOUNT = "acme"
DEFINITION = "5d6f1c2e-0000-4000-8000-000000000001"
CALLS = 20
BATCH_SIZES = (25, 50, 100, 200, 1000)
BATCHES_PER_SIZE = 8
RETENTION_DAYS = 90
CHUNK = 20_000  # rows per executemany / COPY call
MIX = (("Runnable", 0.02), ("Suspended", 0.01), ("Terminated", 0.17))  # the rest: Complete
HOLD_GOAL_MS = (10.0, 20.0)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------------------------------
# Data


def _data(rng: random.Random, phone: str) -> str:
    return json.dumps(
        {
            "payload": {
                "umid": f"{rng.getrandbits(128):032x}",
                "subAccountId": "acme_sms",
                "source": phone,
                "destination": "+6598765432",
                "body": "hi, is my order on its way?",
                "encoding": "GSM7",
            },
            "accountId": ACCOUNT,
            "triggeredAt": "2026-08-01T10:00:00.000Z",
        },
        separators=(",", ":"),
    )


def generate(count: int, old: int, now_ms: int, seed: int = 7) -> dict[str, list[tuple[Any, ...]]]:
    """Rows per table, as tuples in the tables' column order (see `COLUMNS`)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not crypto
    rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in COLUMNS}
    ins, ptr, evt = rows["instances"], rows["pointers"], rows["instance_events"]
    msg, rcp, con = rows["messages"], rows["message_receipts"], rows["instance_contacts"]
    for n in range(count):
        iid = f"{n:08x}{rng.getrandbits(64):016x}"
        phone = f"+4477{rng.randrange(10**8):08d}"
        if n < old:  # ended 120-100 days ago, with everything a purge removes
            start = now_ms - 120 * DAY_MS + n * (20 * DAY_MS // old)
            end = start + 60_000
            status = "Complete" if rng.random() < 0.82 else "Terminated"
            ins.append(
                (
                    iid,
                    ACCOUNT,
                    DEFINITION,
                    1,
                    None,
                    status,
                    _data(rng, phone),
                    start,
                    end if status == "Complete" else None,
                    None,
                    None,
                    None,
                    3,
                    None,
                )
            )
            for seq, step in enumerate(("ask", "answer", "thanks")):
                pid = f"{iid}-p{seq}"
                ptr.append(
                    (
                        pid,
                        iid,
                        seq,
                        step,
                        None,
                        "Complete",
                        start + seq,
                        end,
                        None,
                        f"sms:{phone}" if step == "answer" else None,
                        None,
                        "{}",
                        0,
                    )
                )
                if step != "answer":
                    umid = f"{iid}-m{seq}"
                    msg.append(
                        (
                            umid,
                            ACCOUNT,
                            iid,
                            pid,
                            "sms",
                            "sandbox",
                            "acme_sms",
                            phone,
                            None,
                            '{"text":"thanks"}',
                            "{}",
                            "delivered",
                            start,
                            start,
                        )
                    )
                    rcp.append(
                        (ACCOUNT, umid, "delivered", None, None, None, None, "{}", start + 900)
                    )
            for k, kind in enumerate(
                (
                    "instance_started",
                    "step_completed",
                    "reply_received",
                    "step_completed",
                    "step_completed",
                    "instance_completed" if status == "Complete" else "x",
                )
            ):
                evt.append((iid, "instance_terminated" if kind == "x" else kind, None, start + k))
            con.append((ACCOUNT, phone[1:], iid))
            continue
        start = now_ms - rng.randrange(RETENTION_DAYS * DAY_MS)
        draw, status = rng.random(), "Complete"
        for name, share in MIX:
            if draw < share:
                status = name
                break
            draw -= share
        completed = next_run = lease_owner = lease_until = None
        if status == "Complete":
            completed = start + 60_000
        elif status in ("Runnable", "Suspended"):
            due = rng.random() < 0.25 and status == "Runnable"
            next_run = now_ms - rng.randrange(60_000) if due else now_ms + rng.randrange(DAY_MS)
            if due and rng.random() < 0.1:
                lease_owner, lease_until = "worker-1", now_ms + 30_000
            if not due:  # waiting for the customer's reply: a pointer and its subscription
                pid, key = f"{iid}-p0", f"sms:{phone}"
                ptr.append(
                    (pid, iid, 0, "answer", None, "WaitingForEvent", start, None, next_run,
                     key, None, "{}", 0)
                )  # fmt: skip
                rows["subscriptions"].append((pid, ACCOUNT, key, iid, start))
        ins.append(
            (
                iid,
                ACCOUNT,
                DEFINITION,
                1,
                None,
                status,
                _data(rng, phone),
                start,
                completed,
                next_run,
                lease_owner,
                lease_until,
                2,
                None,
            )
        )
    return rows


# The columns `generate` fills, per table (autoincrement keys left to the database).
COLUMNS: dict[str, tuple[str, ...]] = {
    "instances": tuple(c.name for c in instances.columns),
    "pointers": tuple(c.name for c in pointers.columns),
    "instance_events": ("instance_id", "type", "step_id", "at_ms"),
    "messages": tuple(c.name for c in messages.columns if c.name != "seq"),
    "message_receipts": tuple(c.name for c in message_receipts.columns if c.name != "id"),
    "instance_contacts": tuple(c.name for c in instance_contacts.columns),
    "subscriptions": tuple(c.name for c in subscriptions.columns),
}


def load_sqlite(path: Path, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    connection = sqlite3.connect(str(path))
    try:
        for table, table_rows in rows.items():
            names = COLUMNS[table]
            marks = ", ".join("?" * len(names))
            sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})"  # noqa: S608 - our names
            for first in range(0, len(table_rows), CHUNK):
                connection.executemany(sql, table_rows[first : first + CHUNK])
                connection.commit()
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


def _dsn(db: Database) -> str:
    return db.url.set(drivername="postgresql").render_as_string(hide_password=False)


async def load_pg(db: Database, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    import asyncpg

    connection = await asyncpg.connect(_dsn(db), timeout=10)
    try:
        for table, table_rows in rows.items():
            for first in range(0, len(table_rows), 10 * CHUNK):
                await connection.copy_records_to_table(
                    table, records=table_rows[first : first + 10 * CHUNK], columns=COLUMNS[table]
                )
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


# ---------------------------------------------------------------------------------------------
# Measurements


class Captured:
    """The SQL a block runs, from SQLAlchemy's cursor events (to explain it afterwards)."""

    def __init__(self, db: Database) -> None:
        engine = db._sqlite if db.is_sqlite else db._postgres.sync_engine  # type: ignore[union-attr]
        assert engine is not None
        self.engine = engine
        self.statements: list[tuple[str, Any]] = []

    def _record(self, _c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        self.statements.append((statement, parameters))

    def __enter__(self) -> Captured:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_: Any) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "median": round(statistics.median(ordered), 3),
        "p95": round(p95, 3),
        "max": round(ordered[-1], 3),
    }


async def _explain(db: Database, statement: str, parameters: Any) -> str:
    if db.is_sqlite:
        connection = sqlite3.connect(str(db.url.database))
        try:
            plan = connection.execute("EXPLAIN QUERY PLAN " + statement, parameters or ())
            return "\n".join(str(row[3]) for row in plan)
        finally:
            connection.close()
    import asyncpg

    connection = await asyncpg.connect(_dsn(db), timeout=10)
    try:
        found = await connection.fetch(
            "EXPLAIN (ANALYZE, BUFFERS) " + statement, *(parameters or ())
        )
        return "\n".join(row[0] for row in found)
    finally:
        await connection.close()


async def time_gauge(
    db: Database, query: Callable[[Any], Awaitable[Any]]
) -> tuple[dict[str, float], Any, str]:
    async with db.read() as conn:
        with Captured(db) as captured:
            value = await query(conn)
        for _ in range(2):
            await query(conn)
        took = []
        for _ in range(CALLS):
            began = time.perf_counter()
            await query(conn)
            took.append((time.perf_counter() - began) * 1000)
    statement, parameters = captured.statements[-1]
    plan = await _explain(db, statement, parameters)
    return _ms(took), value, " ".join(statement.split()) + "\n" + plan


LIVE_COUNTS = (
    "SELECT status, count(*) FROM instances WHERE status IN ('Runnable', 'Suspended') "
    "GROUP BY status"
)
ENDED_COUNT = "SELECT count(*) FROM instances {hint}WHERE status = '{status}'"
ENDED_INDEX = {"Complete": "ix_instances_complete_age", "Terminated": "ix_instances_terminated_age"}


async def _raw_timed(db: Database, sql: str, reps: int = 7) -> dict[str, Any]:
    """A statement on a plain driver connection: median / p95 of `reps` runs after 2, and
    the plan."""
    took: list[float] = []
    if db.is_sqlite:
        connection = sqlite3.connect(str(db.url.database))
        try:
            for _ in range(reps + 2):
                began = time.perf_counter()
                connection.execute(sql).fetchall()
                took.append((time.perf_counter() - began) * 1000)
        finally:
            connection.close()
    else:
        import asyncpg

        pg = await asyncpg.connect(_dsn(db), timeout=10)
        try:
            for _ in range(reps + 2):
                began = time.perf_counter()
                await pg.fetch(sql)
                took.append((time.perf_counter() - began) * 1000)
        finally:
            await pg.close()
    return {**_ms(took[2:]), "plan": await _explain(db, sql, None)}


async def gauge_alternatives(db: Database) -> dict[str, Any]:
    """What-ifs for `relayflow_instances{status}`: the live statuses alone (a short range of
    ix_instances_due), and each ended status counted alone (on SQLite through its partial
    index, which holds only that status)."""
    out = {"liveOnly": await _raw_timed(db, LIVE_COUNTS)}
    for status, index in ENDED_INDEX.items():
        hint = f"INDEXED BY {index} " if db.is_sqlite else ""
        out[f"{status}Only"] = await _raw_timed(db, ENDED_COUNT.format(hint=hint, status=status))
    for name, figures in out.items():
        log(f"  what-if {name}: median {figures['median']} ms")
    return out


async def gauges(db: Database) -> dict[str, Any]:
    """The gauges as the service reads them: the live statuses every 10 s, the ended ones every
    5 minutes (services/monitoring.py), the due work at every scrape."""
    clock = SystemClock()
    live, live_counts, plan_live = await time_gauge(
        db, lambda conn: monitoring_store.instances_by_status(conn, LIVE)
    )
    ended, ended_counts, plan_ended = await time_gauge(
        db, lambda conn: monitoring_store.instances_by_status(conn, ENDED)
    )
    due, due_count, plan_due = await time_gauge(
        db, lambda conn: monitoring_store.due_unclaimed(conn, clock.now_ms())
    )
    per_10s = live["median"] + due["median"] + ended["median"] * GAUGE_SECONDS / ENDED_GAUGE_SECONDS
    return {
        "instancesByStatusLive": {**live, "counts": live_counts, "plan": plan_live},
        "instancesByStatusEnded": {**ended, "counts": ended_counts, "plan": plan_ended},
        "dueUnclaimed": {**due, "count": due_count, "plan": plan_due},
        "msPer10sScrapedEvery10s": round(per_10s, 3),
    }


async def candidate_query(db: Database) -> dict[str, Any]:
    """The purge's choice of 200 Complete instances alone, as `store.retention` writes it for
    this database, with its plan."""
    cutoff = SystemClock().now_ms() - RETENTION_DAYS * DAY_MS
    engine = db._sqlite if db.is_sqlite else db._postgres
    assert engine is not None
    query = retention_store._complete_candidates(cutoff, db.is_sqlite).limit(200)
    sql = str(query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    out = await _raw_timed(db, sql)
    log(f"  purge candidates: median {out['median']} ms")
    return out


async def retention(db: Database, sizes: tuple[int, ...]) -> dict[str, Any]:
    """Batch transactions of `RetentionService.purge`, as shipped, per batch size."""
    clock = SystemClock()
    older_than_ms = RETENTION_DAYS * DAY_MS
    original = db.transaction
    result: dict[str, Any] = {}
    for size in sizes:
        held: list[float] = []
        cpu: list[float] = []
        stop = asyncio.Event()

        @contextlib.asynccontextmanager
        async def timed(
            held: list[float] = held, cpu: list[float] = cpu, stop: asyncio.Event = stop
        ) -> AsyncIterator[Any]:
            began, began_cpu = time.perf_counter(), time.thread_time()
            async with original() as conn:
                yield conn
            held.append((time.perf_counter() - began) * 1000)
            cpu.append((time.thread_time() - began_cpu) * 1000)
            if len(held) >= BATCHES_PER_SIZE:
                stop.set()

        db.transaction = timed  # type: ignore[method-assign]
        try:
            service = RetentionService(
                db, clock, retention_days=RETENTION_DAYS, batch_size=size, interval_s=60
            )
            report = await service.purge(older_than_ms, stop=stop)
        finally:
            db.transaction = original  # type: ignore[method-assign]
        rows = sum(report.removed.values())
        result[str(size)] = {
            **_ms(held),
            "batches": report.batches,
            "instances": report.instances,
            "rows": rows,
            "msPerInstance": round(statistics.median(held) / size, 4),
            # this thread's CPU: on SQLite (inline on the event loop) the hold time the VM's
            # other tenants cannot inflate
            "threadCpuMs": _ms(cpu),
        }
        log(
            f"  batch {size}: median {statistics.median(held):.1f} ms, max {max(held):.1f} ms, "
            f"thread CPU median {statistics.median(cpu):.1f} ms "
            f"({report.instances} instances, {rows} rows in {report.batches} batches)"
        )
    if db.is_sqlite:  # what `reclaim_space` does after a purge, one transaction at a time
        vacuum: list[float] = []
        for _ in range(3):
            began = time.perf_counter()
            async with db.transaction() as conn:
                pages = await retention_store.sqlite_incremental_vacuum(
                    conn, VACUUM_PAGES_PER_TRANSACTION
                )
            vacuum.append((time.perf_counter() - began) * 1000)
            if pages < VACUUM_PAGES_PER_TRANSACTION:
                break
        result["vacuumTransaction"] = {**_ms(vacuum), "pages": VACUUM_PAGES_PER_TRANSACTION}
    return result


# ---------------------------------------------------------------------------------------------
# Per database


async def open_store(kind: str, directory: Path) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite:///{directory / 'ops.db'}", None
    name = f"relayflow_bench_ops_{secrets.token_hex(4)}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    return _pg_url(name), name


async def run_one(kind: str, count: int, old: int) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="relayflow-ops-"))
    url, pg_name = await open_store(kind, directory)
    try:
        db = Database(url)
        await db.migrate()
        context = AppContext(settings=Settings(database_url=url), db=db)
        await context.accounts.create(ACCOUNT)
        context.evaluator.close()
        await context.http.close()
        await db.dispose()
        began = time.perf_counter()
        rows = generate(count, old, SystemClock().now_ms())
        total = sum(len(r) for r in rows.values())
        log(f"{kind}: generated {total:,} rows in {time.perf_counter() - began:.0f} s; loading")
        if kind == "sqlite":
            await asyncio.to_thread(load_sqlite, directory / "ops.db", rows)
        else:
            await load_pg(Database(url), rows)
        del rows
        loaded_s = time.perf_counter() - began
        log(f"{kind}: loaded in {loaded_s:.0f} s; timing the gauges")
        db = Database(url)
        try:
            out: dict[str, Any] = {"instances": count, "rows": total, "loadS": round(loaded_s)}
            out["gauges"] = await gauges(db)
            for name in ("instancesByStatusLive", "instancesByStatusEnded", "dueUnclaimed"):
                g = out["gauges"][name]
                log(f"  {name}: median {g['median']} ms, p95 {g['p95']} ms")
            out["gaugeAlternatives"] = await gauge_alternatives(db)
            log(f"{kind}: purging")
            out["purgeCandidates"] = await candidate_query(db)
            out["retention"] = await retention(db, BATCH_SIZES)
        finally:
            await db.dispose()
        return out
    finally:
        if pg_name is not None:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        shutil.rmtree(directory, ignore_errors=True)


def recommend(result: dict[str, Any]) -> str:
    """The largest batch size whose median SQLite batch stays under ~15 ms (interpolated)."""
    lines = []
    for key, sizes in (("retention", BATCH_SIZES),):
        figures = result.get("sqlite", {}).get(key)
        if not figures:
            continue
        fitting = [s for s in sizes if figures[str(s)]["threadCpuMs"]["median"] <= HOLD_GOAL_MS[1]]
        lines.append(
            f"{key}: largest batch whose median SQLite batch takes <= {HOLD_GOAL_MS[1]:g} ms of "
            "CPU: " + (str(max(fitting)) if fitting else "none of " + ", ".join(map(str, sizes)))
        )
    return "; ".join(lines) or "no SQLite figures"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ops_queries", description=__doc__)
    parser.add_argument("--db", default="sqlite,pg", help="sqlite,pg (default: both)")
    parser.add_argument("--instances", type=int, default=1_000_000)
    parser.add_argument("--old", type=int, default=50_000, help="purgeable instances")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    result: dict[str, Any] = {"adminDsn": PG_ADMIN_DSN}
    for kind in [k.strip() for k in args.db.split(",") if k.strip()]:
        result[kind] = asyncio.run(run_one(kind, args.instances, args.old))
    result["recommendation"] = recommend(result)
    print(json.dumps(result, indent=1))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
