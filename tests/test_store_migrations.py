"""The Alembic revisions and `store.tables` must describe the same schema, on both dialects."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from relayflow.store.database import Database
from relayflow.store.migrations import current_revision, head_revision
from relayflow.store.tables import metadata


async def test_migrations_match_the_tables(db: Database) -> None:
    def diff(connection):  # type: ignore[no-untyped-def]
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, metadata)

    async with db.read() as conn:
        assert await conn.run_sync(diff) == []
        assert await conn.run_sync(current_revision) == head_revision()


async def test_migrate_is_idempotent(db: Database) -> None:
    await db.migrate()
    await db.migrate()
    async with db.read() as conn:
        tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    assert {"accounts", "api_keys", "definitions", "alembic_version"} <= tables
