"""Started-workflow counters per month (8x8's `/usage` resources)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from relayflow.clock import Clock
from relayflow.store import usage as usage_store
from relayflow.store.database import Database


@dataclass(frozen=True)
class MonthUsage:
    id: str  # 8x8 ids are 24-hex: derived, stable per account and month
    account_id: str
    year: int
    month: int
    started: int


@dataclass(frozen=True)
class CurrentUsage:
    account_id: str
    year: int
    month: int
    started: int
    quota: int | None  # None: no quota


def month_id(account_id: str, year: int, month: int) -> str:
    return hashlib.sha256(f"{account_id}/{year}/{month}".encode()).hexdigest()[:24]


class UsageService:
    def __init__(self, db: Database, clock: Clock, quota: int | None) -> None:
        self._db = db
        self._clock = clock
        self._quota = quota

    async def current(self, account_id: str) -> CurrentUsage:
        now = self._clock.now_ms()
        async with self._db.read() as conn:
            started = await usage_store.this_month(conn, account_id, now)
        year, month = usage_store.month_of(now)
        return CurrentUsage(account_id, year, month, started, self._quota)

    async def history(self, account_id: str) -> list[MonthUsage]:
        """Every month with starts, newest first."""
        async with self._db.read() as conn:
            months = await usage_store.monthly(conn, account_id)
        return [
            MonthUsage(month_id(account_id, year, month), account_id, year, month, started)
            for year, month, started in months
        ]
