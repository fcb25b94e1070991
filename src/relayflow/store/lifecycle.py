"""An instance's life outside its sprints: started (with its first pointer), suspended and
resumed, its timers skipped, terminated.

The inserts of instance, pointer and audit rows are built here once and shared with the sprint
save (store/sprints.py) and event delivery (store/subscriptions.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from sqlalchemy import delete, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from relayflow.audit import AuditEvent
from relayflow.instance_state import (
    ACTIVE_POINTER_STATUSES,
    LIVE_INSTANCE_STATUSES,
    InstanceStatus,
    NewInstance,
    PointerStatus,
)
from relayflow.store.direct import hot
from relayflow.store.leases import lock_instance
from relayflow.store.next_run import refresh_next_run
from relayflow.store.postgres_starts import start_instances as start_on_postgres
from relayflow.store.tables import (
    instance_contacts,
    instance_events,
    instances,
    pointers,
    subscriptions,
)
from relayflow.store.usage import count_started
from relayflow.telemetry import metrics

INSERT_INSTANCES = hot(insert(instances))
INSERT_POINTERS = hot(insert(pointers))
INSERT_EVENTS = hot(insert(instance_events))
INSERT_CONTACTS = hot(insert(instance_contacts))


async def insert_instances(conn: AsyncConnection, new: Sequence[NewInstance]) -> None:
    if not new:
        return
    await conn.execute(
        INSERT_INSTANCES,
        [
            {
                "id": item.id,
                "account_id": item.account_id,
                "definition_id": item.definition_id,
                "version": item.version,
                "sub_account_id": item.sub_account_id,
                "status": InstanceStatus.RUNNABLE,
                "data_json": orjson.dumps(item.data).decode(),
                "started_at_ms": item.now_ms,
                "completed_at_ms": None,
                "next_run_at_ms": item.now_ms,
                "executions": 0,
                "trace_parent": item.trace_parent,
            }
            for item in new
        ],
    )
    await conn.execute(
        INSERT_POINTERS,
        [
            {
                "id": item.first_pointer_id,
                "instance_id": item.id,
                "seq": 0,
                "step_id": item.entry_step,
                "parent_id": None,
                "status": PointerStatus.PENDING,
                "attempt": 0,
            }
            for item in new
        ],
    )
    await conn.execute(
        INSERT_EVENTS,
        [
            {"instance_id": item.id, "type": AuditEvent.INSTANCE_STARTED, "at_ms": item.now_ms}
            for item in new
        ],
    )
    contacts = [
        {"account_id": item.account_id, "contact": contact, "instance_id": item.id}
        for item in new
        for contact in item.contacts
    ]
    if contacts:
        await conn.execute(INSERT_CONTACTS, contacts)


async def start_instances(
    conn: AsyncConnection, account_id: str, new: Sequence[NewInstance], now_ms: int
) -> None:
    """Start `new` (all of `account_id`): the rows of `insert_instances`, this month's usage,
    and on PostgreSQL a `NOTIFY` to the workers of other processes (delivered at commit), in
    the caller's transaction; one statement on PostgreSQL (store/postgres_starts.py)."""
    if not new:
        return
    if conn.dialect.name == "postgresql":
        await start_on_postgres(conn, account_id, new, now_ms)
        return
    await insert_instances(conn, new)
    await count_started(conn, account_id, len(new), now_ms)


# --- control (suspend / resume / terminate) ---------------------------------------------------


async def set_status(
    conn: AsyncConnection,
    instance_id: str,
    from_statuses: Sequence[InstanceStatus],
    to_status: InstanceStatus,
    now_ms: int,
    event: AuditEvent,
) -> bool:
    result = await conn.execute(
        update(instances)
        .where(instances.c.id == instance_id, instances.c.status.in_(from_statuses))
        .values(status=to_status)
    )
    if result.rowcount != 1:
        return False
    await conn.execute(
        insert(instance_events).values(instance_id=instance_id, type=event, at_ms=now_ms)
    )
    await refresh_next_run(conn, instance_id, now_ms)
    return True


async def skip_waits(conn: AsyncConnection, instance_id: str, now_ms: int) -> int | None:
    """Make every timer of the instance due now: Wait sleeps, wait-for-event timeouts, retry
    backoffs (an operator skipping a timeout). The number of steps made due; None when the
    instance has ended."""
    locked = await lock_instance(conn, instance_id)
    if locked is None or locked.status not in LIVE_INSTANCE_STATUSES:
        return None
    result = await conn.execute(
        update(pointers)
        .where(
            pointers.c.instance_id == instance_id,
            pointers.c.status.in_(
                (PointerStatus.SLEEPING, PointerStatus.WAITING_FOR_EVENT, PointerStatus.RUNNING)
            ),
            pointers.c.wake_at_ms > now_ms,
        )
        .values(wake_at_ms=now_ms)
    )
    skipped = int(result.rowcount or 0)
    if skipped:
        await conn.execute(
            insert(instance_events).values(
                instance_id=instance_id,
                type=AuditEvent.WAITS_SKIPPED,
                at_ms=now_ms,
                detail_json=orjson.dumps({"steps": skipped}).decode(),
            )
        )
        await refresh_next_run(conn, instance_id, now_ms)
    return skipped


async def terminate(
    conn: AsyncConnection,
    instance_id: str,
    now_ms: int,
    event: AuditEvent = AuditEvent.INSTANCE_TERMINATED,
) -> bool:
    """Terminate: cancel every active pointer, subscription and timer; final."""
    locked = await lock_instance(conn, instance_id)
    if locked is None or locked.status not in LIVE_INSTANCE_STATUSES:
        return False
    await conn.execute(
        update(pointers)
        .where(
            pointers.c.instance_id == instance_id, pointers.c.status.in_(ACTIVE_POINTER_STATUSES)
        )
        .values(status=PointerStatus.CANCELLED, completed_at_ms=now_ms)
    )
    await conn.execute(delete(subscriptions).where(subscriptions.c.instance_id == instance_id))
    await conn.execute(
        update(instances)
        .where(instances.c.id == instance_id)
        .values(
            status=InstanceStatus.TERMINATED,
            next_run_at_ms=None,
            lease_owner=None,
            lease_until_ms=None,
        )
    )
    await conn.execute(
        insert(instance_events).values(instance_id=instance_id, type=event, at_ms=now_ms)
    )
    # Every user-made termination passes here (the runner's faults are counted by the worker).
    metrics.ended(InstanceStatus.TERMINATED, False, (now_ms - locked.started_at_ms) / 1000)
    return True
