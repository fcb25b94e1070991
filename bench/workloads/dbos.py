"""The peer baseline: W1's saturation run, unchanged, against the DBOS Transact app.

Same generator, same closed loop and concurrency, same fake 8x8, same window and the same CPU and
memory accounting (the DBOS app is one process); the report divides relayflow's W1 throughput on
SQLite by the SQLite variants' and relayflow's on PostgreSQL by the postgres variant's.

On PostgreSQL the server's CPU is in the window too (`common.all_pids` samples the whole
server for any target whose database is on it), as in relayflow's pg1 / pg2 runs, so both
systems' database cost per instance can be compared.
"""

from __future__ import annotations

from typing import Any

from bench.processes import DbosDeployment
from bench.settings import DbosSettings, W1Settings
from bench.workloads.common import relayflow_memory
from bench.workloads.w1 import saturation


def run(deployment: DbosDeployment, settings: DbosSettings) -> dict[str, Any]:
    w1_like = W1Settings(
        concurrency=settings.concurrency,
        warmup_s=settings.warmup_s,
        measure_s=settings.measure_s,
        rates=(),
        rate_s=0,
        drain_s=30,
    )
    result: dict[str, Any] = {"saturation": saturation(deployment, w1_like, settings.concurrency)}
    result["memory"] = relayflow_memory(deployment)
    result["databaseBytes"] = deployment.database_bytes()
    return result
