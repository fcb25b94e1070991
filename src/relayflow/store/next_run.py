"""`instances.next_run_at_ms` is derived, never set by hand: every transaction that touches an
instance's pointers recomputes it from them in that transaction, so a reply delivered by the
router and a worker's write can never hide each other's wake-ups (DESIGN.md §6). Sprint saves,
deliveries and status changes all share the one expression here."""

from __future__ import annotations

from sqlalchemy import BigInteger, bindparam, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from relayflow.instance_state import ACTIVE_POINTER_STATUSES, PointerStatus
from relayflow.store.direct import hot
from relayflow.store.tables import instances, pointers

# Hot-path statements are built once: SQLAlchemy then reuses their compiled form instead of
# rebuilding and re-keying a statement per call (most of the CPU of a transition, measured).
# Plain equalities, not `in_()`: an IN list is re-expanded at every execution of a hot statement.
ACTIVE_POINTER = or_(*(pointers.c.status == status for status in ACTIVE_POINTER_STATUSES))
# Now for pending work or a delivered event, else the earliest wake-up; NULL when nothing is
# due. A scalar subquery on the `instance_id` and `now` parameters.
NEXT_RUN = (
    select(
        func.min(
            case(
                (
                    or_(
                        pointers.c.status == PointerStatus.PENDING,
                        pointers.c.event_json.is_not(None),
                    ),
                    bindparam("now", type_=BigInteger),
                ),
                else_=pointers.c.wake_at_ms,
            )
        )
    )
    .where(pointers.c.instance_id == bindparam("instance_id"), ACTIVE_POINTER)
    .scalar_subquery()
)
_REFRESH_NEXT_RUN = hot(
    update(instances)
    .where(instances.c.id == bindparam("instance_id"))
    .values(next_run_at_ms=NEXT_RUN)
)


async def refresh_next_run(conn: AsyncConnection, instance_id: str, now_ms: int) -> None:
    """Derive `next_run_at_ms` from the pointers: now for pending work or delivered events,
    else the earliest wake-up; NULL when nothing is due."""
    await conn.execute(_REFRESH_NEXT_RUN, {"instance_id": instance_id, "now": now_ms})
