"""Queries behind the operator actions: finding why an instance ended, and re-opening a failed
instance at its failed step (`services/operations.py` decides; this module only reads and
writes, in the caller's transaction)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from relayflow.audit import AuditEvent
from relayflow.instance_state import InstanceStatus, PointerStatus
from relayflow.store.leases import lock_instance
from relayflow.store.next_run import refresh_next_run
from relayflow.store.tables import instance_events, instances, pointers


@dataclass(frozen=True)
class FailedStep:
    """The step execution whose fault terminated an instance, and the containers (`If`
    steps) it ran inside, innermost first: they were cancelled with it."""

    pointer_id: str
    step_id: str
    parent_id: str | None
    container_ids: tuple[str, ...]
    container_step_ids: tuple[str, ...]


async def failed_step(
    conn: AsyncConnection, instance_id: str, *, lock: bool = True
) -> FailedStep | None:
    """Its failed step if a step's fault terminated the instance (and nothing re-opened it
    since), else None (running, complete, or terminated by a user). `lock`: lock the instance
    for the rest of the transaction (before changing it); without, a read (what a page shows)."""
    if lock:
        status = getattr(await lock_instance(conn, instance_id), "status", None)
    else:
        status = await conn.scalar(select(instances.c.status).where(instances.c.id == instance_id))
    if status != InstanceStatus.TERMINATED:
        return None
    last = (
        await conn.execute(
            select(instance_events.c.type, instance_events.c.step_id)
            .where(
                instance_events.c.instance_id == instance_id,
                # The events that end or re-open an instance: the newest says how it stands.
                instance_events.c.type.in_(
                    (AuditEvent.INSTANCE_TERMINATED, AuditEvent.INSTANCE_RETRIED)
                ),
            )
            .order_by(instance_events.c.id.desc())
            .limit(1)
        )
    ).first()
    # The runner's fault records the failed step on its `instance_terminated`; a user's
    # terminate records none.
    if last is None or last.type != AuditEvent.INSTANCE_TERMINATED or last.step_id is None:
        return None
    failed = (
        await conn.execute(
            select(pointers.c.id, pointers.c.step_id, pointers.c.parent_id)
            .where(
                pointers.c.instance_id == instance_id,
                pointers.c.status == PointerStatus.FAILED,
                pointers.c.step_id == last.step_id,
            )
            .order_by(pointers.c.seq.desc())
            .limit(1)
        )
    ).first()
    if failed is None:
        return None
    container_ids: list[str] = []
    container_steps: list[str] = []
    parent_id = failed.parent_id
    while parent_id is not None:
        parent = (
            await conn.execute(
                select(pointers.c.step_id, pointers.c.parent_id).where(pointers.c.id == parent_id)
            )
        ).one()
        container_ids.append(parent_id)
        container_steps.append(parent.step_id)
        parent_id = parent.parent_id
    return FailedStep(
        failed.id, failed.step_id, failed.parent_id, tuple(container_ids), tuple(container_steps)
    )


async def reopen_at(
    conn: AsyncConnection,
    instance_id: str,
    failed: FailedStep,
    *,
    new_pointer_id: str,
    version: int,
    now_ms: int,
    detail: dict[str, Any],
) -> None:
    """Make a failed instance Runnable again with a fresh Pending execution of its failed
    step. The failed execution stays in the log; the containers it ran in run again (so the
    steps after them still follow); siblings the fault cancelled stay cancelled."""
    if failed.container_ids:
        await conn.execute(
            update(pointers)
            .where(
                pointers.c.id.in_(failed.container_ids),
                pointers.c.status == PointerStatus.CANCELLED,
            )
            .values(status=PointerStatus.RUNNING, completed_at_ms=None, wake_at_ms=None)
        )
    seq = await conn.scalar(
        select(func.max(pointers.c.seq)).where(pointers.c.instance_id == instance_id)
    )
    await conn.execute(
        insert(pointers).values(
            id=new_pointer_id,
            instance_id=instance_id,
            seq=int(seq or 0) + 1,
            step_id=failed.step_id,
            parent_id=failed.parent_id,
            status=PointerStatus.PENDING,
            attempt=0,
        )
    )
    await conn.execute(
        update(instances)
        .where(instances.c.id == instance_id)
        .values(
            status=InstanceStatus.RUNNABLE,
            version=version,
            completed_at_ms=None,
            lease_owner=None,
            lease_until_ms=None,
        )
    )
    await conn.execute(
        insert(instance_events).values(
            instance_id=instance_id,
            type=AuditEvent.INSTANCE_RETRIED,
            step_id=failed.step_id,
            at_ms=now_ms,
            detail_json=orjson.dumps(detail).decode(),
        )
    )
    await refresh_next_run(conn, instance_id, now_ms)
