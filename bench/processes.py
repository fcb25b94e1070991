"""Start and stop the processes a benchmark run needs, and read what the kernel says about them.

Why separate processes: the figures must describe relayflow as it is deployed (`relayflow serve`
on SQLite, `relayflow api` + N `relayflow worker` on PostgreSQL), and the load generator and the
fake 8x8 must not share relayflow's interpreter or event loop. Everything listens on 127.0.0.1.

CPU time comes from /proc/<pid>/stat (utime + stime, in clock ticks) and memory from
/proc/<pid>/status (VmRSS now, VmHWM = peak), because those are exact per process and cost
nothing to read, unlike sampling tools.
"""

from __future__ import annotations

import json
import os
import secrets
import selectors
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.autovacuum import Autovacuum
from bench.postgres import pg_fetch

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RELAYFLOW = str(BIN / "relayflow")
PG_ADMIN_DSN = os.environ.get("RELAYFLOW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
ACCOUNT = "acme"
EIGHT_BY_EIGHT_KEY = "bench-8x8-api-key-0001"
SUB_ACCOUNT = "bench-sub"
# The defaults would cap starts at 200/s per account; the benchmark measures the engine, so the
# guard rail is lifted (recorded in the settings of every result file).
RELAYFLOW_BENCH_ENV = {
    "RELAYFLOW_START_RATE_PER_SECOND": "10000000",
    "RELAYFLOW_START_BURST": "10000000",
    "RELAYFLOW_SECRET_KEY": "bench-secret-key-of-sufficient-length",
}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DB_KINDS = ("sqlite", "pg1", "pg2")
# DBOS's system database: SQLite as shipped, SQLite with relayflow's pragmas, local PostgreSQL.
DBOS_VARIANTS = ("default", "wal", "postgres")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(
    check: Callable[[], Any], what: str, timeout_s: float = 30.0, every_s: float = 0.05
) -> Any:
    """Poll `check` until it returns something truthy, or fail naming `what`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(every_s)


# ---------------------------------------------------------------------------------------------
# /proc


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name (which may contain spaces): index 0 = state,
    1 = ppid, 11/12 = utime/stime, 13/14 = cutime/cstime (children it has reaped)."""
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` (all its threads), in seconds."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu_seconds(root: int) -> float:
    """CPU of a server and all its children, the exited ones included: the root's utime +
    stime + cutime + cstime (the kernel adds a reaped child's CPU there) + the live children's
    utime + stime. Differences of this are exact even when children come and go, as
    PostgreSQL backends do when a connection pool churns."""
    fields = _stat_fields(root)
    total = sum(int(fields[i]) for i in (11, 12, 13, 14))
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            child = _stat_fields(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        if int(child[1]) == root:
            total += int(child[11]) + int(child[12])
    return total / CLOCK_TICKS


def parent_pid(pid: int) -> int:
    """The parent of a process (a PostgreSQL backend's parent is its server's root process)."""
    return int(_stat_fields(pid)[1])


def postmaster_pid() -> int | None:
    """The PostgreSQL server's root process on this machine (root-readable /proc)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/comm") as comm:
                if comm.read().strip() != "postgres":
                    continue
            parent = int(_stat_fields(int(entry.name))[1])
            with open(f"/proc/{parent}/comm") as comm:
                if comm.read().strip() != "postgres":
                    return int(entry.name)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return None


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of `pid`, in kB."""
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0])
    return found


@dataclass(frozen=True)
class ProcSample:
    """CPU seconds and memory of a set of named processes at one instant."""

    at: float
    cpu_s: dict[str, float]
    rss_kb: dict[str, int]
    hwm_kb: dict[str, int]

    @staticmethod
    def take(pids: dict[str, int]) -> ProcSample:
        """Names starting with `tree:` are measured as a process tree (`tree_cpu_seconds`)."""
        cpu, rss, hwm = {}, {}, {}
        for name, pid in pids.items():
            try:
                if name.startswith("tree:"):
                    cpu[name] = tree_cpu_seconds(pid)
                    continue
                cpu[name] = cpu_seconds(pid)
                memory = memory_kb(pid)
            except (FileNotFoundError, ProcessLookupError):
                continue
            rss[name], hwm[name] = memory.get("VmRSS", 0), memory.get("VmHWM", 0)
        return ProcSample(time.time(), cpu, rss, hwm)

    def cpu_since(self, earlier: ProcSample) -> dict[str, float]:
        return {name: self.cpu_s[name] - earlier.cpu_s.get(name, 0.0) for name in self.cpu_s}


def total_machine_cpu_s() -> float:
    """Busy CPU seconds of the whole machine (all cores) from /proc/stat: to tell whether the
    machine, not relayflow, was the limit (2 cores shared by everything)."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()[1:]
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / CLOCK_TICKS


# ---------------------------------------------------------------------------------------------
# Child processes


@dataclass
class Child:
    """A started child process with its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL: relayflow stops cleanly on SIGTERM."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def spawn(
    name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None, **kwargs: Any
) -> Child:
    log_path = log_dir / f"{name}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - the child owns it; closed when we exit
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and relayflow's script
        argv,
        cwd=ROOT,
        env=env or child_env(),
        stdin=subprocess.DEVNULL,
        stdout=kwargs.pop("stdout", log),
        stderr=log,
        **kwargs,
    )
    return Child(name, process, log_path)


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child: ours, the repository on PYTHONPATH (for `bench` and the fake
    in `fake8x8`), and `extra`."""
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), env.get("PYTHONPATH", "")] if p)
    return env


def read_announcement(process: subprocess.Popen[bytes], timeout_s: float = 20.0) -> dict[str, Any]:
    """The JSON line a child prints on stdout once it listens."""
    assert process.stdout is not None
    deadline, buffer = time.monotonic() + timeout_s, b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise RuntimeError("child did not announce itself in time")
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError("child exited while starting")
            buffer += chunk
    announced: dict[str, Any] = json.loads(buffer.split(b"\n", 1)[0])
    return announced


# ---------------------------------------------------------------------------------------------
# The fake 8x8


@dataclass
class FakeServer:
    """The fake 8x8 (bench/fake8x8_timed.py) as a child process."""

    child: Child
    urls: dict[str, str]
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=60))

    @property
    def pid(self) -> int:
        return self.child.pid

    def received(self, since: int = 0) -> tuple[int, list[list[Any]]]:
        """Timing-log entries from index `since`: `[t, role, status, text, destination]`."""
        answer = self.http.get(f"{self.urls['bench']}/bench/received", params={"since": since})
        answer.raise_for_status()
        body = answer.json()
        return int(body["next"]), body["items"]

    def counts(self) -> dict[str, Any]:
        answer = self.http.get(f"{self.urls['bench']}/bench/counts")
        answer.raise_for_status()
        counts: dict[str, Any] = answer.json()
        return counts

    def stop(self) -> None:
        self.http.close()
        self.child.stop(5)


class FakeLog:
    """An incremental reader of the fake's timing log (each call fetches only what is new)."""

    def __init__(self, fake: FakeServer) -> None:
        self._fake = fake
        self.next = 0
        self.items: list[list[Any]] = []

    def fetch(self) -> list[list[Any]]:
        self.next, new = self._fake.received(self.next)
        self.items.extend(new)
        return new

    def skip_existing(self) -> None:
        """Forget what arrived so far (e.g. the previous phase's messages)."""
        self.fetch()
        self.items = []


def start_fake(log_dir: Path) -> FakeServer:
    child = spawn(
        "fake8x8",
        [sys.executable, "-m", "bench.fake8x8_timed", f"--api-key={EIGHT_BY_EIGHT_KEY}"],
        log_dir,
        stdout=subprocess.PIPE,
        bufsize=0,
    )
    try:
        urls = read_announcement(child.process)
    except RuntimeError as error:
        child.stop(2)
        raise RuntimeError(f"fake 8x8 did not start: {error}\n{child.log_tail()}") from None
    urls.pop("pid", None)
    return FakeServer(child, urls)


# ---------------------------------------------------------------------------------------------
# Databases


def _pg_url(database: str) -> str:
    base, _, _ = PG_ADMIN_DSN.rpartition("/")
    return f"{base}/{database}"


def pg_version() -> str | None:
    try:
        return str(pg_fetch(PG_ADMIN_DSN, "SHOW server_version")[0][0])
    except Exception:  # no server: the report says so
        return None


@dataclass
class BenchDatabase:
    """A fresh database for one run: a SQLite file, or a PostgreSQL database dropped after."""

    kind: str  # sqlite | postgresql
    url: str
    path: Path | None = None  # SQLite file
    pg_name: str | None = None
    # Played by the bench when the server runs without autovacuum (bench/autovacuum.py).
    autovacuum: Autovacuum | None = None

    @staticmethod
    def create(kind: str, directory: Path, prefix: str = "relayflow_bench") -> BenchDatabase:
        if kind == "sqlite":
            path = directory / "relayflow.db"
            return BenchDatabase("sqlite", f"sqlite:///{path}", path=path)
        name = f"{prefix}_{secrets.token_hex(4)}"
        needed = Autovacuum.needed(PG_ADMIN_DSN)  # before the database exists to be left over
        pg_fetch(PG_ADMIN_DSN, f'CREATE DATABASE "{name}"')
        url = _pg_url(name)
        upkeep = Autovacuum(url).start() if needed else None
        return BenchDatabase("postgresql", url, pg_name=name, autovacuum=upkeep)

    def drop(self) -> None:
        if self.autovacuum is not None:
            self.autovacuum.stop()
        if self.pg_name is not None:
            pg_fetch(PG_ADMIN_DSN, f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Read-only query from the bench process (`?` placeholders, translated for asyncpg)."""
        if self.path is not None:
            connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
            try:
                return list(connection.execute(sql, args).fetchall())
            finally:
                connection.close()
        numbered, index = "", 0
        for char in sql:
            if char == "?":
                index += 1
                numbered += f"${index}"
            else:
                numbered += char
        return [tuple(row) for row in pg_fetch(self.url, numbered, *args)]

    def size_bytes(self) -> dict[str, int]:
        """SQLite: the file, its -wal, and the pages in use; PostgreSQL: pg_database_size."""
        if self.path is not None:
            main = self.path.stat().st_size if self.path.exists() else 0
            wal_path = self.path.with_name(self.path.name + "-wal")
            wal = wal_path.stat().st_size if wal_path.exists() else 0
            [(pages, free, page_size)] = self.query(
                "SELECT (SELECT page_count FROM pragma_page_count()),"
                " (SELECT freelist_count FROM pragma_freelist_count()),"
                " (SELECT page_size FROM pragma_page_size())"
            )
            return {
                "total": main + wal,
                "file": main,
                "wal": wal,
                "used": (pages - free) * page_size,
            }
        [(size,)] = self.query("SELECT pg_database_size(current_database())")
        return {"total": int(size)}


# ---------------------------------------------------------------------------------------------
# relayflow deployments


@dataclass
class Deployment:
    """relayflow (one `serve`, or one `api` + N `worker`) sending through the fake 8x8."""

    db_kind: str  # sqlite | pg1 | pg2
    database: BenchDatabase
    fake: FakeServer
    url: str
    api_key: str
    webhook_token: str
    children: list[Child]
    directory: Path
    http: httpx.Client

    @property
    def relayflow_pids(self) -> dict[str, int]:
        return {child.name: child.pid for child in self.children}

    @property
    def base(self) -> str:
        return f"{self.url}/api/v1/accounts/{ACCOUNT}"

    @property
    def sms_webhook(self) -> str:
        return f"{self.url}/webhooks/{ACCOUNT}/sms?token={self.webhook_token}"

    @property
    def trigger_url(self) -> str:
        return f"{self.base}/triggers/http_request"

    def define(self, trigger: str, steps: list[dict[str, Any]], name: str) -> str:
        body = {
            "trigger": trigger,
            "status": "enabled",
            "definition": {"name": name, "steps": steps},
        }
        answer = self.http.post(f"{self.base}/definitions", json=body)
        if answer.status_code != 201:
            raise RuntimeError(f"definition rejected: {answer.status_code} {answer.text}")
        definition_id: str = answer.json()["id"]
        return definition_id

    def check_alive(self) -> None:
        for child in self.children:
            if not child.alive():
                raise RuntimeError(f"{child.name} exited:\n{child.log_tail()}")


def _cli(env: dict[str, str], *args: str) -> Any:
    result = subprocess.run(  # noqa: S603 - relayflow's own script
        [RELAYFLOW, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"relayflow {' '.join(args[:2])} failed: {result.stderr.strip()}")
    return json.loads(result.stdout) if result.stdout.strip().startswith("{") else None


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def deployment(
    db_kind: str, log_root: Path, label: str, extra_env: dict[str, str] | None = None
) -> Iterator[Deployment]:
    """A fresh database, the fake 8x8 and relayflow for one workload run; all torn down after.

    sqlite: `relayflow serve`. pg1 / pg2: `relayflow api` + 1 or 2 `relayflow worker`, each
    a separate process, sharing a PostgreSQL database created for this run and dropped after.
    """
    directory = Path(tempfile.mkdtemp(prefix=f"{label}-{db_kind}-", dir=log_root))
    database = BenchDatabase.create("sqlite" if db_kind == "sqlite" else "postgresql", directory)
    fake: FakeServer | None = None
    children: list[Child] = []
    http: httpx.Client | None = None
    try:
        fake = start_fake(directory)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = child_env(
            {
                **RELAYFLOW_BENCH_ENV,
                "RELAYFLOW_DATABASE_URL": database.url,
                "RELAYFLOW_PUBLIC_URL": url,
                **(extra_env or {}),
            }
        )
        account = _cli(env, "accounts", "create", ACCOUNT)
        _cli(
            env,
            "accounts",
            "set-provider",
            ACCOUNT,
            "8x8",
            "--api-key",
            EIGHT_BY_EIGHT_KEY,
            "--sms-url",
            fake.urls["sms"],
            "--chatapps-url",
            fake.urls["chatapps"],
            "--voice-url",
            fake.urls["voice"],
        )
        if db_kind == "sqlite":
            children.append(
                spawn("serve", [RELAYFLOW, "serve", "--port", str(port)], directory, env)
            )
        else:
            children.append(spawn("api", [RELAYFLOW, "api", "--port", str(port)], directory, env))
            for number in range(1 if db_kind == "pg1" else 2):
                children.append(spawn(f"worker{number + 1}", [RELAYFLOW, "worker"], directory, env))
        try:
            wait_for(lambda: _healthy(url), "relayflow to answer /healthz", 60)
        except TimeoutError:
            logs = "\n".join(child.log_tail() for child in children)
            raise RuntimeError(f"relayflow did not start:\n{logs}") from None
        time.sleep(0.5)  # workers finish their start-up (lease recovery, LISTEN)
        http = httpx.Client(headers={"Authorization": f"Bearer {account['apiKey']}"}, timeout=60)
        yield Deployment(
            db_kind,
            database,
            fake,
            url,
            account["apiKey"],
            account["webhookToken"],
            children,
            directory,
            http,
        )
    finally:
        if http is not None:
            http.close()
        for child in children:
            code = child.stop()
            if code not in (0, -15, 143, None):
                print(f"  ! {child.name} exited with {code}; log {child.log_path}", file=sys.stderr)
        if fake is not None:
            fake.stop()
        try:
            database.drop()
        except Exception as error:  # never hide the run's own error behind the clean-up's
            print(f"  ! could not drop {database.pg_name}: {error}", file=sys.stderr)


def relayflow_version_info() -> dict[str, Any]:
    """The commit under test (and whether the tree had local changes)."""

    def git(*args: str) -> str:
        result = subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607 - git from PATH, as a developer runs it
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--", "src")),
    }


# ---------------------------------------------------------------------------------------------
# The DBOS baseline


@dataclass
class DbosDeployment:
    """bench/dbos_app.py (DBOS Transact) sending to the fake 8x8; its system database is a SQLite
    file or a PostgreSQL database of the server relayflow's pg1 / pg2 use."""

    variant: str  # one of DBOS_VARIANTS
    fake: FakeServer
    url: str
    child: Child
    directory: Path
    database: BenchDatabase

    @property
    def sms_webhook(self) -> str:
        return f"{self.url}/webhooks/sms"

    @property
    def relayflow_pids(self) -> dict[str, int]:
        """The system under test (named like relayflow's so the workloads can measure it)."""
        return {"dbos": self.child.pid}

    def database_bytes(self) -> int:
        """The SQLite file and its journal / -wal, or pg_database_size."""
        path = self.database.path
        if path is None:
            return self.database.size_bytes()["total"]
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def dbos_available() -> str | None:
    """DBOS's version, or None when it is not installed (`make bench` installs it)."""
    try:
        from importlib.metadata import version

        return version("dbos")
    except Exception:
        return None


@contextmanager
def dbos_deployment(log_root: Path, variant: str = "default") -> Iterator[DbosDeployment]:
    """The DBOS app on a fresh system database, torn down after. `variant`: default (SQLite as
    shipped), wal (SQLite with relayflow's pragmas) or postgres (a database created on the
    local server for this run and dropped after, as relayflow's pg1 / pg2 get)."""
    directory = Path(tempfile.mkdtemp(prefix=f"dbos-{variant}-", dir=log_root))
    if variant == "postgres":
        database = BenchDatabase.create("postgresql", directory, prefix="dbos_bench")
    else:
        path = directory / "dbos.sqlite"
        database = BenchDatabase("sqlite", f"sqlite:///{path}", path=path)
    fake: FakeServer | None = None
    child: Child | None = None
    try:
        fake = start_fake(directory)
        port = free_port()
        child = spawn(
            "dbos",
            [
                sys.executable,
                "-m",
                "bench.dbos_app",
                f"--db={database.url}",
                f"--sms-url={fake.urls['sms']}",
                f"--api-key={EIGHT_BY_EIGHT_KEY}",
                f"--port={port}",
                *([f"--sqlite={variant}"] if database.path is not None else []),
            ],
            directory,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: _healthy(url), "the DBOS app to answer /healthz", 60)
        except TimeoutError:
            raise RuntimeError(f"the DBOS app did not start:\n{child.log_tail()}") from None
        yield DbosDeployment(variant, fake, url, child, directory, database)
    finally:
        if child is not None:
            child.stop()
        if fake is not None:
            fake.stop()
        try:
            database.drop()
        except Exception as error:  # never hide the run's own error behind the clean-up's
            print(f"  ! could not drop {database.pg_name}: {error}", file=sys.stderr)
