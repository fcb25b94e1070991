"""PostgreSQL's autovacuum, played by the bench for its own database when the server runs
without it.

Why: the PostgreSQL server on the development VMs runs with `autovacuum = off` (a setting of
the machine, not of relayflow, and shared with CI, so the bench does not change it). Without
autovacuum no table is ever ANALYZEd, and the planner plans on default selectivities: with
20,000 instances waiting, the worker's "next due" lookup read every runnable instance (10 ms,
1,800 buffers, instead of 0.1 ms and 24 after an ANALYZE), and the figures described a server
nobody runs in production. So, for each PostgreSQL database a benchmark creates (relayflow's
and DBOS's alike), a thread does what autovacuum does with its default settings: every
`naptime_s` it reads `pg_stat_user_tables` and VACUUMs a table whose dead rows exceed
50 + 20 % of its rows (or whose inserts since the last vacuum exceed 1,000 + 20 %), and
ANALYZEs one whose changes since the last analyze exceed 50 + 10 %. Its work is the server's
CPU, which the figures include, as they would include autovacuum's.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from bench.postgres import pg_fetch

# PostgreSQL's defaults (autovacuum_naptime, *_threshold, *_scale_factor).
NAPTIME_S = 60.0
_TABLES = """
SELECT s.relname, greatest(c.reltuples, 0) AS rows, s.n_dead_tup, s.n_ins_since_vacuum,
       s.n_mod_since_analyze
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
"""


def due(row: Any) -> tuple[bool, bool]:
    """(vacuum, analyze) for one row of `_TABLES`, by autovacuum's default thresholds."""
    rows = float(row["rows"])
    vacuum = row["n_dead_tup"] > 50 + 0.2 * rows or row["n_ins_since_vacuum"] > 1000 + 0.2 * rows
    analyze = row["n_mod_since_analyze"] > 50 + 0.1 * rows
    return vacuum, analyze


class Autovacuum:
    """A thread that maintains one database as autovacuum would (module docstring)."""

    def __init__(self, dsn: str, naptime_s: float = NAPTIME_S) -> None:
        self._dsn = dsn
        self._naptime_s = naptime_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-autovacuum", daemon=True)
        self.vacuums = 0
        self.analyzes = 0
        self.errors: list[str] = []

    @staticmethod
    def needed(admin_dsn: str) -> bool:
        """Whether the server runs without autovacuum (then the bench plays it)."""
        return str(pg_fetch(admin_dsn, "SHOW autovacuum")[0][0]) == "off"

    def start(self) -> Autovacuum:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=120)

    def _run(self) -> None:
        while not self._stopping.wait(self._naptime_s):
            try:
                asyncio.run(self._round())
            except Exception as error:  # a run's figures matter more than its upkeep
                if len(self.errors) < 5:
                    self.errors.append(f"{type(error).__name__}: {error}")

    async def _round(self) -> None:
        import asyncpg  # relayflow's own driver

        connection = await asyncpg.connect(self._dsn, timeout=10)
        try:
            for row in await connection.fetch(_TABLES):
                vacuum, analyze = due(row)
                name = '"' + str(row["relname"]).replace('"', '""') + '"'
                if vacuum:
                    await connection.execute(f"VACUUM {'(ANALYZE) ' if analyze else ''}{name}")
                    self.vacuums += 1
                    self.analyzes += int(analyze)
                elif analyze:
                    await connection.execute(f"ANALYZE {name}")
                    self.analyzes += 1
        finally:
            await connection.close()

    def as_json(self) -> dict[str, Any]:
        return {"vacuums": self.vacuums, "analyzes": self.analyzes, "errors": list(self.errors)}
