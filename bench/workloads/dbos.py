"""The peer baseline: W1's saturation run, unchanged, against the DBOS Transact app.

Same generator, same closed loop and concurrency, same fake 8x8, same window and the same CPU and
memory accounting (the DBOS app is one process); the report divides relayflow's W1 throughput on
SQLite by the SQLite variants' and relayflow's on PostgreSQL by the postgres variant's.

On PostgreSQL the server's CPU is measured too, as relayflow's pg1 / pg2 runs measure it (the
whole server as a process tree, `tree:postgres`), so both systems' database cost per instance
can be compared. `common.all_pids` adds the server only for relayflow deployments, hence the
closed loop here: it is `w1.saturation` with the server added to the sampled processes.
"""

from __future__ import annotations

from typing import Any

from bench.processes import DbosDeployment, FakeLog, postmaster_pid
from bench.settings import DbosSettings, W1Settings
from bench.workloads.common import (
    LoadgenRun,
    all_pids,
    fake_completion,
    latency_summary,
    launch_loadgen,
    measure_window,
    rejected,
    relayflow_memory,
    sms_spec,
    wait_for_tagged,
)
from bench.workloads.w1 import saturation as w1_saturation

SERVER = "tree:postgres"


def pids_with_server(deployment: DbosDeployment, loadgen: LoadgenRun) -> dict[str, int]:
    """`all_pids`, plus the PostgreSQL server's process tree when DBOS's database is on it."""
    pids = all_pids(deployment, loadgen)
    server = postmaster_pid() if deployment.database.pg_name else None
    if server is not None:
        pids[SERVER] = server
    return pids


def saturation_on_postgres(
    deployment: DbosDeployment, settings: W1Settings, concurrency: int, tag: str = "sat"
) -> dict[str, Any]:
    """`w1.saturation` with the server's CPU in the window (`cpuPercent.postgres`)."""
    log = FakeLog(deployment.fake)
    log.skip_existing()
    spec = sms_spec(
        deployment,
        tag,
        mode="closed",
        concurrency=concurrency,
        duration_s=settings.warmup_s + settings.measure_s,
        completion=fake_completion(deployment, log.next),
    )
    loadgen = launch_loadgen(deployment.directory, f"w1-{tag}", spec)
    begin = loadgen.spec["start_at"] + settings.warmup_s
    window = measure_window(
        begin, begin + settings.measure_s, lambda: pids_with_server(deployment, loadgen)
    )
    generated = loadgen.wait(settings.measure_s + settings.drain_s + 120)
    found = wait_for_tagged(log, tag, generated["completed"], 10)
    in_window = [
        arrived for _, arrived in found.values() if window.start.at <= arrived < window.end.at
    ]
    app = list(deployment.relayflow_pids)
    return {
        "concurrency": concurrency,
        "throughput": len(in_window) / window.seconds,
        "cpuMsPerInstance": 1000 * window.cpu_s(app) / len(in_window) if in_window else None,
        "window": window.as_json(app),
        "latencyMs": latency_summary(found, 0),
        "loadgen": generated,
        "rejectedAtFake": rejected(log.items),
    }


def run(deployment: DbosDeployment, settings: DbosSettings) -> dict[str, Any]:
    w1_like = W1Settings(
        concurrency=settings.concurrency,
        warmup_s=settings.warmup_s,
        measure_s=settings.measure_s,
        rates=(),
        rate_s=0,
        drain_s=30,
    )
    saturation = saturation_on_postgres if deployment.database.pg_name else w1_saturation
    result: dict[str, Any] = {"saturation": saturation(deployment, w1_like, settings.concurrency)}
    result["memory"] = relayflow_memory(deployment)
    result["databaseBytes"] = deployment.database_bytes()
    return result
