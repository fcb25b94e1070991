"""SQLite group commit: units that are ready together share one COMMIT, each stays atomic on its
own, and a unit's block exits only once its writes are durable (visible to other connections)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import event, insert, select

from relayflow.store.database import Database
from relayflow.store.tables import accounts


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'group.db'}")
    await database.migrate()
    yield database  # type: ignore[misc]
    await database.dispose()


def _commits(database: Database) -> list[int]:
    counted: list[int] = []
    assert database._sqlite is not None
    event.listen(database._sqlite, "commit", lambda _conn: counted.append(1))
    return counted


async def _add(database: Database, account_id: str, *, fail: bool = False) -> None:
    async with database.transaction() as conn:
        await conn.execute(
            insert(accounts).values(id=account_id, webhook_token_hash="x" * 64, created_at_ms=1)
        )
        if fail:
            raise RuntimeError(f"{account_id} changed its mind")


def _stored(path: Path) -> set[str]:
    """What another connection (another process, say) sees: committed rows only."""
    with sqlite3.connect(path) as other:
        return {row[0] for row in other.execute("SELECT id FROM accounts")}


async def test_units_ready_together_share_a_commit(sqlite_db: Database, tmp_path: Path) -> None:
    commits = _commits(sqlite_db)
    await asyncio.gather(*(_add(sqlite_db, f"acct-{n}") for n in range(20)))
    assert _stored(tmp_path / "group.db") == {f"acct-{n}" for n in range(20)}
    assert 1 <= len(commits) < 20


async def test_a_failing_unit_rolls_back_alone(sqlite_db: Database, tmp_path: Path) -> None:
    commits = _commits(sqlite_db)
    outcomes = await asyncio.gather(
        _add(sqlite_db, "kept-1"),
        _add(sqlite_db, "dropped", fail=True),
        _add(sqlite_db, "kept-2"),
        return_exceptions=True,
    )
    assert outcomes[0] is None
    assert outcomes[2] is None
    assert isinstance(outcomes[1], RuntimeError)
    assert _stored(tmp_path / "group.db") == {"kept-1", "kept-2"}
    assert len(commits) == 1


async def test_a_unit_is_durable_when_its_block_exits(sqlite_db: Database, tmp_path: Path) -> None:
    for n in range(3):
        await _add(sqlite_db, f"serial-{n}")
        assert f"serial-{n}" in _stored(tmp_path / "group.db")
    async with sqlite_db.read() as conn:
        rows = await conn.execute(select(accounts.c.id))
        assert {row.id for row in rows} == {"serial-0", "serial-1", "serial-2"}


async def test_a_constraint_violation_fails_only_its_unit(
    sqlite_db: Database, tmp_path: Path
) -> None:
    await _add(sqlite_db, "taken")
    outcomes = await asyncio.gather(
        _add(sqlite_db, "taken"), _add(sqlite_db, "fresh"), return_exceptions=True
    )
    assert isinstance(outcomes[0], Exception)
    assert "UNIQUE" in str(outcomes[0])
    assert outcomes[1] is None
    assert _stored(tmp_path / "group.db") == {"taken", "fresh"}


async def test_a_lost_transaction_fails_every_unit_of_its_group(
    sqlite_db: Database, tmp_path: Path
) -> None:
    async def lose_the_transaction() -> None:
        # A unit that ends the shared transaction behind the store's back (as SQLite does by
        # itself after SQLITE_FULL or an I/O error): nobody in its group may believe it is saved.
        async with sqlite_db.transaction() as conn:
            await conn.execute(
                insert(accounts).values(id="lost", webhook_token_hash="x" * 64, created_at_ms=1)
            )
            await conn.exec_driver_sql("ROLLBACK")

    outcomes = await asyncio.gather(
        _add(sqlite_db, "before"),
        lose_the_transaction(),
        _add(sqlite_db, "after"),
        return_exceptions=True,
    )
    assert all(isinstance(outcome, Exception) for outcome in outcomes), outcomes
    assert _stored(tmp_path / "group.db") == set()
    await _add(sqlite_db, "next")  # the store goes on with a fresh transaction
    assert _stored(tmp_path / "group.db") == {"next"}
