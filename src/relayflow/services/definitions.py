"""Definition use cases: validate, version, list, delete. Each write is one transaction."""

from __future__ import annotations

from typing import Any

from relayflow.clock import Clock
from relayflow.config import Limits
from relayflow.errors import ApiError, ErrorCode
from relayflow.ids import new_definition_id
from relayflow.model.validation import ValidationResult, validate_definition_input
from relayflow.store import definitions as definition_store
from relayflow.store import instance_reads
from relayflow.store.database import Database
from relayflow.store.definitions import DefinitionRow


def validation_error(result: ValidationResult) -> ApiError:
    """The 400 for an invalid definition: the first problem's code, every problem listed."""
    first = result.problems[0]
    message = first.message
    if len(result.problems) > 1:
        message += f" ({len(result.problems) - 1} more problem(s) in 'errors'.)"
    return ApiError(first.code, message, problems=list(result.problems))


def definition_not_found(definition_id: str) -> ApiError:
    return ApiError(ErrorCode.DEFINITION_NOT_FOUND, f"Definition {definition_id} not found.")


class DefinitionService:
    def __init__(self, db: Database, clock: Clock, limits: Limits) -> None:
        self._db = db
        self._clock = clock
        self._limits = limits

    def validate(self, raw: dict[str, Any]) -> ValidationResult:
        return validate_definition_input(raw, self._limits)

    def _valid(self, raw: dict[str, Any]) -> dict[str, Any]:
        result = self.validate(raw)
        if not result.valid:
            raise validation_error(result)
        return result.canonical

    async def create(self, account_id: str, raw: dict[str, Any]) -> DefinitionRow:
        body = self._valid(raw)
        async with self._db.transaction() as conn:
            return await self._insert(conn, account_id, new_definition_id(), 1, body)

    async def update(
        self, account_id: str, definition_id: str, raw: dict[str, Any]
    ) -> DefinitionRow:
        """PUT: a new version N+1; running instances keep the version they started on."""
        body = self._valid(raw)
        async with self._db.transaction() as conn:
            await definition_store.lock_definition(conn, definition_id)
            version = await definition_store.next_version(conn, account_id, definition_id)
            if version is None:
                raise definition_not_found(definition_id)
            return await self._insert(conn, account_id, definition_id, version, body)

    async def _insert(
        self, conn: Any, account_id: str, definition_id: str, version: int, body: dict[str, Any]
    ) -> DefinitionRow:
        definition = body["definition"]
        return await definition_store.insert_version(
            conn,
            definition_id=definition_id,
            version=version,
            account_id=account_id,
            sub_account_id=body.get("subAccountId"),
            trigger=body["trigger"],
            status=body.get("status", "disabled"),
            name=definition["name"],
            steps=definition["steps"],
            now_ms=self._clock.now_ms(),
        )

    async def list_latest(self, account_id: str, limit: int, offset: int) -> list[DefinitionRow]:
        async with self._db.read() as conn:
            return await definition_store.list_latest(conn, account_id, limit, offset)

    async def history(
        self, account_id: str, definition_id: str, limit: int, offset: int
    ) -> list[DefinitionRow]:
        async with self._db.read() as conn:
            return await definition_store.history(conn, account_id, definition_id, limit, offset)

    async def delete(self, account_id: str, definition_id: str, version: int | None) -> list[int]:
        """Delete one version or all; 404 when nothing live matches."""
        async with self._db.transaction() as conn:
            await definition_store.lock_definition(conn, definition_id)
            deleted = await definition_store.mark_deleted(
                conn, account_id, definition_id, version, self._clock.now_ms()
            )
            if deleted:
                # 8x8: deleting terminates the version's workflows, cancels their waits and
                # timers and deletes their logs: the instances go, with everything they own.
                await instance_reads.delete_instances_of(conn, account_id, definition_id, deleted)
        if not deleted:
            if version is not None:
                raise ApiError(
                    ErrorCode.DEFINITION_NOT_FOUND,
                    f"Definition {definition_id} version {version} not found.",
                )
            raise definition_not_found(definition_id)
        return deleted
