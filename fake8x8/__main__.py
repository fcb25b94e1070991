"""`python -m fake8x8`: run the fake 8x8 server until SIGTERM / SIGINT.

Prints exactly one JSON line to stdout once every site listens —
`{"sms": url, "chatapps": url, "voice": url, "crm": url, "control": url, "pid": n}` — and
nothing else, so a parent can read it from a pipe. Diagnostics go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys

from fake8x8.faults import ROLES
from fake8x8.server import start
from fake8x8.state import FakeState

SITES = (*ROLES, "control")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fake8x8", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    for role in SITES:
        parser.add_argument(f"--{role}-port", type=int, default=0, help="0 = any free port")
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        help="accepted bearer key (repeatable); with none, any bearer token is accepted",
    )
    parser.add_argument(
        "--subaccount",
        action="append",
        default=[],
        help="allowed subaccount id (repeatable); with none, any valid id is accepted",
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    state = FakeState(args.api_key, args.subaccount)
    ports = {role: getattr(args, f"{role}_port") for role in SITES}
    running = await start(state, args.host, ports)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    sys.stdout.write(json.dumps({**running.urls, "pid": os.getpid()}) + "\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await running.close()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
