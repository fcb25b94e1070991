"""`relayflow db`: migrate, purge by age, back up."""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import Annotated

import typer

from relayflow.cli.apps import db_app
from relayflow.cli.common import (
    DbOption,
    fail,
    run_on_database,
)
from relayflow.clock import SystemClock, iso_from_ms
from relayflow.config import DEFAULT_DATABASE_URL, Settings
from relayflow.services.retention import (
    PurgeReport,
    RetentionError,
    RetentionService,
    parse_age,
)
from relayflow.store.backup import BackupError, backup_sqlite
from relayflow.store.database import Database


@db_app.command("upgrade")
def db_upgrade(db: DbOption = DEFAULT_DATABASE_URL) -> None:
    """Create or migrate the schema to the newest revision."""

    async def noop(_db: Database) -> None:
        return None

    run_on_database(db, noop)
    typer.echo("database is up to date")


@db_app.command("purge")
def db_purge(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than", help="Purge what ended longer ago than this: 30d, 12h or 30 (days)."
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be removed; change nothing.")
    ] = False,
    db: DbOption = DEFAULT_DATABASE_URL,
) -> None:
    """Purge Complete and Terminated instances that ended before --older-than, with their
    logs, events, messages and receipts (Runnable and Suspended instances are always kept)."""
    try:
        age_ms = parse_age(older_than)
    except RetentionError as error:
        raise fail(f"--older-than: {error}") from None
    settings = Settings()

    def purge(database: Database) -> Awaitable[PurgeReport]:
        service = RetentionService.from_settings(database, SystemClock(), settings)
        return service.purge(age_ms, dry_run=dry_run)

    report = run_on_database(db, purge)
    verb = "would remove" if dry_run else "removed"
    typer.echo(f"ended before {iso_from_ms(report.cutoff_ms)}: {verb}")
    for table, count in report.removed.items():
        typer.echo(f"  {table:<18} {count}")
    if report.pages_reclaimed:
        typer.echo(f"reclaimed {report.pages_reclaimed} free pages (incremental vacuum)")


@db_app.command("backup")
def db_backup(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="Where to write the copy (new).")],
    db: DbOption = DEFAULT_DATABASE_URL,
) -> None:
    """Copy a live SQLite database consistently (SQLite's online backup) while `serve` runs;
    for PostgreSQL use pg_dump."""
    try:
        result = run_on_database(db, lambda database: backup_sqlite(database, file), migrate=False)
    except BackupError as error:
        raise fail(str(error)) from None
    typer.echo(f"backed up {result.pages} pages ({result.bytes} bytes) to {result.path}")
