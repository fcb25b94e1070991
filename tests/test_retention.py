"""Retention (issue item 4) on SQLite and PostgreSQL: ended instances older than the cutoff go
with every row that hangs off them; live instances, young ones and everything else stay.

Instances are made the way clients make them (HTTP API, sandbox, 8x8 receipt webhooks) on a
manual clock, which is then moved past the retention age.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from relayflow.api.app import create_app
from relayflow.api.context import AppContext
from relayflow.clock import ManualClock
from relayflow.config import Settings
from relayflow.services.retention import (
    DAY_MS,
    RetentionError,
    RetentionService,
    parse_age,
)
from relayflow.store.database import Database
from relayflow.store.retention import PURGED_TABLES
from relayflow.store.tables import (
    instance_contacts,
    instance_events,
    instances,
    message_receipts,
    messages,
    pointers,
    subscriptions,
    workflow_errors,
)
from tests.support.cli import fails_cleanly, invoke, ok
from tests.support.databases import fresh_pg_database
from tests.support.flows import Flow
from tests.support.tenants import Tenant, make_tenant

OLD_AGE_DAYS = 31
ANSWER_TIMEOUT = "90.00:00:00"  # a wait that outlives the retention age


def survey(subaccount: str) -> list[dict[str, Any]]:
    """Ask, wait for the answer (long timeout), thank: messages, a subscription, contacts."""
    return [
        {
            "id": "ask",
            "stepType": "SMS",
            "inputs": {
                "subAccountId": subaccount,
                "destination": "{{data.payload.source}}",
                "text": "Reply 1-5",
            },
            "nextStepId": "wait",
        },
        {
            "id": "wait",
            "stepType": "WaitForReply",
            "inputs": {
                "from": "{{data.payload.source}}",
                "channel": "sms",
                "timeout": ANSWER_TIMEOUT,
            },
            "nextStepId": "thanks",
        },
        {
            "id": "thanks",
            "stepType": "SMS",
            "inputs": {
                "subAccountId": subaccount,
                "destination": "{{data.payload.source}}",
                "text": "Thanks",
            },
        },
    ]


FAULTING = [  # Terminated by a fault after a second: leaves a workflow error
    {"id": "nap", "stepType": "Wait", "inputs": {"duration": "00:00:01"}, "nextStepId": "bad"},
    {
        "id": "bad",
        "stepType": "SMS",
        "inputs": {"subAccountId": "x", "destination": "+6591234567", "text": "{{data.a.b.c}}"},
    },
]
SLEEPER = [{"id": "sleep", "stepType": "Wait", "inputs": {"duration": "90.00:00:00"}}]


@dataclass
class Scenario:
    """Instance ids by what a purge must do with them."""

    purged: list[str]
    kept: list[str]


async def answered_survey(flow: Flow, customer: str) -> str:
    [workflow] = (await flow.sms(customer, "start"))["started"]
    await flow.sms(customer, "5")
    await receipts_for(flow, workflow)
    return str(workflow)


async def receipts_for(flow: Flow, workflow: str) -> None:
    """An 8x8 delivery receipt for every message the instance sent."""
    async with flow.context.db.read() as conn:
        umids = (
            await conn.scalars(select(messages.c.id).where(messages.c.instance_id == workflow))
        ).all()
    assert umids
    for umid in umids:
        await flow.context.webhooks.sms(
            flow.tenant.account_id,
            {
                "namespace": "SMS",
                "eventType": "outbound_message_status_changed",
                "payload": {
                    "umid": umid,
                    "status": {"state": "delivered", "timestamp": "2026-01-01T00:00:00Z"},
                },
            },
        )


async def build_scenario(acme: Flow, globex: Flow) -> Scenario:
    """Old instances of every kind in two accounts, then 31 days later young ones."""
    survey_definition = await acme.define(survey("acme_sms"))
    await globex.define(survey("globex_sms"))
    await acme.define(FAULTING, trigger="http_request")
    sleeper_definition = await acme.define(SLEEPER, trigger="http_request")

    old_complete = await answered_survey(acme, "+6591000001")
    old_other_account = await answered_survey(globex, "+6591000001")  # same customer
    [old_terminated] = (await acme.sms("+6591000002", "start"))["started"]
    await acme.call(
        "PATCH",
        f"/definitions/{survey_definition}/workflows/{old_terminated}",
        json={"status": "terminate"},
    )
    started = await acme.http_trigger({})  # one faulting, one sleeping for 90 days
    await acme.advance(1000)
    sleeping = [w for w in started if w in await ids_of(acme, sleeper_definition)]
    [old_faulted] = [w for w in started if w not in sleeping]
    [old_waiting] = (await acme.sms("+6591000003", "start"))["started"]
    [old_suspended] = (await acme.sms("+6591000004", "start"))["started"]
    await acme.call(
        "PATCH",
        f"/definitions/{survey_definition}/workflows/{old_suspended}",
        json={"status": "suspend"},
    )

    acme.clock.advance(OLD_AGE_DAYS * DAY_MS)
    young_complete = await answered_survey(acme, "+6591000005")
    young_other_account = await answered_survey(globex, "+6591000006")
    statuses = await status_of(acme.context.db)
    assert statuses[old_complete] == statuses[old_other_account] == "Complete"
    assert statuses[old_terminated] == statuses[old_faulted] == "Terminated"
    assert statuses[sleeping[0]] == "Runnable"
    assert statuses[old_waiting] == "Runnable" or statuses[old_waiting] == "Suspended"
    assert statuses[old_suspended] == "Suspended"
    return Scenario(
        purged=[old_complete, old_other_account, old_terminated, old_faulted],
        kept=[
            sleeping[0],
            old_waiting,
            old_suspended,
            young_complete,
            young_other_account,
        ],
    )


async def ids_of(flow: Flow, definition_id: str) -> list[str]:
    return [i["workflowId"] for i in await flow.instances(definition_id)]


async def status_of(db: Database) -> dict[str, str]:
    async with db.read() as conn:
        return {
            row.id: row.status
            for row in await conn.execute(select(instances.c.id, instances.c.status))
        }


async def rows_of(db: Database, workflow: str) -> dict[str, int]:
    """Rows per purged table that belong to this instance (receipts: of its messages)."""
    async with db.read() as conn:

        async def count(query: Any) -> int:
            return int((await conn.execute(query)).scalar() or 0)

        umids = select(messages.c.id).where(messages.c.instance_id == workflow)
        found = {
            "instances": await count(
                select(func.count()).select_from(instances).where(instances.c.id == workflow)
            ),
            "messages": await count(
                select(func.count()).select_from(messages).where(messages.c.instance_id == workflow)
            ),
            "message_receipts": await count(
                select(func.count())
                .select_from(message_receipts)
                .where(message_receipts.c.umid.in_(umids))
            ),
        }
        for table in (subscriptions, instance_contacts, workflow_errors, instance_events, pointers):
            found[table.name] = await count(
                select(func.count()).select_from(table).where(table.c.instance_id == workflow)
            )
    return found


async def rows_by_instance(db: Database, workflows: list[str]) -> dict[str, dict[str, int]]:
    return {workflow: await rows_of(db, workflow) for workflow in workflows}


def total(rows: dict[str, dict[str, int]]) -> dict[str, int]:
    return {table: sum(r[table] for r in rows.values()) for table in PURGED_TABLES}


def service(context: AppContext, batch_size: int = 200, days: float = 30) -> RetentionService:
    return RetentionService(context.db, context.clock, retention_days=days, batch_size=batch_size)


@pytest.fixture
async def flows(client: httpx.AsyncClient, context: AppContext) -> tuple[Flow, Flow]:
    acme = await make_tenant(context, "acme")
    globex = await make_tenant(context, "globex")
    return Flow(client, acme, context), Flow(client, globex, context)


# --------------------------------------------------------------------------------------------
# The purge


async def test_purge_removes_old_ended_instances_with_all_their_rows_and_nothing_else(
    flows: tuple[Flow, Flow], context: AppContext
) -> None:
    scenario = await build_scenario(*flows)
    before_purged = await rows_by_instance(context.db, scenario.purged)
    before_kept = await rows_by_instance(context.db, scenario.kept)
    # The scenario exercises every table: each has rows to lose among the purged instances
    # (subscriptions: the Suspended / waiting instances hold them, and they are kept).
    expected = total(before_purged)
    assert all(expected[t] > 0 for t in PURGED_TABLES if t != "subscriptions"), expected
    assert total(before_kept)["subscriptions"] > 0

    report = await service(context).purge(30 * DAY_MS)

    assert report.removed == expected
    assert report.instances == 4
    for workflow in scenario.purged:
        assert await rows_of(context.db, workflow) == dict.fromkeys(PURGED_TABLES, 0), workflow
    assert await rows_by_instance(context.db, scenario.kept) == before_kept
    # Nothing left to purge: a second run removes nothing.
    assert (await service(context).purge(30 * DAY_MS)).instances == 0


async def test_runnable_and_suspended_instances_are_never_purged_however_old(
    flows: tuple[Flow, Flow], context: AppContext
) -> None:
    scenario = await build_scenario(*flows)
    flows[0].clock.advance(3650 * DAY_MS)  # ten years on, the young ones are old too
    statuses = await status_of(context.db)
    live = [w for w in scenario.kept if statuses[w] in ("Runnable", "Suspended")]
    assert len(live) == 3
    before = await rows_by_instance(context.db, live)

    report = await service(context).purge(DAY_MS)

    assert report.instances == 6
    assert await rows_by_instance(context.db, live) == before
    assert set(await status_of(context.db)) == set(live)


async def test_an_old_instance_terminated_recently_is_kept(
    flows: tuple[Flow, Flow], context: AppContext
) -> None:
    """Terminated instances keep completedAt null: their end is their last event, not their
    start (this one started 31 days ago and was terminated just now)."""
    acme, _ = flows
    scenario = await build_scenario(*flows)
    waiting = scenario.kept[1]
    [definition_id] = [
        d["id"] for d in await acme.call("GET", "/definitions") if d["trigger"] == "inbound_sms"
    ]
    await acme.call(
        "PATCH", f"/definitions/{definition_id}/workflows/{waiting}", json={"status": "terminate"}
    )
    assert (await status_of(context.db))[waiting] == "Terminated"

    report = await service(context).purge(30 * DAY_MS)

    assert report.instances == 4
    assert (await rows_of(context.db, waiting))["instances"] == 1
    acme.clock.advance(30 * DAY_MS + 1)  # now it ended 30 days ago too
    await service(context).purge(30 * DAY_MS)
    assert await rows_of(context.db, waiting) == dict.fromkeys(PURGED_TABLES, 0)


async def test_a_leased_ended_instance_is_skipped(
    flows: tuple[Flow, Flow], context: AppContext
) -> None:
    scenario = await build_scenario(*flows)
    held = scenario.purged[0]
    async with context.db.transaction() as conn:
        await conn.execute(
            instances.update().where(instances.c.id == held).values(lease_owner="someone")
        )
    report = await service(context).purge(30 * DAY_MS)
    assert report.instances == 3
    assert (await rows_of(context.db, held))["instances"] == 1


async def test_dry_run_changes_nothing_and_reports_what_the_purge_removes(
    flows: tuple[Flow, Flow], context: AppContext
) -> None:
    scenario = await build_scenario(*flows)
    everything = scenario.purged + scenario.kept
    before = await rows_by_instance(context.db, everything)

    dry = await service(context).purge(30 * DAY_MS, dry_run=True)

    assert dry.dry_run
    assert await rows_by_instance(context.db, everything) == before
    assert dry.removed == total({w: before[w] for w in scenario.purged})
    real = await service(context).purge(30 * DAY_MS)
    assert real.removed == dry.removed


async def test_small_batches_work_through_every_candidate(
    flows: tuple[Flow, Flow], context: AppContext
) -> None:
    acme, _ = flows
    await acme.define(survey("acme_sms"))
    done = [await answered_survey(acme, f"+65910000{n:02d}") for n in range(7)]
    acme.clock.advance(OLD_AGE_DAYS * DAY_MS)

    report = await service(context, batch_size=2).purge(30 * DAY_MS)

    assert report.instances == 7
    assert report.batches == 4  # 2 + 2 + 2 + 1
    assert not set(done) & set(await status_of(context.db))


async def test_run_forever_purges_in_the_background_until_stopped(
    flows: tuple[Flow, Flow], context: AppContext
) -> None:
    scenario = await build_scenario(*flows)
    stop = asyncio.Event()
    task = asyncio.create_task(service(context, batch_size=1).run_forever(stop))
    for _ in range(2000):  # each round yields; wait for the purge to be visible
        await asyncio.sleep(0.005)
        if not set(scenario.purged) & set(await status_of(context.db)):
            break
    stop.set()
    await task
    assert set(await status_of(context.db)) == set(scenario.kept)


async def test_retention_zero_keeps_everything(
    flows: tuple[Flow, Flow], context: AppContext
) -> None:
    scenario = await build_scenario(*flows)
    retention = service(context, days=0)
    assert not retention.enabled
    await retention.run_forever(asyncio.Event())  # returns at once: nothing to do
    assert set(await status_of(context.db)) == set(scenario.purged + scenario.kept)


def test_from_settings_reads_the_retention_settings(tmp_path: Path) -> None:
    settings = Settings(retention_days=0, retention_batch_size=5, retention_interval_seconds=2)
    db = Database(f"sqlite:///{tmp_path / 'r.db'}")
    assert not RetentionService.from_settings(db, ManualClock(), settings).enabled
    assert RetentionService.from_settings(db, ManualClock(), Settings()).enabled


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("30d", 30 * DAY_MS),
        ("30", 30 * DAY_MS),
        ("12h", 12 * 3_600_000),
        (" 1.5D ", 36 * 3_600_000),
    ],
)
def test_ages(text: str, ms: int) -> None:
    assert parse_age(text) == ms


@pytest.mark.parametrize("text", ["", "d", "30x", "-1d", "0d", "0", "30 days", "1e3", "nan"])
def test_bad_ages_are_refused(text: str) -> None:
    with pytest.raises(RetentionError):
        parse_age(text)


# --------------------------------------------------------------------------------------------
# SQLite space


async def test_sqlite_gives_the_purged_space_back(
    flows: tuple[Flow, Flow], context: AppContext
) -> None:
    if not context.db.is_sqlite:
        pytest.skip("incremental vacuum is SQLite's; PostgreSQL's autovacuum reuses space")
    acme, _ = flows
    await acme.define(survey("acme_sms"))
    padding = "x" * 4000  # enough data per instance to span pages
    for n in range(60):
        assert (await acme.sms(f"+659200{n:04d}", f"start {padding}"))["started"]
        await acme.sms(f"+659200{n:04d}", "5")
    acme.clock.advance(OLD_AGE_DAYS * DAY_MS)
    path = context.db.url.database
    assert path is not None
    before = sqlite_pages(path)
    assert before["auto_vacuum"] == 2  # a new database is created in incremental mode

    report = await service(context, batch_size=25).purge(30 * DAY_MS)

    after = sqlite_pages(path)
    assert report.instances == 60
    assert report.pages_reclaimed > 0
    assert after["page_count"] <= before["page_count"] - report.pages_reclaimed
    assert after["freelist_count"] == 0


def sqlite_pages(path: str) -> dict[str, int]:
    with closing(sqlite3.connect(path)) as conn:
        return {
            pragma: int(conn.execute(f"PRAGMA {pragma}").fetchone()[0])
            for pragma in ("page_count", "freelist_count", "auto_vacuum")
        }


def test_an_existing_database_keeps_its_vacuum_mode_and_still_purges(tmp_path: Path) -> None:
    """A database made before incremental vacuum (mode NONE) is not rewritten behind the
    operator's back: the purge works, the freed pages stay in the file for reuse."""
    path = tmp_path / "legacy.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE placeholder (x)")  # the file exists in mode NONE
    url = f"sqlite:///{path}"

    async def main() -> int:
        db = Database(url)
        clock = ManualClock()
        context = AppContext(settings=Settings(database_url=url), db=db, clock=clock)
        try:
            await db.migrate()
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(context)), base_url="http://t"
            ) as client:
                acme = Flow(client, await make_tenant(context, "acme"), context)
                await acme.define(survey("acme_sms"))
                await answered_survey(acme, "+6591000001")
            clock.advance(OLD_AGE_DAYS * DAY_MS)
            report = await service(context).purge(30 * DAY_MS)
            assert report.pages_reclaimed == 0
            return report.instances
        finally:
            context.evaluator.close()
            await context.http.close()
            await db.dispose()

    assert asyncio.run(main()) == 1
    assert sqlite_pages(str(path))["auto_vacuum"] == 0


# --------------------------------------------------------------------------------------------
# relayflow db purge


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def own_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of this test's own: `db purge` is global by age (the session's shared
    PostgreSQL database holds other tests' instances)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'purge.db'}"
    else:
        yield from fresh_pg_database(request, "relayflow_purge")


def seed_old_and_young(url: str) -> tuple[str, str, Tenant]:
    """One instance that ended years ago (the manual clock's start) and one that ended now."""

    async def main() -> tuple[str, str, Tenant]:
        import time

        db = Database(url)
        clock = ManualClock()
        context = AppContext(settings=Settings(database_url=url), db=db, clock=clock)
        try:
            await db.migrate()
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(context)), base_url="http://t"
            ) as client:
                tenant = await make_tenant(context, f"acme-{uuid.uuid4().hex[:6]}")
                acme = Flow(client, tenant, context)
                await acme.define(survey("acme_sms"))
                old = await answered_survey(acme, "+6591000001")
                clock.advance(time.time_ns() // 1_000_000 - clock.now_ms())
                young = await answered_survey(acme, "+6591000002")
            return old, young, tenant
        finally:
            context.evaluator.close()
            await context.http.close()
            await db.dispose()

    return asyncio.run(main())


def instance_ids(url: str) -> set[str]:
    async def main() -> set[str]:
        db = Database(url)
        try:
            return set(await status_of(db))
        finally:
            await db.dispose()

    return asyncio.run(main())


def test_db_purge_dry_run_then_purge(own_db_url: str) -> None:
    old, young, _ = seed_old_and_young(own_db_url)

    dry = ok(invoke("db", "purge", "--older-than", "30d", "--dry-run", "--db", own_db_url))
    assert "would remove" in dry
    assert " instances          1" in dry
    assert instance_ids(own_db_url) == {old, young}

    done = ok(invoke("db", "purge", "--older-than", "30", "--db", own_db_url))
    assert "removed" in done
    assert "would" not in done
    assert " instances          1" in done
    for table in PURGED_TABLES:
        assert table in done
    # The same counts as the dry run promised (a purge may also report the free pages it
    # handed back, e.g. those a migration's table rebuild left).
    removed = [line for line in done.split(": removed")[1].splitlines() if "vacuum" not in line]
    assert removed == dry.split(": would remove")[1].splitlines()
    assert instance_ids(own_db_url) == {young}


@pytest.mark.parametrize("age", ["thirty", "30x", "0d", "-5d"])
def test_db_purge_refuses_a_bad_age(age: str, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    fails_cleanly(invoke("db", "purge", "--older-than", age, "--db", db), "--older-than", age)
    assert not (tmp_path / "x.db").exists()  # refused before touching any database


def test_db_purge_needs_an_age(tmp_path: Path) -> None:
    result = invoke("db", "purge", "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert result.exit_code == 2
    assert "--older-than" in result.stderr
