"""The peer baseline: W1 (inbound SMS webhook → SMS reply) on DBOS Transact.

Why this shape: it is what a developer would write to get relayflow's W1 guarantees from DBOS —
a webhook receiver (FastAPI on uvicorn, like relayflow's API) that durably starts a workflow
before answering 200 (the workflow id is 8x8's `umid`, so a retried webhook starts nothing
twice, as relayflow's inbox does), and a workflow whose one step sends the reply to the same
fake 8x8 with the same body (`destination`, `text`, `clientMessageId`). DBOS records the
workflow's start, the step's result and the end in its system database, as relayflow records
its instance, send and completion.

The system database is SQLite or PostgreSQL, chosen by `--db`'s URL. Two SQLite settings:
`--sqlite default` is DBOS as shipped (rollback journal, synchronous=FULL); `--sqlite wal` gives
DBOS's connections relayflow's own pragmas (journal_mode=WAL, synchronous=NORMAL), so the
comparison is not just one of journal modes. On PostgreSQL, DBOS runs as shipped (its default
pool, psycopg), against the same server relayflow's PostgreSQL deployments use.

Run: `python -m bench.dbos_app --db sqlite:///path|postgresql://... --sms-url URL --api-key K
--port P [--sqlite wal]`; prints one JSON line when it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

import aiohttp
import sqlalchemy as sa
import uvicorn
from dbos import DBOS, DBOSConfig, SetWorkflowID
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

SUB_ACCOUNT = "bench-sub"
_session: aiohttp.ClientSession | None = None
_settings: dict[str, str] = {}


async def session() -> aiohttp.ClientSession:
    global _session
    if _session is None or _session.closed:
        connector = aiohttp.TCPConnector(limit=200, limit_per_host=100)
        _session = aiohttp.ClientSession(connector=connector)
    return _session


@DBOS.step(retries_allowed=True, max_attempts=3)
async def send_sms(destination: str, text: str, client_message_id: str) -> dict[str, Any]:
    """POST the reply to the (fake) 8x8 SMS API; 5xx / connection errors are retried."""
    url = f"{_settings['sms_url']}/api/v1/subaccounts/{SUB_ACCOUNT}/messages"
    body = {"destination": destination, "text": text, "clientMessageId": client_message_id}
    client = await session()
    async with client.post(
        url,
        json=body,
        headers={"Authorization": f"Bearer {_settings['api_key']}"},
        timeout=aiohttp.ClientTimeout(total=10),
    ) as response:
        answer: dict[str, Any] = await response.json(content_type=None)
        if response.status >= 500:
            raise RuntimeError(f"8x8 answered {response.status}")
        return answer


@DBOS.workflow()
async def auto_reply(event: dict[str, Any]) -> str:
    payload = event["payload"]
    workflow_id = DBOS.workflow_id or ""
    answer = await send_sms(payload["source"], payload["body"], workflow_id)
    return str(answer.get("umid"))


app = FastAPI()


@app.post("/webhooks/sms")
async def sms_webhook(request: Request) -> JSONResponse:
    event = await request.json()
    payload = event.get("payload") or {}
    if event.get("eventType") != "inbound_message_received" or not payload.get("source"):
        return JSONResponse({"error": "not an inbound SMS"}, status_code=400)
    with SetWorkflowID(str(payload["umid"])):
        handle = await DBOS.start_workflow_async(auto_reply, event)
    return JSONResponse({"started": [handle.get_workflow_id()]})


@app.get("/healthz")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


def use_relayflow_pragmas() -> None:
    """Every SQLite connection of this process gets relayflow's pragmas (WAL, NORMAL)."""

    @sa.event.listens_for(sa.engine.Engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        if type(dbapi_connection).__module__.startswith("sqlite3"):
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--db",
        required=True,
        help="DBOS's system database: sqlite:///path/to/dbos.sqlite or postgresql://.../name",
    )
    parser.add_argument("--sms-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--sqlite", choices=("default", "wal"), default="default", help="SQLite only"
    )
    args = parser.parse_args()
    if args.sqlite == "wal" and args.db.startswith("sqlite"):
        use_relayflow_pragmas()
    _settings.update(sms_url=args.sms_url.rstrip("/"), api_key=args.api_key)
    config: DBOSConfig = {
        "name": "relayflow-bench-baseline",
        "system_database_url": args.db,
        "log_level": "WARNING",
    }
    DBOS(config=config)
    DBOS.launch()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    )
    sys.stdout.write(
        json.dumps({"url": f"http://127.0.0.1:{args.port}", "pid": os.getpid()}) + "\n"
    )
    sys.stdout.flush()
    asyncio.run(server.serve())


if __name__ == "__main__":
    main()
