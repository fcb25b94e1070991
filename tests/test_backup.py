"""`relayflow db backup FILE` (issue item 5): a consistent copy of a live SQLite database taken
with SQLite's online backup API while a real `relayflow serve` keeps working under load;
PostgreSQL is refused with a pointer to pg_dump."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import threading
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from relayflow.api.context import AppContext
from relayflow.store.backup import BackupError, backup_sqlite
from relayflow.store.database import Database
from tests.support.cli import fails_cleanly, invoke, ok
from tests.support.definitions import definition, sms_definition, sms_step
from tests.support.flows import Flow
from tests.support.process_api import Api
from tests.support.processes import RELAYFLOW, Processes
from tests.support.tenants import Tenant


def integrity(path: Path) -> list[tuple[str, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("PRAGMA integrity_check").fetchall()


def orphans(path: Path) -> dict[str, int]:
    """Rows whose instance is missing from the copy: a torn copy would have some."""
    checks = {
        "pointers": "SELECT count(*) FROM pointers p LEFT JOIN instances i "
        "ON i.id = p.instance_id WHERE i.id IS NULL",
        "instance_events": "SELECT count(*) FROM instance_events e LEFT JOIN instances i "
        "ON i.id = e.instance_id WHERE i.id IS NULL",
        # Not by pointer: a send is recorded before its step's pointer is saved.
        "messages": "SELECT count(*) FROM messages m LEFT JOIN instances i "
        "ON i.id = m.instance_id WHERE i.id IS NULL",
    }
    with closing(sqlite3.connect(path)) as conn:
        return {name: conn.execute(sql).fetchone()[0] for name, sql in checks.items()}


def count(path: Path, table: str) -> int:
    with closing(sqlite3.connect(path)) as conn:
        found: int = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        return found


# --------------------------------------------------------------------------------------------
# In process


async def test_backup_copies_every_row(
    client: httpx.AsyncClient, tenant: Tenant, context: AppContext, tmp_path: Path
) -> None:
    if not context.db.is_sqlite:
        with pytest.raises(BackupError, match="pg_dump"):
            await backup_sqlite(context.db, tmp_path / "copy.db")
        return
    flow = Flow(client, tenant, context)
    await flow.call("POST", "/definitions", expect=201, json=sms_definition())
    for n in range(5):
        await flow.sms(f"+659100000{n}", "hi")
    target = tmp_path / "copy.db"

    result = await backup_sqlite(context.db, target)

    assert result.path == target
    assert result.bytes == target.stat().st_size
    assert integrity(target) == [("ok",)]
    assert count(target, "instances") == 5
    assert count(target, "messages") == 5
    assert not Path(f"{target}-wal").exists()  # self-contained: no write-ahead log beside it
    with closing(sqlite3.connect(target)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    # The copy is a relayflow database: it opens and migrates as one.
    copy = Database(f"sqlite:///{target}")
    try:
        await copy.migrate()
    finally:
        await copy.dispose()


async def test_backup_never_overwrites(db: Database, tmp_path: Path) -> None:
    if not db.is_sqlite:
        pytest.skip("PostgreSQL is refused before any file is looked at")
    target = tmp_path / "exists.db"
    target.write_text("precious")
    with pytest.raises(BackupError, match="already exists"):
        await backup_sqlite(db, target)
    assert target.read_text() == "precious"
    with pytest.raises(BackupError, match="different file"):
        await backup_sqlite(db, Path(db.url.database or ""))


# --------------------------------------------------------------------------------------------
# relayflow db backup


def test_cli_refuses_postgresql_and_points_to_pg_dump(tmp_path: Path) -> None:
    url = "postgresql://nobody@127.0.0.1:1/nothing"  # refused before connecting
    message = fails_cleanly(invoke("db", "backup", str(tmp_path / "b.db"), "--db", url))
    assert "pg_dump" in message
    assert "pg_restore" in message
    assert not (tmp_path / "b.db").exists()


def test_cli_refuses_a_missing_database_and_an_existing_target(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    fails_cleanly(invoke("db", "backup", str(tmp_path / "b.db"), "--db", missing), "no database")
    assert not (tmp_path / "none.db").exists()  # nothing created on the way
    url = f"sqlite:///{tmp_path / 'live.db'}"
    ok(invoke("db", "upgrade", "--db", url))
    (tmp_path / "taken.db").write_text("x")
    fails_cleanly(invoke("db", "backup", str(tmp_path / "taken.db"), "--db", url), "already exists")
    fails_cleanly(
        invoke("db", "backup", str(tmp_path / "nodir" / "b.db"), "--db", url), "no directory"
    )
    printed = ok(invoke("db", "backup", str(tmp_path / "b.db"), "--db", url))
    assert "backed up" in printed
    assert integrity(tmp_path / "b.db") == [("ok",)]


def test_cli_needs_a_file(tmp_path: Path) -> None:
    result = invoke("db", "backup", "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert result.exit_code == 2
    assert "FILE" in result.stderr


# --------------------------------------------------------------------------------------------
# A live server under load


@pytest.mark.slow
def test_backup_of_a_live_server_under_load(tmp_path: Path) -> None:
    """Instances keep starting over HTTP while `relayflow db backup` runs three times; each copy
    passes integrity_check, holds no row of a missing instance, and the server answered every
    request."""
    db_url = f"sqlite:///{tmp_path / 'live.db'}"
    with Processes(tmp_path) as procs:
        # No start rate limit: the load must not be answered 429.
        server = procs.serve(
            db_url, "serve", start_rate_per_second="1000000", start_burst="1000000"
        )
        server.wait_healthy()
        [demo] = server.printed_json()
        api = Api(server.base_url, demo["accountId"], demo["apiKey"])
        steps = [sms_step("hello", "{{data.phone}}", "Hi", nextStepId="bye")]
        steps.append(sms_step("bye", "{{data.phone}}", "Bye"))
        api.define(definition("greeter", "http_request", steps))
        started: list[str] = []
        failures: list[str] = []
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(base_url=server.base_url, headers=api.headers, timeout=15) as http:
                while not stop.is_set():
                    response = http.post(
                        f"{api.prefix}/triggers/http_request", json={"phone": "+6591234567"}
                    )
                    if response.status_code == 200:
                        started.extend(response.json()["workflowIds"])
                    else:
                        failures.append(f"{response.status_code} {response.text}")

        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        copies = []
        try:
            for n in range(3):
                before = len(started)
                target = tmp_path / f"backup-{n}.db"
                done = subprocess.run(
                    [str(RELAYFLOW), "db", "backup", str(target), "--db", db_url],
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=False,
                )
                assert done.returncode == 0, done.stderr
                assert "backed up" in done.stdout
                copies.append((target, before))
                server.check_alive()
        finally:
            stop.set()
            loader.join(timeout=30)
            api.close()
        assert not failures, failures[:5]
        assert httpx.get(f"{server.base_url}/healthz", timeout=5).status_code == 200
        for target, started_before in copies:
            assert integrity(target) == [("ok",)], target
            assert orphans(target) == {"pointers": 0, "instance_events": 0, "messages": 0}
            # The copy holds at least what had been acknowledged before the backup began.
            assert count(target, "instances") >= started_before
        assert count(copies[-1][0], "instances") > 0


def test_backup_runs_while_this_process_writes(tmp_path: Path) -> None:
    """The backup's own connection never waits for this process's commit groups."""
    url = f"sqlite:///{tmp_path / 'busy.db'}"

    async def main() -> int:
        db = Database(url)
        try:
            await db.migrate()
            async with db.transaction() as conn:
                await conn.exec_driver_sql("CREATE TABLE scratch (x INTEGER)")
            writes = 0

            async def write() -> None:
                nonlocal writes
                for n in range(200):
                    async with db.transaction() as conn:
                        await conn.exec_driver_sql("INSERT INTO scratch VALUES (?)", (n,))
                    writes += 1
                    await asyncio.sleep(0)

            writer = asyncio.create_task(write())
            await backup_sqlite(db, tmp_path / "copy.db")
            await writer
            return writes
        finally:
            await db.dispose()

    assert asyncio.run(main()) == 200
    assert integrity(tmp_path / "copy.db") == [("ok",)]
