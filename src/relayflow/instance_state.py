"""An instance as the runner sees it during one sprint: loaded in one transaction, changed in
memory, written back in one transaction. Dirty tracking keeps the writes to what changed.

It lives at the package root, not in the engine, because the store loads and saves it: both
layers import it, and the store imports nothing of the engine. `NewInstance` (an instance the
router starts and the store inserts) is here for the same reason. The statuses are `StrEnum`s:
members are the strings 8x8 shows and the tables hold, so they bind, compare and serialise
as those strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from relayflow.audit import AuditEvent


class InstanceStatus(StrEnum):
    """The instance's status (`instances.status`, 8x8's `status`)."""

    RUNNABLE = "Runnable"
    SUSPENDED = "Suspended"
    COMPLETE = "Complete"
    TERMINATED = "Terminated"


class PointerStatus(StrEnum):
    """The status of one step execution (`pointers.status`, the 8x8 step-log entry's)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SLEEPING = "Sleeping"
    WAITING_FOR_EVENT = "WaitingForEvent"
    COMPLETE = "Complete"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


# Instances that can still take events, skipped timers and a terminate.
LIVE_INSTANCE_STATUSES = (InstanceStatus.RUNNABLE, InstanceStatus.SUSPENDED)

# Pointers that still have work or a wake-up ahead of them.
ACTIVE_POINTER_STATUSES = (
    PointerStatus.PENDING,
    PointerStatus.RUNNING,
    PointerStatus.SLEEPING,
    PointerStatus.WAITING_FOR_EVENT,
)

# Subscription keys of reply waits start with this (engine/keys.py builds them); the store
# needs it to look for a held message (store/held.py) when such a wait subscribes.
REPLY_KEY_PREFIX = "reply:"


@dataclass
class PointerState:
    id: str
    seq: int
    step_id: str
    parent_id: str | None
    status: PointerStatus
    started_at_ms: int | None = None
    completed_at_ms: int | None = None
    wake_at_ms: int | None = None
    event_key: str | None = None
    has_event: bool = False
    event: Any = None
    state: dict[str, Any] = field(default_factory=dict)
    attempt: int = 0
    new: bool = False
    dirty: bool = False

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_POINTER_STATUSES


@dataclass
class InstanceState:
    id: str
    account_id: str
    definition_id: str
    version: int
    sub_account_id: str | None
    status: InstanceStatus
    data: dict[str, Any]
    started_at_ms: int
    completed_at_ms: int | None
    executions: int
    pointers: dict[str, PointerState]
    next_seq: int
    worker: str | None = None  # who runs this sprint: recorded in step events (audit)
    trace_parent: str | None = None  # the W3C traceparent its sprints continue (tracing)
    # The store's token for the instance row as last read or written (PostgreSQL: its xmin);
    # a save that finds another one knows someone else wrote the row meanwhile.
    row_version: int | None = None
    # When the store loaded it. A wait whose timeout had passed by then stopped listening in
    # the load (its subscription deleted, so no reply can reach it any more); only such a wait
    # may time out in this sprint. One whose timeout passes during the sprint is still
    # subscribed: it times out in the next sprint, after the next load unsubscribes it.
    loaded_at_ms: int | None = None
    subscribe: list[tuple[str, str]] = field(default_factory=list)  # (pointer id, event key)
    unsubscribe: set[str] = field(default_factory=set)  # pointer ids
    errors: list[tuple[str, str, int]] = field(default_factory=list)  # (step, message, at)
    events: list[tuple[AuditEvent, str | None, int, dict[str, Any] | None]] = field(
        default_factory=list
    )

    def active_pointers(self) -> list[PointerState]:
        return sorted((p for p in self.pointers.values() if p.active), key=lambda p: p.seq)

    def children_active(self, parent_id: str) -> bool:
        return any(p.active and p.parent_id == parent_id for p in self.pointers.values())

    def add_pointer(self, pointer_id: str, step_id: str, parent_id: str | None) -> PointerState:
        pointer = PointerState(
            id=pointer_id,
            seq=self.next_seq,
            step_id=step_id,
            parent_id=parent_id,
            status=PointerStatus.PENDING,
            new=True,
        )
        self.next_seq += 1
        self.pointers[pointer_id] = pointer
        return pointer

    def record(
        self,
        kind: AuditEvent,
        step_id: str | None,
        at_ms: int,
        detail: dict[str, Any] | None = None,
    ) -> None:
        self.events.append((kind, step_id, at_ms, detail))

    def clear_changes(self) -> None:
        """After a successful write: what is stored now matches memory."""
        for pointer in self.pointers.values():
            pointer.new = pointer.dirty = False
        self.subscribe.clear()
        self.unsubscribe.clear()
        self.errors.clear()
        self.events.clear()


@dataclass(frozen=True)
class NewInstance:
    """An instance about to start: what the router decided and the store inserts."""

    id: str
    account_id: str
    definition_id: str
    version: int
    sub_account_id: str | None
    data: dict[str, Any]
    entry_step: str
    first_pointer_id: str
    now_ms: int
    contacts: tuple[str, ...] = ()  # who the instance is about (engine/contacts.py)
    trace_parent: str | None = None  # the starting request's span (telemetry/tracing.py)
