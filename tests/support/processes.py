"""Real relayflow processes for process-level tests: start, wait for, SIGKILL, and show
their stderr when a test fails. One place, so every suite starts processes the same way."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest

RELAYFLOW = Path(sys.executable).parent / "relayflow"
# A killed process keeps the leases it held; the next process takes them over when they expire.
# The default (60 s) would make every test wait a minute.
LEASE_SECONDS = "3"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def child_env(**settings: str) -> dict[str, str]:
    """This environment without RELAYFLOW_* variables, plus `settings` as RELAYFLOW_<NAME>."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAYFLOW_")}
    env.update({f"RELAYFLOW_{name.upper()}": value for name, value in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wait_for(
    check: Callable[[], T | None], what: str, deadline_s: float = 30.0, interval_s: float = 0.05
) -> T:
    """Poll `check` until it returns something truthy, and return that (never None, so a
    check may answer "not yet" with None); fail after `deadline_s`."""
    deadline = time.monotonic() + deadline_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {deadline_s} s waiting for {what}")
        time.sleep(interval_s)


class Child:
    """One relayflow process. stdout and stderr go to files: a full pipe would block it."""

    def __init__(self, workdir: Path, name: str, args: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.stdout_path = workdir / f"{name}.stdout"
        self.stderr_path = workdir / f"{name}.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [str(RELAYFLOW), *args],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                cwd=workdir,
                env=env,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            pytest.fail(
                f"{self.name} exited with {self.process.returncode}\n"
                f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
            )

    def terminate(self, timeout_s: float = 15.0) -> int:
        """SIGTERM, then the exit code: a clean shutdown must come within `timeout_s`."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.name} ignored SIGTERM for {timeout_s} s\n{self.stderr}")

    def kill9(self) -> None:
        """SIGKILL: no handler, no cleanup, no final commit."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def error_logs(self) -> list[dict[str, Any]]:
        """structlog lines at error level or above (e.g. sprint_failed, claim_failed)."""
        found = []
        for line in self.stderr.splitlines():
            if not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("level") in ("error", "critical", "exception"):
                found.append(entry)
        return found


class Server(Child):
    """`relayflow serve` or `relayflow api` on a port of its own."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        command: str,
        db_url: str,
        env: dict[str, str],
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        super().__init__(workdir, name, [command, "--db", db_url, "--port", str(self.port)], env)

    def wait_healthy(self, deadline_s: float = 30.0) -> None:
        deadline = time.monotonic() + deadline_s
        last = "no answer"
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                response = httpx.get(f"{self.base_url}/healthz", timeout=1.0)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text}"
            except httpx.TransportError as error:
                last = repr(error)
            time.sleep(0.05)
        pytest.fail(f"{self.name}: /healthz not 200 within {deadline_s} s ({last})\n{self.stderr}")

    def printed_json(self) -> list[dict[str, Any]]:
        """Every JSON object printed on stdout (the demo credentials on a first start)."""
        text = self.stdout
        decoder = json.JSONDecoder()
        found: list[dict[str, Any]] = []
        index = text.find("{")
        while index != -1:
            document, end = decoder.raw_decode(text, index)
            found.append(document)
            index = text.find("{", end)
        return found


class Worker(Child):
    """`relayflow worker`; its owner id is printed on stdout at start."""

    def __init__(self, workdir: Path, name: str, db_url: str, env: dict[str, str]) -> None:
        super().__init__(workdir, name, ["worker", "--db", db_url], env)
        self.owner = ""

    def wait_started(self, deadline_s: float = 30.0) -> str:
        def started() -> str | None:
            self.check_alive()
            match = re.search(r"relayflow worker (\S+) running", self.stdout)
            return match.group(1) if match and "worker_started" in self.stderr else None

        self.owner = wait_for(started, f"{self.name} to start", deadline_s)
        return self.owner


class Processes:
    """Every process a test starts. On exit, SIGKILL whatever still runs (by pid); when the
    test failed, print each process's stderr so the failure report shows it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[Child] = []

    def serve(self, db_url: str, name: str, port: int | None = None, **settings: str) -> Server:
        env = child_env(worker_lease_seconds=LEASE_SECONDS, **settings)
        server = Server(self.workdir, name, "serve", db_url, env, port)
        self.children.append(server)
        return server

    def api(self, db_url: str, name: str, **settings: str) -> Server:
        server = Server(self.workdir, name, "api", db_url, child_env(**settings))
        self.children.append(server)
        return server

    def worker(self, db_url: str, name: str, **settings: str) -> Worker:
        worker = Worker(self.workdir, name, db_url, child_env(**settings))
        self.children.append(worker)
        return worker

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for child in self.children:
            try:
                child.kill9()
            except (OSError, subprocess.TimeoutExpired) as error:
                print(f"could not kill {child.name} (pid {child.pid}): {error}")
        if exc_type is not None:
            for child in self.children:
                lines = child.stderr.splitlines()
                print(f"\n----- {child.name} (pid {child.pid}) stderr, last 150 lines -----")
                print("\n".join(lines[-150:]))


# --------------------------------------------------------------------------------------------
# Watching the workers' leases from outside


class LeaseSampler(threading.Thread):
    """Every change of an instance's lease owner (`instances.lease_owner`, PostgreSQL), with the
    database clock when it was seen. Sampled every few milliseconds from a thread of its own,
    so the test thread can kill workers meanwhile; `finish()` re-raises what went wrong."""

    def __init__(self, db_url: str) -> None:
        super().__init__(daemon=True)
        self.db_url = db_url
        self.owner_now: dict[str, str] = {}
        self.seen: dict[str, list[tuple[int, str]]] = defaultdict(list)  # id -> [(ms, owner)]
        self.samples = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self.sample())
        except BaseException as error:  # reported by the test thread
            self.error = error

    async def sample(self) -> None:
        conn = await asyncpg.connect(self.db_url, timeout=10)
        try:
            while not self.stop.is_set():
                rows = await conn.fetch(
                    "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now_ms, "
                    "id, lease_owner FROM instances WHERE lease_owner IS NOT NULL"
                )
                self.samples += 1
                for row in rows:
                    if self.owner_now.get(row["id"]) != row["lease_owner"]:
                        self.owner_now[row["id"]] = row["lease_owner"]
                        self.seen[row["id"]].append((row["now_ms"], row["lease_owner"]))
                await asyncio.sleep(0.005)
        finally:
            await conn.close()

    def finish(self) -> dict[str, list[tuple[int, str]]]:
        """Stop sampling; every instance's owners in the order seen, as {id: [(ms, owner)]}."""
        self.stop.set()
        self.join(timeout=10)
        if self.error:
            raise self.error
        return self.seen

    def by_owner(self) -> dict[str, set[str]]:
        """Which instances each owner was seen holding (after `finish()`)."""
        held: dict[str, set[str]] = defaultdict(set)
        for instance, changes in self.seen.items():
            for _, owner in changes:
                held[owner].add(instance)
        return dict(held)


# --------------------------------------------------------------------------------------------
# One-shot CLI commands


def run_cli(env: dict[str, str], *args: str) -> Any:
    """`relayflow ARGS` as its own process; it must succeed and print JSON."""
    result = subprocess.run(
        [str(RELAYFLOW), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def create_account(db_url: str, workdir: Path) -> dict[str, str]:
    """The `acme` account, created by the CLI on `db_url` (its id, key and webhook token)."""
    completed = subprocess.run(
        [str(RELAYFLOW), "accounts", "create", "acme", "--db", db_url],
        capture_output=True,
        text=True,
        cwd=workdir,
        env=child_env(),
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    account: dict[str, str] = json.loads(completed.stdout)
    return account
