"""Online backup of a live SQLite database (`relayflow db backup FILE`).

SQLite's backup API copies the database page by page. It runs here as a single step
(`pages=-1`) inside one read transaction: in WAL mode that is a consistent snapshot as of its
start while writers (a running `serve`) go on; a copy in several steps would restart whenever
another process writes, so under load it might never finish. The copy is written next to FILE
and renamed into place once complete, so FILE is never a half-written database. PostgreSQL is
refused: pg_dump does the same job there.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from relayflow.store.database import Database


class BackupError(Exception):
    """The backup cannot be taken (PostgreSQL, no database yet, FILE already exists)."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    pages: int
    bytes: int


async def backup_sqlite(db: Database, target: Path) -> BackupResult:
    """Copy the live SQLite database behind `db` to `target` (which must not exist yet)."""
    if not db.is_sqlite:
        raise BackupError(
            "relayflow db backup copies SQLite databases only; back PostgreSQL up with "
            "pg_dump (e.g. pg_dump -Fc -f relayflow.dump DBNAME) and restore it with pg_restore."
        )
    return await asyncio.to_thread(_backup, db, target)


def _backup(db: Database, target: Path) -> BackupResult:
    source = Path(db.url.database or "")
    if not source.is_file():
        raise BackupError(f"there is no database at {source}.")
    target = target.expanduser().absolute()
    if target.resolve() == source.resolve():
        raise BackupError("the backup must be a different file from the database.")
    if target.exists():
        raise BackupError(f"{target} already exists; choose a new file name.")
    if not target.parent.is_dir():
        raise BackupError(f"there is no directory {target.parent}.")
    return _copy(db, target)


def _copy(db: Database, target: Path) -> BackupResult:
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        with db.sqlite_driver_connection() as live, closing(sqlite3.connect(partial)) as copy:
            live.backup(copy, pages=-1)
            # A self-contained file: no -wal beside it, readable by any sqlite3 tool.
            copy.execute("PRAGMA journal_mode=DELETE")
            pages = int(copy.execute("PRAGMA page_count").fetchone()[0])
        with partial.open("rb") as written:
            os.fsync(written.fileno())
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return BackupResult(path=target, pages=pages, bytes=target.stat().st_size)
