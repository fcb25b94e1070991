"""Retention: ended instances older than `RELAYFLOW_RETENTION_DAYS` are purged with their logs,
events, messages and receipts, by the worker in the background or by `relayflow db purge`.

A purge works in batches of `retention_batch_size` instances, one transaction each, yielding the
event loop between them so the hot path's own transactions go in between (on SQLite a batch is
one unit of a commit group; on PostgreSQL it skips rows someone holds). On SQLite the pages a
purge freed are then handed back to the file system by incremental vacuum, a few hundred pages
per transaction, when the database was created in that mode (new databases are).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass, field

import structlog
from sqlalchemy.exc import SQLAlchemyError

from relayflow.clock import Clock
from relayflow.config import Settings
from relayflow.store import retention as retention_store
from relayflow.store.database import Database

log = structlog.get_logger("relayflow.retention")

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
# Pages given back to the file system per transaction (1 MB at the default page size): a
# transaction on SQLite runs inline on the event loop, so each stays short.
VACUUM_PAGES_PER_TRANSACTION = 256
_AGE = re.compile(r"(\d+(?:\.\d+)?)([dh]?)")


class RetentionError(ValueError):
    """An age that is not `<N>d`, `<N>h` or a plain number of days."""


def parse_age(text: str) -> int:
    """Milliseconds of an age written `30d`, `12h` or `30` (days); must be more than zero."""
    match = _AGE.fullmatch(text.strip().lower())
    if match is None:
        raise RetentionError(f"'{text}' is not an age: write days as 30d (or 30) or hours as 12h.")
    amount = float(match.group(1))
    ms = round(amount * (HOUR_MS if match.group(2) == "h" else DAY_MS))
    if ms <= 0:
        raise RetentionError(f"'{text}' is no age: it must be more than zero.")
    return ms


@dataclass
class PurgeReport:
    """What a purge removed (or, for a dry run, would remove) per table."""

    cutoff_ms: int
    dry_run: bool
    removed: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(retention_store.PURGED_TABLES, 0)
    )
    batches: int = 0
    pages_reclaimed: int = 0

    @property
    def instances(self) -> int:
        return self.removed["instances"]

    def add(self, batch: dict[str, int]) -> None:
        for table, count in batch.items():
            self.removed[table] += count


class RetentionService:
    """Purges ended instances by age; `run_forever` is the worker's background loop."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        retention_days: float,
        batch_size: int = 50,
        interval_s: float = 60.0,
    ) -> None:
        self._db = db
        self._clock = clock
        self._retention_ms = round(retention_days * DAY_MS)
        self._batch_size = batch_size
        self._interval_s = interval_s

    @classmethod
    def from_settings(cls, db: Database, clock: Clock, settings: Settings) -> RetentionService:
        return cls(
            db,
            clock,
            retention_days=settings.retention_days,
            batch_size=settings.retention_batch_size,
            interval_s=settings.retention_interval_seconds,
        )

    @property
    def enabled(self) -> bool:
        """False when RELAYFLOW_RETENTION_DAYS is 0 (keep everything)."""
        return self._retention_ms > 0

    async def purge(
        self, older_than_ms: int, *, dry_run: bool = False, stop: asyncio.Event | None = None
    ) -> PurgeReport:
        """Purge instances that ended more than `older_than_ms` ago, batch by batch until none
        is left (or `stop` is set); a dry run counts what would go and changes nothing."""
        report = PurgeReport(cutoff_ms=self._clock.now_ms() - older_than_ms, dry_run=dry_run)
        if dry_run:
            async with self._db.read() as conn:
                report.add(await retention_store.count_purgeable(conn, report.cutoff_ms))
            return report
        while stop is None or not stop.is_set():
            async with self._db.transaction() as conn:
                batch = await retention_store.purge_batch(
                    conn, report.cutoff_ms, self._batch_size, skip_locked=not self._db.is_sqlite
                )
            if not batch:
                break
            report.add(batch)
            report.batches += 1
            if batch["instances"] < self._batch_size:
                break
            await asyncio.sleep(0)  # let the hot path's transactions in between batches
        if report.instances and self._db.is_sqlite:
            report.pages_reclaimed = await self.reclaim_space(stop)
        return report

    async def reclaim_space(self, stop: asyncio.Event | None = None) -> int:
        """SQLite: hand free pages back to the file system (incremental vacuum), a bounded
        number per transaction; the pages handed back. Nothing to do on PostgreSQL, whose
        autovacuum makes the space reusable."""
        if not self._db.is_sqlite:
            return 0
        total = 0
        while stop is None or not stop.is_set():
            async with self._db.transaction() as conn:
                freed = await retention_store.sqlite_incremental_vacuum(
                    conn, VACUUM_PAGES_PER_TRANSACTION
                )
            total += freed
            if freed < VACUUM_PAGES_PER_TRANSACTION:
                break
            await asyncio.sleep(0)
        return total

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Purge every `retention_interval_seconds` until `stop` is set; returns at once when
        retention is off. A failed round (database unreachable) is logged and tried again."""
        if not self.enabled:
            return
        if self._db.is_sqlite:
            async with self._db.read() as conn:
                mode = await retention_store.sqlite_auto_vacuum_mode(conn)
            if mode != "incremental":
                log.warning("retention_space_not_reclaimed", auto_vacuum=mode)
        while not stop.is_set():
            try:
                report = await self.purge(self._retention_ms, stop=stop)
            except (SQLAlchemyError, OSError) as error:
                log.warning("retention_failed", error=str(error).splitlines()[0])
            else:
                if report.instances:
                    log.info(
                        "retention_purged",
                        instances=report.instances,
                        rows=sum(report.removed.values()),
                        pages_reclaimed=report.pages_reclaimed,
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval_s)
