"""CPU per auto-reply, in one process: an A/B tool for changes to the hot path.

`python -m bench.cpu_probe [instances] [sqlite|postgres] [--profile FILE]` drives inbound-SMS
webhooks through the ASGI app (no sockets) into a SQLite database (or a fresh PostgreSQL
database on the local server, dropped after) and runs the worker by hand with the sandbox
provider, then prints the process CPU milliseconds per completed instance for three rounds;
on PostgreSQL also the server's CPU per instance (all of the server: run it on a quiet
machine). `--profile FILE` writes a cProfile of the rounds (`python -m pstats FILE`). The full W1
benchmark varies by ±20 % between identical runs on the development VMs (other tenants of the
host); this probe has no load generator, fake server or scheduling in the way and repeats
within a few per cent, so run it before and after a change (e.g. with `git stash`) and compare
the minima. It is not a throughput figure: it leaves out uvicorn's HTTP parsing and the 8x8
connector's HTTP call.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.processes import SUB_ACCOUNT, BenchDatabase, parent_pid, tree_cpu_seconds
from bench.workloads.common import SHORT_CODE, sms_reply_step
from bench.workloads.w1 import REPLY_TEXT
from relayflow.api.app import create_app
from relayflow.api.context import AppContext
from relayflow.config import Settings
from relayflow.store.database import Database

BATCH = 50
ROUNDS = 3
DEFINITION = {  # W1's definition
    "trigger": "inbound_sms",
    "status": "enabled",
    "definition": {"name": "cpu probe auto-reply", "steps": [sms_reply_step("reply", REPLY_TEXT)]},
}


def _inbound(number: int) -> dict[str, Any]:
    return {
        "namespace": "SMS",
        "eventType": "inbound_message_received",
        "description": "probe",
        "payload": {
            "umid": f"probe-{number}",
            "subAccountId": SUB_ACCOUNT,
            "source": f"+659{number:07d}",  # one contact each, as W1's generator does
            "destination": SHORT_CODE,
            "body": "hi",
            "encoding": "GSM7",
            "timestamp": "2026-01-01T00:00:00Z",
        },
    }


async def probe(
    instances: int, url: str, profiler: cProfile.Profile | None = None
) -> tuple[list[float], list[float]]:
    """CPU ms per instance for each round: this process's, and PostgreSQL's (empty on SQLite)."""
    database = Database(url)
    await database.migrate()
    server = None if url.startswith("sqlite") else await _postmaster_of(database)
    settings = Settings(database_url=url, start_rate_per_second=1e9, start_burst=1_000_000_000)
    context = AppContext(settings=settings, db=database)
    account = await context.accounts.create("probe")
    transport = httpx.ASGITransport(app=create_app(context))
    rounds: list[float] = []
    server_rounds: list[float] = []
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
            created = await client.post(
                f"/api/v1/accounts/{account.account_id}/definitions",
                json=DEFINITION,
                headers={"Authorization": f"Bearer {account.api_key}"},
            )
            created.raise_for_status()
            hook = f"/webhooks/{account.account_id}/sms?token={account.webhook_token}"

            async def send(number: int) -> None:
                (await client.post(hook, json=_inbound(number))).raise_for_status()

            for round_number in range(ROUNDS):
                started = time.process_time()
                server_started = tree_cpu_seconds(server) if server else 0.0
                if profiler is not None:
                    profiler.enable()
                for first in range(0, instances, BATCH):
                    base = round_number * instances + first
                    await asyncio.gather(*(send(base + k) for k in range(BATCH)))
                    await context.worker.run_until_idle()
                if profiler is not None:
                    profiler.disable()
                rounds.append((time.process_time() - started) / instances * 1000)
                if server:
                    used = tree_cpu_seconds(server) - server_started
                    server_rounds.append(used / instances * 1000)
    finally:
        context.evaluator.close()
        await context.http.close()
        await database.dispose()
    return rounds, server_rounds


async def _postmaster_of(database: Database) -> int:
    """The root process of the server holding `database` (there may be more than one here)."""
    async with database.transaction() as connection:
        backend = (await connection.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one()
    return parent_pid(int(backend))


def _shown(rounds: list[float]) -> str:
    return " ".join(f"{value:.3f}" for value in rounds) + f"; min {min(rounds):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("instances", nargs="?", type=int, default=1000)
    parser.add_argument("database", nargs="?", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the rounds here")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="relayflow-cpu-probe-"))
    kind = "sqlite" if args.database == "sqlite" else "postgresql"
    database = BenchDatabase.create(kind, directory, prefix="relayflow_probe")
    profiler = cProfile.Profile() if args.profile else None
    try:
        rounds, server_rounds = asyncio.run(probe(args.instances, database.url, profiler))
    finally:
        database.drop()
    print(f"CPU ms per auto-reply, {ROUNDS} rounds of {args.instances}: {_shown(rounds)}")
    if server_rounds:
        print(f"PostgreSQL server CPU ms per auto-reply: {_shown(server_rounds)}")
    if profiler is not None:
        profiler.dump_stats(args.profile)


if __name__ == "__main__":
    main()
