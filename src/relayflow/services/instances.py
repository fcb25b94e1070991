"""Workflow-instance use cases for the API: list, inspect, control, test-start."""

from __future__ import annotations

import heapq
import itertools
import re
from dataclasses import dataclass
from typing import Any

from relayflow.audit import AuditEvent
from relayflow.clock import Clock
from relayflow.engine.router import Router
from relayflow.engine.wakeup import notify_work
from relayflow.errors import ApiError, ErrorCode
from relayflow.instance_state import InstanceStatus
from relayflow.services.admission import admitted
from relayflow.services.definitions import definition_not_found
from relayflow.store import definitions as definition_store
from relayflow.store import instance_reads
from relayflow.store import lifecycle as lifecycle_store
from relayflow.store.database import Database
from relayflow.store.instance_reads import ErrorRow, EventRow, InstanceRow, LogRow

WORKFLOW_ID = re.compile(r"^[0-9a-f]{24}$")
COMMANDS = {
    "suspend": (
        (InstanceStatus.RUNNABLE,),
        InstanceStatus.SUSPENDED,
        AuditEvent.INSTANCE_SUSPENDED,
    ),
    "resume": ((InstanceStatus.SUSPENDED,), InstanceStatus.RUNNABLE, AuditEvent.INSTANCE_RESUMED),
}


def check_workflow_id(raw: str) -> str:
    value = raw.lower()
    if not WORKFLOW_ID.fullmatch(value):
        raise ApiError(ErrorCode.INVALID_ID, "Invalid workflow id.")
    return value


def workflow_not_found(workflow_id: str) -> ApiError:
    return ApiError(ErrorCode.WORKFLOW_NOT_FOUND, f"Workflow {workflow_id} not found.")


@dataclass(frozen=True)
class InstanceView:
    instance: InstanceRow
    logs: list[LogRow] | None


class InstanceService:
    def __init__(self, db: Database, clock: Clock, router: Router) -> None:
        self._db = db
        self._clock = clock
        self._router = router

    async def trigger_http(
        self, account_id: str, body: Any, sub_account_id: str | None
    ) -> list[str]:
        """`POST /triggers/http_request`: start every enabled http_request definition of the
        account (and subaccount) with `body` as `data`; the started workflow ids."""
        result = await admitted(self._router.http_trigger(account_id, body, sub_account_id))
        return result.started

    async def _latest_version(self, conn: Any, account_id: str, definition_id: str) -> int:
        latest = await definition_store.get_version(conn, account_id, definition_id, None)
        if latest is None:
            raise definition_not_found(definition_id)
        return latest.version

    async def list_instances(
        self,
        account_id: str,
        definition_id: str,
        *,
        version: int | None,
        status: str | None,
        started_from_ms: int | None,
        started_to_ms: int | None,
        limit: int,
        offset: int,
        all_versions: bool = False,
        contact: str | None = None,
        before: tuple[int, str] | None = None,
    ) -> list[InstanceRow]:
        """Newest first; the latest version's unless `version` (or `all_versions`) says
        otherwise; `contact` keeps instances whose data mentions that number or chat user."""
        async with self._db.read() as conn:
            latest = await self._latest_version(conn, account_id, definition_id)
            versions = [version or latest]
            if all_versions and version is None:
                # Newest first across versions: each version's newest from its own index,
                # merged, instead of sorting every instance of the definition.
                versions = await definition_store.versions_with_instances(
                    conn, account_id, definition_id
                )
            pages = [
                await instance_reads.list_instances(
                    conn,
                    account_id,
                    definition_id,
                    each,
                    status=status,
                    started_from_ms=started_from_ms,
                    started_to_ms=started_to_ms,
                    limit=limit + offset if len(versions) > 1 else limit,
                    offset=0 if len(versions) > 1 else offset,
                    contact=contact,
                    before=before,
                )
                for each in versions
            ]
        if len(pages) == 1:
            return pages[0]
        merged = heapq.merge(*pages, key=lambda row: (row.started_at_ms, row.id), reverse=True)
        return list(itertools.islice(merged, offset, offset + limit))

    async def counts(self, account_id: str, definition_ids: list[str]) -> dict[str, dict[str, int]]:
        """Instances per definition and status (every version)."""
        async with self._db.read() as conn:
            return await instance_reads.counts_by_status(conn, account_id, definition_ids)

    async def find(self, account_id: str, workflow_id: str) -> InstanceRow:
        """An instance of the account by its id alone; 404 otherwise."""
        workflow_id = check_workflow_id(workflow_id)
        async with self._db.read() as conn:
            instance = await instance_reads.find_instance(conn, account_id, workflow_id)
        if instance is None:
            raise workflow_not_found(workflow_id)
        return instance

    async def event_page(
        self,
        account_id: str,
        definition_id: str,
        workflow_id: str,
        *,
        limit: int,
        offset: int,
        kinds: tuple[str, ...] | None = None,
    ) -> tuple[list[EventRow], int]:
        """One page of the audit events (only `kinds` if given) and how many there are."""
        async with self._db.read() as conn:
            await self._instance(conn, account_id, definition_id, workflow_id)
            events = await instance_reads.events(
                conn, workflow_id, limit=limit, offset=offset, kinds=kinds
            )
            total = await instance_reads.count_events(conn, workflow_id, kinds)
        return events, total

    async def path(
        self, account_id: str, definition_id: str, workflow_id: str
    ) -> tuple[dict[str, int], set[tuple[str, str]]]:
        """The path an instance took: runs per step, and the transitions it followed."""
        async with self._db.read() as conn:
            await self._instance(conn, account_id, definition_id, workflow_id)
            counts = await instance_reads.step_counts(conn, workflow_id)
            completed = await instance_reads.events(
                conn, workflow_id, kinds=(AuditEvent.STEP_COMPLETED, AuditEvent.BRANCHES_STARTED)
            )
        taken: set[tuple[str, str]] = set()
        for event in completed:
            detail = event.detail or {}
            targets = detail.get("next") or detail.get("steps") or []
            if event.step_id is not None:
                taken.update((event.step_id, str(target)) for target in targets)
        return counts, taken

    async def progress(
        self, account_id: str, definition_id: str, workflow_id: str
    ) -> tuple[str, int]:
        """What changes while an instance runs: its status and its number of audit events."""
        async with self._db.read() as conn:
            instance = await self._instance(conn, account_id, definition_id, workflow_id)
            return instance.status, await instance_reads.count_events(conn, workflow_id)

    async def log_page(
        self, account_id: str, definition_id: str, workflow_id: str, *, limit: int, offset: int
    ) -> tuple[InstanceRow, list[LogRow], int]:
        """The instance, one page of its step log (in execution order), and the log's size."""
        async with self._db.read() as conn:
            instance = await self._instance(conn, account_id, definition_id, workflow_id)
            logs = await instance_reads.logs(conn, workflow_id, limit=limit, offset=offset)
            total = await instance_reads.count_logs(conn, workflow_id)
        return instance, logs, total

    async def _instance(
        self, conn: Any, account_id: str, definition_id: str, workflow_id: str
    ) -> InstanceRow:
        await self._latest_version(conn, account_id, definition_id)
        instance = await instance_reads.get_instance(conn, account_id, definition_id, workflow_id)
        if instance is None:
            raise workflow_not_found(workflow_id)
        return instance

    async def get(
        self, account_id: str, definition_id: str, workflow_id: str, *, include_logs: bool
    ) -> InstanceView:
        async with self._db.read() as conn:
            instance = await self._instance(conn, account_id, definition_id, workflow_id)
            logs = await instance_reads.logs(conn, workflow_id) if include_logs else None
        return InstanceView(instance, logs)

    async def errors(self, account_id: str, definition_id: str, workflow_id: str) -> list[ErrorRow]:
        async with self._db.read() as conn:
            await self._instance(conn, account_id, definition_id, workflow_id)
            return await instance_reads.errors(conn, workflow_id)

    async def events(self, account_id: str, definition_id: str, workflow_id: str) -> list[EventRow]:
        async with self._db.read() as conn:
            await self._instance(conn, account_id, definition_id, workflow_id)
            return await instance_reads.events(conn, workflow_id)

    async def control(
        self, account_id: str, definition_id: str, workflow_id: str, command: str
    ) -> None:
        """suspend / resume / terminate, each one transaction; invalid transitions are 400s."""
        now = self._clock.now_ms()
        async with self._db.transaction() as conn:
            instance = await self._instance(conn, account_id, definition_id, workflow_id)
            if command == "terminate":
                changed = await lifecycle_store.terminate(conn, workflow_id, now)
            else:
                from_statuses, to_status, event = COMMANDS[command]
                changed = await lifecycle_store.set_status(
                    conn, workflow_id, from_statuses, to_status, now, event
                )
                if changed and command == "resume":
                    await notify_work(conn)
            if not changed:
                raise ApiError(
                    ErrorCode.INVALID_TRANSITION,
                    f"Cannot {command} workflow {workflow_id}: its status is {instance.status}.",
                )
        if command == "resume":
            self._router.notify_work()

    async def skip_waits(self, account_id: str, definition_id: str, workflow_id: str) -> int:
        """Skip every pending timeout, sleep and retry backoff of the instance: they fire now
        (a wait for a reply times out, as it would have later). One transaction."""
        now = self._clock.now_ms()
        async with self._db.transaction() as conn:
            instance = await self._instance(conn, account_id, definition_id, workflow_id)
            skipped = await lifecycle_store.skip_waits(conn, workflow_id, now)
            if skipped is None:
                raise ApiError(
                    ErrorCode.INVALID_TRANSITION,
                    f"Cannot skip the waits of workflow {workflow_id}: "
                    f"its status is {instance.status}.",
                )
            if skipped:
                await notify_work(conn)
        if skipped:
            self._router.notify_work()
        return skipped

    async def start_test(
        self, account_id: str, definition_id: str, version: int | None, body: dict[str, Any]
    ) -> str:
        """Start one instance; `version` None is the latest, below 1 is refused (never latest)."""
        if version is not None and version < 1:
            raise ApiError(
                ErrorCode.INVALID_PARAMETER, f"version must be at least 1, not {version}."
            )
        async with self._db.read() as conn:
            row = await definition_store.get_version(conn, account_id, definition_id, version)
        if row is None:
            if version is not None:
                raise ApiError(
                    ErrorCode.DEFINITION_NOT_FOUND,
                    f"Definition {definition_id} version {version} not found.",
                )
            raise definition_not_found(definition_id)
        return await admitted(self._router.start_test(account_id, row, body))
