"""The engine's hot path through the store: one narrow interface, one implementation per database.

A worker round is: claim due instances, load them as a batch, and save each sprint (at its
checkpoints and at its end); a step that sends records the send before the call and the answer
after it (channels/recorded.py). These operations are most of the database work an instance
costs, so each database gets the implementation that is cheapest on it:

- SQLite (`SqliteHotPath`): the inline connection and its direct statements (store/database.py,
  store/direct.py); a statement costs tens of microseconds and there is no round trip.
- PostgreSQL (`store/postgres_hotpath.PostgresHotPath`): asyncpg directly, one round trip per
  operation where it can be (a claim, a batch load, a sprint save in one statement).

Both keep the same guarantees (DESIGN.md §6): a save is one transaction, written only while the
worker still holds the lease (else `LeaseLost`); `next_run_at_ms` is derived from the pointers
as they are after the save, or is simply now when another writer touched the instance during
the sprint, so a reply delivered meanwhile is never hidden; a send is recorded before it is
made and its answer after it (each its own transaction, keyed by the step execution).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from relayflow.instance_state import InstanceState
from relayflow.store import leases as lease_store
from relayflow.store import messages as message_store
from relayflow.store import sprints as sprint_store
from relayflow.store.database import Database
from relayflow.store.messages import Attempt, MessageRow


class HotPath(Protocol):
    async def claim(
        self, owner: str, now_ms: int, lease_ms: int, limit: int
    ) -> list[InstanceState]:
        """Lease up to `limit` runnable instances with due work, and load them (a batch)."""

    async def load(
        self, instance_ids: Sequence[str], owner: str, now_ms: int
    ) -> list[InstanceState]:
        """These instances with their active pointers, those still leased to `owner` (one
        terminated or taken over meanwhile is left out). A wait whose timeout has passed
        stops listening here, so the router cannot also deliver to it."""

    async def save(
        self, state: InstanceState, owner: str, now_ms: int, *, lease_until_ms: int, release: bool
    ) -> bool:
        """Write the sprint's changes in one transaction (see `store.sprints.save_state`):
        True when a held or parked event was handed to a new wait (run the sprint on)."""

    async def record_attempt(self, message: MessageRow) -> Attempt:
        """Record a send before it is made (`store.messages.record_attempt`)."""

    async def record_answer(
        self, row_id: str, umid: str | None, answer: dict[str, Any], status: str
    ) -> None:
        """Record the provider's answer to an attempt (`store.messages.record_answer`)."""

    async def record_answered_send(self, message: MessageRow) -> dict[str, Any]:
        """Record a send with its answer, or return the answer recorded first
        (`store.messages.record_answered_send`)."""


class SqliteHotPath:
    """The hot path on the inline SQLite connection: reads in deferred transactions, each save
    in the process's group commit."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(
        self, owner: str, now_ms: int, lease_ms: int, limit: int
    ) -> list[InstanceState]:
        async with self._db.transaction() as conn:
            claimed = await lease_store.claim_due(conn, owner, now_ms, lease_ms, limit)
        return await self.load(claimed, owner, now_ms) if claimed else []

    async def load(
        self, instance_ids: Sequence[str], owner: str, now_ms: int
    ) -> list[InstanceState]:
        loaded: list[InstanceState] = []
        timed_out: list[str] = []
        async with self._db.read() as conn:
            for instance_id in instance_ids:
                try:
                    state = await sprint_store.load_state(
                        conn, instance_id, owner, now_ms, read_only=True
                    )
                except sprint_store.LeaseLost:
                    continue
                if state is None:
                    timed_out.append(instance_id)
                else:
                    loaded.append(state)
        for instance_id in timed_out:  # a timed-out wait's subscription goes in a transaction
            try:
                async with self._db.transaction() as conn:
                    state = await sprint_store.load_state(conn, instance_id, owner, now_ms)
            except sprint_store.LeaseLost:
                continue
            if state is not None:
                loaded.append(state)
        return loaded

    async def save(
        self, state: InstanceState, owner: str, now_ms: int, *, lease_until_ms: int, release: bool
    ) -> bool:
        async with self._db.transaction() as conn:
            return await sprint_store.save_state(
                conn, state, owner, now_ms, lease_until_ms=lease_until_ms, release=release
            )

    async def record_attempt(self, message: MessageRow) -> Attempt:
        async with self._db.transaction() as conn:
            return await message_store.record_attempt(conn, message)

    async def record_answer(
        self, row_id: str, umid: str | None, answer: dict[str, Any], status: str
    ) -> None:
        async with self._db.transaction() as conn:
            await message_store.record_answer(conn, row_id, umid, answer, status)

    async def record_answered_send(self, message: MessageRow) -> dict[str, Any]:
        async with self._db.transaction() as conn:
            return await message_store.record_answered_send(conn, message)


def hot_path_for(db: Database) -> HotPath:
    """The hot path implementation for `db`'s dialect."""
    if db.is_sqlite:
        return SqliteHotPath(db)
    from relayflow.store.postgres_hotpath import PostgresHotPath

    return PostgresHotPath(db)
