"""The PostgreSQL hot path (store/postgres_hotpath.py) under the races its one-statement save
must survive: a reply delivered while the save waits for the instance row, a terminate between
load and save, an event taken over by a new wait. The flow suites run every step type through
it; these drive the store directly, with the router's own delivery code in a real concurrent
transaction."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from relayflow.audit import AuditEvent
from relayflow.instance_state import InstanceState, InstanceStatus, NewInstance, PointerStatus
from relayflow.store import accounts as account_store
from relayflow.store import lifecycle as lifecycle_store
from relayflow.store import subscriptions as subscription_store
from relayflow.store import usage as usage_store
from relayflow.store.database import Database
from relayflow.store.postgres_hotpath import PostgresHotPath
from relayflow.store.sprints import LeaseLost

pytestmark = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)

ACCOUNT = "acme"
OWNER = "worker-a"
NOW = 1_800_000_000_000
HOUR = 3_600_000
LEASE = 60_000


async def start(db: Database, count: int = 1) -> list[str]:
    """`count` Runnable instances of one definition, each with a Pending entry pointer."""
    ids = [f"{index:024x}" for index in range(1, count + 1)]
    async with db.transaction() as conn:
        await account_store.insert_account(conn, ACCOUNT, "0" * 64, "sandbox", NOW)
        await lifecycle_store.insert_instances(
            conn,
            [
                NewInstance(
                    id=instance_id,
                    account_id=ACCOUNT,
                    definition_id="d1",
                    version=1,
                    sub_account_id=None,
                    data={"n": index},
                    entry_step="a",
                    first_pointer_id=f"p-{instance_id}",
                    now_ms=NOW,
                )
                for index, instance_id in enumerate(ids)
            ],
        )
    return ids


async def claimed_state(hot: PostgresHotPath, instance_id: str, now: int) -> InstanceState:
    [state] = await hot.claim(OWNER, now, LEASE, 10)
    assert state.id == instance_id
    return state


async def row(db: Database, sql: str, *args: Any) -> Any:
    pool = await db.asyncpg_pool()
    return await pool.fetchrow(sql, *args)


async def wait_for(state: InstanceState, key: str, wake_at: int) -> None:
    """The sprint's wait step: its pointer waits for `key` until `wake_at`."""
    pointer = next(iter(state.pointers.values()))
    pointer.status = PointerStatus.WAITING_FOR_EVENT
    pointer.event_key, pointer.wake_at_ms, pointer.dirty = key, wake_at, True
    state.subscribe.append((pointer.id, key))


async def test_a_reply_delivered_while_the_save_waits_is_not_hidden(db: Database) -> None:
    """The save statement's snapshot predates the router's commit, so it cannot see the event
    on the pointer; the instance row's version tells it someone wrote the row: due now."""
    [instance_id] = await start(db)
    hot = PostgresHotPath(db)
    state = await claimed_state(hot, instance_id, NOW)
    await wait_for(state, "reply:k", NOW + HOUR)
    # A parallel branch's timer, due now, makes the instance due again.
    timer = state.add_pointer("p-timer", "b", None)
    timer.status, timer.wake_at_ms = PointerStatus.SLEEPING, NOW
    await hot.save(state, OWNER, NOW, lease_until_ms=NOW + LEASE, release=True)
    state.clear_changes()
    now = NOW + 1000
    state = await claimed_state(hot, instance_id, now)
    state.pointers["p-timer"].status = PointerStatus.COMPLETE  # the sprint ends the branch
    state.pointers["p-timer"].dirty = True
    watcher = await asyncpg.connect(db.url.set(drivername="postgresql").render_as_string(False))
    try:
        async with db.transaction() as conn:  # the router, delivering the reply
            delivered = await subscription_store.deliver_event(
                conn, ACCOUNT, ["reply:k"], {"text": "yes"}, AuditEvent.REPLY_RECEIVED, now
            )
            assert [d.instance_id for d in delivered] == [instance_id]
            save = asyncio.create_task(
                hot.save(state, OWNER, now, lease_until_ms=now + LEASE, release=True)
            )
            for _ in range(500):  # until the save waits for the router's row lock
                blocked = await watcher.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE '%WITH saved AS%'"
                )
                if blocked:
                    break
                await asyncio.sleep(0.01)
            assert blocked, "the save never waited for the router's transaction"
        await save
    finally:
        await watcher.close()
    stored = await row(db, "SELECT next_run_at_ms, lease_owner FROM instances")
    assert stored["lease_owner"] is None
    assert stored["next_run_at_ms"] <= now  # due now, not at the wait's timeout
    # ... and the next sprint finds the reply.
    state = await claimed_state(hot, instance_id, now + 1)
    assert state.pointers[f"p-{instance_id}"].event == {"text": "yes"}


async def test_a_save_after_a_terminate_writes_nothing(db: Database) -> None:
    [instance_id] = await start(db)
    hot = PostgresHotPath(db)
    state = await claimed_state(hot, instance_id, NOW)
    async with db.transaction() as conn:
        assert await lifecycle_store.terminate(conn, instance_id, NOW + 1)
    entry = state.pointers[f"p-{instance_id}"]
    entry.status, entry.dirty = PointerStatus.COMPLETE, True
    state.add_pointer("p-next", "b", None)
    state.record(AuditEvent.STEP_STARTED, "a", NOW)
    state.errors.append(("a", "boom", NOW))
    with pytest.raises(LeaseLost):
        await hot.save(state, OWNER, NOW + 2, lease_until_ms=NOW + LEASE, release=True)
    counts = await row(
        db,
        "SELECT (SELECT count(*) FROM pointers) AS pointers, "
        "(SELECT count(*) FROM workflow_errors) AS errors, "
        "(SELECT count(*) FROM instance_events WHERE type = $1) AS started, "
        "(SELECT status FROM pointers WHERE id = $2) AS entry",
        AuditEvent.STEP_STARTED.value,
        f"p-{instance_id}",
    )
    assert dict(counts) == {"pointers": 1, "errors": 0, "started": 0, "entry": "Cancelled"}


async def test_a_new_wait_takes_a_parked_event_in_the_save(db: Database) -> None:
    [instance_id] = await start(db)
    hot = PostgresHotPath(db)
    async with db.transaction() as conn:
        await subscription_store.park_event(
            conn, "e1", ACCOUNT, "dtmf:x", {"dtmf": "1"}, NOW + HOUR
        )
    state = await claimed_state(hot, instance_id, NOW)
    await wait_for(state, "dtmf:x", NOW + HOUR)
    assert await hot.save(state, OWNER, NOW, lease_until_ms=NOW + LEASE, release=True)
    stored = await row(
        db,
        "SELECT p.event_json, i.next_run_at_ms, i.lease_owner, "
        "(SELECT count(*) FROM subscriptions) AS subscribed, "
        "(SELECT count(*) FROM parked_events) AS parked "
        "FROM pointers p JOIN instances i ON i.id = p.instance_id",
    )
    assert dict(stored) == {
        "event_json": '{"dtmf":"1"}',
        "next_run_at_ms": NOW,
        "lease_owner": OWNER,  # kept: the sprint runs on with the event
        "subscribed": 0,
        "parked": 0,
    }


async def test_a_parked_event_stays_when_the_save_loses_its_lease(db: Database) -> None:
    [instance_id] = await start(db)
    hot = PostgresHotPath(db)
    async with db.transaction() as conn:
        await subscription_store.park_event(
            conn, "e1", ACCOUNT, "dtmf:x", {"dtmf": "1"}, NOW + HOUR
        )
    state = await claimed_state(hot, instance_id, NOW)
    async with db.transaction() as conn:
        assert await lifecycle_store.terminate(conn, instance_id, NOW + 1)
    await wait_for(state, "dtmf:x", NOW + HOUR)
    with pytest.raises(LeaseLost):
        await hot.save(state, OWNER, NOW + 2, lease_until_ms=NOW + LEASE, release=True)
    assert (await row(db, "SELECT count(*) AS n FROM parked_events"))["n"] == 1


async def test_a_claim_loads_each_instance_with_its_own_pointers(db: Database) -> None:
    ids = await start(db, 3)
    hot = PostgresHotPath(db)
    claimed = await hot.claim(OWNER, NOW, LEASE, 10)
    assert sorted(state.id for state in claimed) == ids
    for state in claimed:
        assert list(state.pointers) == [f"p-{state.id}"]
        assert state.next_seq == 1
        assert state.status == InstanceStatus.RUNNABLE
        assert state.data == {"n": ids.index(state.id)}
        assert state.row_version is not None
    assert await hot.claim(OWNER, NOW, LEASE, 10) == []  # leased: not claimed again
    async with db.transaction() as conn:  # the third is taken over by another worker
        await conn.exec_driver_sql(
            f"UPDATE instances SET lease_owner = 'worker-b' WHERE id = '{ids[2]}'"
        )
    assert sorted(state.id for state in await hot.load(ids, OWNER, NOW)) == ids[:2]


async def test_a_timed_out_wait_stops_listening_when_loaded(db: Database) -> None:
    [instance_id] = await start(db)
    hot = PostgresHotPath(db)
    state = await claimed_state(hot, instance_id, NOW)
    await wait_for(state, "reply:k", NOW + 1000)
    await hot.save(state, OWNER, NOW, lease_until_ms=NOW + LEASE, release=True)
    assert (await row(db, "SELECT count(*) AS n FROM subscriptions"))["n"] == 1
    state = await claimed_state(hot, instance_id, NOW + 1000)
    assert not state.pointers[f"p-{instance_id}"].has_event
    assert (await row(db, "SELECT count(*) AS n FROM subscriptions"))["n"] == 0
    async with db.transaction() as conn:  # a reply arriving now finds no wait
        assert not await subscription_store.deliver_event(
            conn, ACCOUNT, ["reply:k"], {"text": "late"}, AuditEvent.REPLY_RECEIVED, NOW + 1001
        )


async def test_connections_the_server_closed_are_replaced_on_first_use(db: Database) -> None:
    """No `pool_pre_ping` round trip: a connection the server closed (a restart) is noticed by
    its closed flag when checked out, and a fresh one is used; nothing fails."""
    [instance_id] = await start(db)
    hot = PostgresHotPath(db)
    assert [state.id for state in await hot.claim(OWNER, NOW, LEASE, 10)] == [instance_id]
    async with db.read() as conn:
        assert (await conn.exec_driver_sql("SELECT 1")).scalar() == 1
    admin = await asyncpg.connect(db.url.set(drivername="postgresql").render_as_string(False))
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    assert killed >= 2  # SQLAlchemy's pooled connection and the hot path's
    await asyncio.sleep(0.2)  # the event loop reads the server's goodbye
    async with db.read() as conn:
        assert (await conn.exec_driver_sql("SELECT 1")).scalar() == 1
    assert [state.id for state in await hot.load([instance_id], OWNER, NOW)] == [instance_id]


async def test_starts_count_in_usage_shards_summed_when_read(db: Database) -> None:
    """Concurrent starts of one account update different usage rows (no queue on one row's
    lock); the month's count is their sum."""
    await start(db, 1)

    async def start_one(index: int) -> None:
        async with db.transaction() as conn:
            await lifecycle_store.start_instances(
                conn,
                ACCOUNT,
                [
                    NewInstance(
                        id=f"{index + 100:024x}",
                        account_id=ACCOUNT,
                        definition_id="d1",
                        version=1,
                        sub_account_id=None,
                        data={},
                        entry_step="a",
                        first_pointer_id=f"q-{index}",
                        now_ms=NOW,
                        contacts=("+6591234567",),
                    )
                ],
                NOW,
            )

    await asyncio.gather(*(start_one(index) for index in range(20)))
    async with db.read() as conn:
        assert await usage_store.this_month(conn, ACCOUNT, NOW) == 20
        assert await usage_store.monthly(conn, ACCOUNT) == [(2027, 1, 20)]
    shards = await row(db, "SELECT count(*) AS n FROM usage_shards")
    assert shards["n"] > 1
    started = await row(
        db,
        "SELECT count(*) AS n FROM instances i JOIN pointers p ON p.instance_id = i.id "
        "JOIN instance_contacts c ON c.instance_id = i.id WHERE p.id LIKE 'q-%'",
    )
    assert started["n"] == 20


async def test_usage_adds_up_what_a_previous_release_counted(db: Database) -> None:
    """During a rolling upgrade, processes of the release before migration 0011 still count in
    `usage`; reads add both tables up."""
    await start(db, 1)
    async with db.transaction() as conn:
        await conn.exec_driver_sql(
            "INSERT INTO usage (account_id, year, month, started) VALUES ('acme', 2027, 1, 5)"
        )
        await usage_store.count_started(conn, ACCOUNT, 2, NOW)
    async with db.read() as conn:
        assert await usage_store.this_month(conn, ACCOUNT, NOW) == 7
        assert await usage_store.monthly(conn, ACCOUNT) == [(2027, 1, 7)]
