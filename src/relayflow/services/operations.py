"""Operator actions shared by the REST API and the console: retry a failed instance from its
failed step, and suspend / resume / terminate every instance matching the list's filters.

Retry re-runs only the failed step (a fresh execution; the failed one stays in the log) and
whatever follows it as usual; branches that the fault cancelled beside it stay cancelled, and
the `If` steps it ran inside run on, so the steps after them still follow.

Bulk actions walk the matching instances in keyset batches of `BATCH` (one read transaction
per batch), then change each instance in a transaction of its own through the same store
functions as the single-instance commands: no transaction holds more than one instance.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from relayflow.clock import Clock, ms_from_iso
from relayflow.engine.contacts import phone_digits
from relayflow.engine.router import Router
from relayflow.engine.wakeup import notify_work
from relayflow.errors import ApiError, ErrorCode
from relayflow.ids import new_uuid
from relayflow.instance_state import InstanceStatus
from relayflow.services.definitions import definition_not_found
from relayflow.services.instances import COMMANDS, workflow_not_found
from relayflow.store import definitions as definition_store
from relayflow.store import instance_reads
from relayflow.store import lifecycle as lifecycle_store
from relayflow.store import operations as operation_store
from relayflow.store.database import Database
from relayflow.store.instance_reads import InstanceRow

BATCH = 100
MAX_INT32 = 2**31 - 1
BulkCommand = Literal["suspend", "resume", "terminate"]
# The statuses each bulk action applies to; other matching instances are skipped.
APPLIES_TO: dict[str, tuple[InstanceStatus, ...]] = {
    "suspend": (InstanceStatus.RUNNABLE,),
    "resume": (InstanceStatus.SUSPENDED,),
    "terminate": (InstanceStatus.RUNNABLE, InstanceStatus.SUSPENDED),
}


class BulkActionInput(BaseModel):
    """`POST …/workflows/bulk`: the action and the instance list's filters. Unknown keys are
    refused: a misspelt filter must not widen the action to every instance."""

    model_config = ConfigDict(extra="forbid")
    action: BulkCommand = Field(description="suspend, resume or terminate.")
    status: Literal["Runnable", "Suspended", "Complete", "Terminated"] | None = None
    version: Annotated[int, Field(ge=1, le=MAX_INT32)] | Literal["all"] | None = Field(
        default=None, description='A version number, "all", or omitted for the latest version.'
    )
    startTimeFrom: str | None = Field(
        default=None,
        description="ISO-8601 minimum start time.",
        json_schema_extra={"format": "date-time"},
    )
    startTimeTo: str | None = Field(
        default=None,
        description="ISO-8601 maximum start time.",
        json_schema_extra={"format": "date-time"},
    )
    contact: str | None = Field(
        default=None, min_length=1, max_length=100, description="Phone number or chat user id."
    )

    @field_validator("action", mode="before")
    @classmethod
    def _any_case(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _times(self) -> BulkActionInput:
        for name in ("startTimeFrom", "startTimeTo"):
            value = getattr(self, name)
            if value is not None:
                try:
                    ms_from_iso(value)
                except ValueError:
                    raise ValueError(f"{name} must be an ISO-8601 time") from None
        return self

    def filters(self) -> InstanceFilter:
        contact = self.contact.strip() if self.contact else None
        return InstanceFilter(
            version=self.version if isinstance(self.version, int) else None,
            all_versions=self.version == "all",
            status=self.status,
            started_from_ms=ms_from_iso(self.startTimeFrom) if self.startTimeFrom else None,
            started_to_ms=ms_from_iso(self.startTimeTo) if self.startTimeTo else None,
            # As instances record contacts (engine/contacts.py): a phone number's digits.
            contact=(phone_digits(contact) or contact) if contact else None,
        )


@dataclass(frozen=True)
class InstanceFilter:
    """The instance list's filters (`InstanceService.list_instances`)."""

    version: int | None = None
    all_versions: bool = False
    status: str | None = None
    started_from_ms: int | None = None
    started_to_ms: int | None = None
    contact: str | None = None


@dataclass(frozen=True)
class BulkResult:
    matched: int  # instances matching the filters
    changed: int  # ... that the action changed (a preview: that it would change)
    skipped: int  # ... in a status the action does not apply to


class OperatorActions:
    def __init__(self, db: Database, clock: Clock, router: Router) -> None:
        self._db = db
        self._clock = clock
        self._router = router

    async def retry(
        self,
        account_id: str,
        definition_id: str,
        workflow_id: str,
        *,
        to_latest: bool,
        by: str,
    ) -> InstanceRow:
        """Re-open an instance a failed step terminated, at that step, on its own version or
        (`to_latest`) on the newest one if the step is there in the same place. One
        transaction; the worker is woken."""
        now = self._clock.now_ms()
        async with self._db.transaction() as conn:
            latest = await definition_store.get_version(conn, account_id, definition_id, None)
            if latest is None:
                raise definition_not_found(definition_id)
            instance = await instance_reads.get_instance(
                conn, account_id, definition_id, workflow_id
            )
            if instance is None:
                raise workflow_not_found(workflow_id)
            failed = await operation_store.failed_step(conn, workflow_id)
            if failed is None:
                raise ApiError(ErrorCode.INVALID_TRANSITION, _not_failed(instance))
            version = instance.version
            if to_latest and latest.version != version:
                problem = _placement_problem(latest.steps, failed)
                if problem is not None:
                    raise ApiError(
                        ErrorCode.INVALID_PARAMETER,
                        f"Cannot retry workflow {workflow_id} on version {latest.version}: "
                        f"{problem}.",
                    )
                version = latest.version
            await operation_store.reopen_at(
                conn,
                workflow_id,
                failed,
                new_pointer_id=new_uuid(),
                version=version,
                now_ms=now,
                detail={
                    "by": by,
                    "fromVersion": instance.version,
                    "version": version,
                    "failedExecution": failed.pointer_id,
                },
            )
            await notify_work(conn)
        self._router.notify_work()
        async with self._db.read() as conn:
            reopened = await instance_reads.get_instance(
                conn, account_id, definition_id, workflow_id
            )
        if reopened is None:  # deleted meanwhile with its definition
            raise workflow_not_found(workflow_id)
        return reopened

    async def retryable(self, account_id: str, definition_id: str, workflow_id: str) -> bool:
        """Whether `retry` would accept the instance now (the console shows its button)."""
        async with self._db.read() as conn:
            instance = await instance_reads.get_instance(
                conn, account_id, definition_id, workflow_id
            )
            if instance is None:
                return False
            return await operation_store.failed_step(conn, workflow_id, lock=False) is not None

    async def bulk(
        self, account_id: str, definition_id: str, action: str, filters: InstanceFilter
    ) -> BulkResult:
        """Apply `action` to every matching instance, a batch per transaction."""
        matched = changed = 0
        async for rows in self._matching(account_id, definition_id, filters):
            matched += len(rows)
            batch_changed = 0
            for row in rows:
                # One transaction per instance: it holds one instance's lock at a time, so it
                # can never deadlock with the router or a worker locking several.
                async with self._db.transaction() as conn:
                    if await _apply(conn, action, row.id, self._clock.now_ms()):
                        batch_changed += 1
                        if action == "resume":
                            await notify_work(conn)
            changed += batch_changed
            if batch_changed and action == "resume":
                self._router.notify_work()
        return BulkResult(matched, changed, matched - changed)

    async def preview(
        self, account_id: str, definition_id: str, action: str, filters: InstanceFilter
    ) -> BulkResult:
        """What `bulk` would do now, changing nothing (the console's confirmation)."""
        matched = applicable = 0
        async for rows in self._matching(account_id, definition_id, filters):
            matched += len(rows)
            applicable += sum(row.status in APPLIES_TO[action] for row in rows)
        return BulkResult(matched, applicable, matched - applicable)

    async def _matching(
        self, account_id: str, definition_id: str, filters: InstanceFilter
    ) -> AsyncIterator[list[InstanceRow]]:
        """Matching instances in batches, version by version, newest first by keyset (an
        instance changed by an earlier batch is never seen twice)."""
        async with self._db.read() as conn:
            latest = await definition_store.get_version(conn, account_id, definition_id, None)
            if latest is None:
                raise definition_not_found(definition_id)
            versions = [filters.version or latest.version]
            if filters.all_versions and filters.version is None:
                versions = await definition_store.versions_with_instances(
                    conn, account_id, definition_id
                )
        for version in versions:
            before: tuple[int, str] | None = None
            while True:
                async with self._db.read() as conn:
                    rows = await instance_reads.list_instances(
                        conn,
                        account_id,
                        definition_id,
                        version,
                        status=filters.status,
                        started_from_ms=filters.started_from_ms,
                        started_to_ms=filters.started_to_ms,
                        limit=BATCH,
                        offset=0,
                        contact=filters.contact,
                        before=before,
                    )
                if rows:
                    yield rows
                if len(rows) < BATCH:
                    break
                before = (rows[-1].started_at_ms, rows[-1].id)


async def _apply(conn: Any, action: str, instance_id: str, now_ms: int) -> bool:
    """One instance, through the same store functions as the single-instance commands."""
    if action == "terminate":
        return await lifecycle_store.terminate(conn, instance_id, now_ms)
    from_statuses, to_status, event = COMMANDS[action]
    return await lifecycle_store.set_status(
        conn, instance_id, from_statuses, to_status, now_ms, event
    )


def _not_failed(instance: InstanceRow) -> str:
    if instance.status == InstanceStatus.TERMINATED:
        reason = "it was terminated by a user, not by a failed step"
    else:
        reason = f"its status is {instance.status}"
    return (
        f"Cannot retry workflow {instance.id}: {reason}. "
        "Only an instance that a failed step terminated can be retried."
    )


def _containers(steps: list[Any], parent: str | None, into: dict[str, str | None]) -> None:
    """Each step id → the id of the `If` step whose branch holds it (None: top level)."""
    for step in steps:
        if not isinstance(step, dict) or not isinstance(step.get("id"), str):
            continue
        into[step["id"]] = parent
        for branch in step.get("do") or []:
            if isinstance(branch, list):
                _containers(branch, step["id"], into)


def _placement_problem(steps: list[Any], failed: operation_store.FailedStep) -> str | None:
    """Why the failed step cannot resume in this version (missing, or moved to another
    branch: its successors and the steps after its `If` would no longer line up)."""
    parent_of: dict[str, str | None] = {}
    _containers(steps, None, parent_of)
    if failed.step_id not in parent_of:
        return f"it has no step '{failed.step_id}'"
    chain: list[str] = []
    parent = parent_of[failed.step_id]
    while parent is not None:
        chain.append(parent)
        parent = parent_of.get(parent)
    if tuple(chain) != failed.container_step_ids:
        return f"step '{failed.step_id}' is not inside the same If steps there"
    return None
