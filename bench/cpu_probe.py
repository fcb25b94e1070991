"""CPU per auto-reply, in one process: an A/B tool for changes to the hot path.

`python -m bench.cpu_probe [instances]` drives inbound-SMS webhooks through the ASGI app (no
sockets) into a SQLite database and runs the worker by hand with the sandbox provider, then
prints the process CPU milliseconds per completed instance for three rounds. The full W1
benchmark varies by ±20 % between identical runs on the development VMs (other tenants of the
host); this probe has no load generator, fake server or scheduling in the way and repeats
within a few per cent, so run it before and after a change (e.g. with `git stash`) and compare
the minima. It is not a throughput figure: it leaves out uvicorn's HTTP parsing and the 8x8
connector's HTTP call.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.processes import SUB_ACCOUNT
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
            "source": "+6591234567",
            "destination": SHORT_CODE,
            "body": "hi",
            "encoding": "GSM7",
            "timestamp": "2026-01-01T00:00:00Z",
        },
    }


async def probe(instances: int) -> list[float]:
    """CPU ms per instance for each round."""
    directory = Path(tempfile.mkdtemp(prefix="relayflow-cpu-probe-"))
    url = f"sqlite:///{directory / 'probe.db'}"
    database = Database(url)
    await database.migrate()
    settings = Settings(database_url=url, start_rate_per_second=1e9, start_burst=1_000_000_000)
    context = AppContext(settings=settings, db=database)
    account = await context.accounts.create("probe")
    transport = httpx.ASGITransport(app=create_app(context))
    rounds: list[float] = []
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
                for first in range(0, instances, BATCH):
                    base = round_number * instances + first
                    await asyncio.gather(*(send(base + k) for k in range(BATCH)))
                    await context.worker.run_until_idle()
                rounds.append((time.process_time() - started) / instances * 1000)
    finally:
        context.evaluator.close()
        await context.http.close()
        await database.dispose()
    return rounds


def main() -> None:
    instances = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rounds = asyncio.run(probe(instances))
    shown = " ".join(f"{value:.3f}" for value in rounds)
    print(f"CPU ms per auto-reply, {ROUNDS} rounds of {instances}: {shown}; min {min(rounds):.3f}")


if __name__ == "__main__":
    main()
