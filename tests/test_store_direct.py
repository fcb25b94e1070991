"""The direct SQLite path for hot statements must answer exactly as SQLAlchemy does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, StatementError

from relayflow.store.database import Database
from relayflow.store.direct import DirectResult, hot, is_hot

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", String(10), primary_key=True),
    Column("n", Integer, nullable=False),
    Column("flag", Boolean, nullable=False),
    Column("note", String(50)),
)

SELECT_ALL = select(things).order_by(things.c.id)
INSERT = insert(things)
BUMP = (
    update(things)
    .where(things.c.n >= bindparam("floor"), things.c.flag.is_(True))
    .values(n=things.c.n + 1)
    .returning(things.c.id, things.c.n)
)
COUNT_FLAGGED = select(func.count()).where(things.c.flag == bindparam("flag"))
BY_IDS = select(things.c.id).where(things.c.id.in_(bindparam("ids", expanding=True)))

ROWS: list[dict[str, Any]] = [
    {"id": "a", "n": 1, "flag": True, "note": None},
    {"id": "b", "n": 5, "flag": False, "note": "x"},
    {"id": "c", "n": 9, "flag": True, "note": "y"},
]


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'direct.db'}")
    async with database.transaction() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()


class _Rollback(Exception):
    pass


async def _both(
    db: Database, statement: Any, parameters: Any = None, *, rows: bool = True
) -> tuple[Any, Any]:
    """Run the statement through SQLAlchemy and through the direct path, each in a unit that
    is rolled back, and return both outcomes as (rows or None, rowcount)."""
    answers = []
    for candidate in (statement, hot(statement)):
        try:
            async with db.transaction() as conn:
                result = await conn.execute(candidate, parameters)
                assert isinstance(result, DirectResult) == is_hot(candidate)
                answers.append((result.all() if rows else None, result.rowcount))
                raise _Rollback
        except _Rollback:
            pass
    return answers[0], answers[1]


async def _seed(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute(INSERT, ROWS)


async def test_selects_return_the_same_rows_with_types_converted(db: Database) -> None:
    await _seed(db)
    plain, direct = await _both(db, SELECT_ALL)
    assert [tuple(row) for row in direct[0]] == [tuple(row) for row in plain[0]]
    assert direct[0][0].flag is True
    assert direct[0][1].flag is False
    assert direct[0][2].note == "y"
    assert direct[0][2][1] == 9


async def test_returning_update_and_rowcount_match(db: Database) -> None:
    await _seed(db)
    plain, direct = await _both(db, BUMP, {"floor": 2})
    assert [tuple(row) for row in direct[0]] == [tuple(row) for row in plain[0]] == [("c", 10)]
    # After the rows are read the driver knows the true count; SQLAlchemy reads it too early
    # for UPDATE ... RETURNING on SQLite (0). No caller reads rowcount of a RETURNING statement.
    assert direct[1] == 1


async def test_inserts_one_and_many_with_rowcounts(db: Database) -> None:
    one = {"id": "z", "n": 0, "flag": False}  # a smaller key set: another plan
    plain, direct = await _both(db, INSERT, one, rows=False)
    assert direct[1] == plain[1] == 1
    plain, direct = await _both(db, INSERT, ROWS, rows=False)
    assert direct[1] == plain[1] == 3


async def test_scalar_and_literal_values(db: Database) -> None:
    await _seed(db)
    async with db.transaction() as conn:
        assert await conn.scalar(hot(COUNT_FLAGGED), {"flag": True}) == 2
        assert await conn.scalar(COUNT_FLAGGED, {"flag": True}) == 2
        literal = hot(select(things.c.id).where(things.c.note == "x"))
        assert (await conn.execute(literal)).scalar() == "b"


async def test_errors_are_sqlalchemy_errors(db: Database) -> None:
    await _seed(db)
    with pytest.raises(IntegrityError):
        async with db.transaction() as conn:
            await conn.execute(hot(INSERT), ROWS[0])
    with pytest.raises((KeyError, StatementError)):
        async with db.transaction() as conn:
            await conn.execute(hot(COUNT_FLAGGED), {})
    async with db.read() as conn:  # nothing of the failed units was kept
        assert len((await conn.execute(SELECT_ALL)).all()) == 3


async def test_statements_it_cannot_plan_go_through_sqlalchemy(db: Database) -> None:
    await _seed(db)
    async with db.read() as conn:
        result = await conn.execute(hot(BY_IDS), {"ids": ["a", "c", "q"]})
        assert not isinstance(result, DirectResult)
        assert sorted(row.id for row in result) == ["a", "c"]


async def test_sql_echo_sends_hot_statements_through_sqlalchemy(tmp_path: Path) -> None:
    """With echo on, every statement must reach SQLAlchemy's log, hot ones included."""
    database = Database(f"sqlite:///{tmp_path / 'echo.db'}", echo=True)
    try:
        async with database.transaction() as conn:
            await conn.run_sync(metadata.create_all)
            result = await conn.execute(hot(INSERT), ROWS[0])
            assert not isinstance(result, DirectResult)
            assert result.rowcount == 1
    finally:
        await database.dispose()


async def test_many_rows_with_returning_go_through_sqlalchemy(db: Database) -> None:
    """sqlite3's executemany returns no rows; SQLAlchemy's insertmanyvalues does."""
    async with db.transaction() as conn:
        result = await conn.execute(hot(insert(things).returning(things.c.id)), ROWS)
        assert not isinstance(result, DirectResult)
        assert sorted(row.id for row in result) == ["a", "b", "c"]
