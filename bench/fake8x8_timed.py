"""The fake 8x8 of fake8x8/ (the repository root) with a bench-only timing log, as its own process.

Why a wrapper: the fake records `receivedAt` as an ISO string with milliseconds and keeps every
request with its headers in memory, which is too coarse for latency and too heavy at 100,000+
messages on the machine under test. This wrapper serves the fake's own handlers unchanged
(same validation, same answers) but
- stamps each request with `time.time()` on arrival (microseconds; the load generator stamps its
  sends with the same clock on the same machine),
- keeps a compact log `[t, role, status, text, destination]` readable incrementally on an extra
  port (`GET /bench/received?since=N`, `GET /bench/counts`),
- keeps a second compact log of every send with its fault and `clientMessageId`
  (`GET /bench/sends?since=N`: `[t, role, status, fault, clientMessageId, text]`; status is
  null for a "drop", 200 for a "lost" one, which was accepted), for the fault workload W5,
- trims the fake's full request list to its last 1,000 entries.

Run: `python -m bench.fake8x8_timed --api-key K`; prints one JSON line with the URLs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import time
from typing import Any

from aiohttp import web

from bench.stats import run_fast
from fake8x8 import server as fake_server
from fake8x8.control import control_app
from fake8x8.faults import ROLES
from fake8x8.state import STATE, FakeState

KEEP_FULL_REQUESTS = 1000
LOG = web.AppKey("log", list)
SENDS = web.AppKey("sends", list)
ENTRY = "bench_entry"  # the fake's record of a request, kept on the request for the wrapper


class LeanState(FakeState):
    """The fake's state with a bounded request list (the bench reads its own compact log)."""

    def record(self, role: str, request: web.Request, raw: bytes) -> dict[str, Any]:
        entry = super().record(role, request, raw)
        request[ENTRY] = entry
        if len(self.requests) > 2 * KEEP_FULL_REQUESTS:
            del self.requests[:KEEP_FULL_REQUESTS]
        return entry


def _fields(raw: bytes) -> tuple[str | None, str | None, str | None]:
    """text, destination and clientMessageId of a send's body (None when absent)."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None, None, None
    if not isinstance(body, dict):
        return None, None, None
    text = body.get("text")
    if text is None and isinstance(body.get("content"), dict):
        text = body["content"].get("text")
    destination = body.get("destination")
    client_id = body.get("clientMessageId") or body.get("clientRequestId")
    return (
        str(text) if text is not None else None,
        str(destination) if destination is not None else None,
        str(client_id) if client_id is not None else None,
    )


def timed_role_app(
    state: FakeState, role: str, log: list[list[Any]], sends: list[list[Any]]
) -> web.Application:
    """The fake's site for `role`, with the arrival of each request stamped and logged. The
    status logged is the fake's own record of the request: a "drop" (connection cut, nothing
    accepted) has none, whatever placeholder the handler returned after cutting it."""
    app = web.Application()
    app[STATE], app[fake_server.ROLE] = state, role

    async def handle(request: web.Request) -> web.StreamResponse:
        arrived = time.time()
        response = await fake_server._handle(request)  # the fake's own handler, unchanged
        text, destination, client_id = _fields(await request.read())  # cached by aiohttp
        entry = request.get(ENTRY)
        status = response.status if entry is None else entry["status"]
        log.append([arrived, role, status, text, destination])
        fault = None if entry is None else entry["fault"]
        sends.append([arrived, role, status, fault, client_id, text])
        return response

    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def bench_app(log: list[list[Any]], sends: list[list[Any]]) -> web.Application:
    app = web.Application()
    app[LOG], app[SENDS] = log, sends

    async def received(request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        items = log[since:]
        return web.json_response({"next": since + len(items), "items": items})

    async def counts(request: web.Request) -> web.Response:
        by_role: dict[str, dict[str, int]] = {}
        for _, role, status, _, _ in log:
            per = by_role.setdefault(role, {})
            per[str(status)] = per.get(str(status), 0) + 1
        return web.json_response({"total": len(log), "byRole": by_role})

    async def sent(request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        items = sends[since:]
        return web.json_response({"next": since + len(items), "items": items})

    app.router.add_get("/bench/received", received)
    app.router.add_get("/bench/sends", sent)
    app.router.add_get("/bench/counts", counts)
    return app


def _listen(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def serve(api_keys: list[str], host: str) -> None:
    state = LeanState(api_keys)
    log: list[list[Any]] = []
    sends: list[list[Any]] = []
    apps = {role: timed_role_app(state, role, log, sends) for role in ROLES}
    apps["control"] = control_app(state)
    apps["bench"] = bench_app(log, sends)
    runners, urls = [], {}
    for name, app in apps.items():
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        runners.append(runner)
        sock = _listen(host)
        await web.SockSite(runner, sock, shutdown_timeout=1.0).start()
        urls[name] = f"http://{host}:{sock.getsockname()[1]}"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    sys.stdout.write(json.dumps({**urls, "pid": os.getpid()}) + "\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api-key", action="append", default=[])
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    run_fast(serve(args.api_key, args.host))


if __name__ == "__main__":
    main()
