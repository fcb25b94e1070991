"""What `/metrics` reads from the database, and what `/readyz` checks.

The database-wide gauges are refreshed when scraped: the counts of live instances (Runnable,
Suspended) at most every `GAUGE_SECONDS`, of ended ones every `ENDED_GAUGE_SECONDS`, and the
due work at every scrape, which is what an operator alerts on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import text

from relayflow.clock import Clock
from relayflow.instance_state import InstanceStatus
from relayflow.store import monitoring as monitoring_store
from relayflow.store.database import Database
from relayflow.telemetry import metrics

GAUGE_SECONDS = 10.0
# Counting Complete and Terminated instances walks all of them (a million: 140-240 ms); their
# count moves slowly and `relayflow_instances_ended_total` has the rate, so every 5 minutes.
ENDED_GAUGE_SECONDS = 300.0
LIVE = (InstanceStatus.RUNNABLE, InstanceStatus.SUSPENDED)
ENDED = (InstanceStatus.COMPLETE, InstanceStatus.TERMINATED)


@dataclass(frozen=True)
class EngineHealth:
    """What readiness asks of a process that runs the engine."""

    running: bool  # the worker loop's task has not ended
    seconds_since_heartbeat: float  # since the loop last came round or a sprint ended


@dataclass
class Readiness:
    ready: bool
    checks: dict[str, str] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "status": "ready" if self.ready else "unavailable",
            "checks": self.checks,
            "reasons": self.reasons,
        }


class MonitoringService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        max_lag_s: float,
        engine: Callable[[], EngineHealth | None],
    ) -> None:
        self._db = db
        self._clock = clock
        self._max_lag_s = max_lag_s
        self._engine = engine  # None when this process does not run the engine
        self.gauge_max_age_s = GAUGE_SECONDS  # how stale the live statuses' counts may be
        self.ended_max_age_s = ENDED_GAUGE_SECONDS  # and the ended statuses'
        self._counted_at: dict[tuple[str, ...], float] = {}

    async def refresh_gauges(self) -> None:
        """Set `relayflow_instances{status}` (live statuses at most `gauge_max_age_s` old,
        ended ones at most `ended_max_age_s`) and `relayflow_work_due` (fresh)."""
        now = time.monotonic()
        due_for = [
            group
            for group, max_age in ((LIVE, self.gauge_max_age_s), (ENDED, self.ended_max_age_s))
            if now - self._counted_at.get(group, -math.inf) >= max_age
        ]
        async with self._db.read() as conn:
            for group in due_for:
                counts = await monitoring_store.instances_by_status(conn, group)
                for status in group:
                    metrics.instances.labels(status).set(counts.get(status, 0))
                self._counted_at[group] = time.monotonic()
            due = await monitoring_store.due_unclaimed(conn, self._clock.now_ms())
        metrics.work_due.set(due)

    async def readiness(self) -> Readiness:
        """Ready: the database answers at the newest schema and, where this process runs the
        engine, its loop is alive and due work does not wait longer than the allowed lag."""
        result = Readiness(ready=True)
        now = self._clock.now_ms()
        try:
            async with self._db.read() as conn:
                await conn.execute(text("SELECT 1"))
                result.checks["database"] = "ok"
                current, head, known = await monitoring_store.schema_state(conn)
                oldest_due = await monitoring_store.oldest_due_unclaimed(conn, now)
        except Exception as error:  # any database failure means "not ready"
            result.checks["database"] = "unavailable"
            result.reasons.append(f"the database does not answer ({type(error).__name__})")
            result.ready = False
            return result
        if current == head:
            result.checks["schema"] = "ok"
        elif not known:  # a newer release migrated it: migrations are additive, carry on
            result.checks["schema"] = f"at {current}, newer than this release ({head})"
        else:
            result.checks["schema"] = f"at {current}, expected {head}"
            result.reasons.append("the schema is not at the newest migration: relayflow db upgrade")
            result.ready = False
        engine = self._engine()
        if engine is None:
            return result
        lag_s = max(0.0, (now - oldest_due) / 1000) if oldest_due is not None else 0.0
        if not engine.running:
            result.checks["worker"] = "stopped"
            result.reasons.append("the worker loop is not running")
        elif engine.seconds_since_heartbeat > self._max_lag_s:
            result.checks["worker"] = "stalled"
            result.reasons.append(
                f"the worker loop has not come round for {engine.seconds_since_heartbeat:.0f} s"
            )
        elif lag_s > self._max_lag_s:
            result.checks["worker"] = "behind"
            result.reasons.append(f"due work has waited {lag_s:.0f} s for a worker")
        else:
            result.checks["worker"] = "ok"
        result.ready = result.ready and result.checks["worker"] == "ok"
        return result
