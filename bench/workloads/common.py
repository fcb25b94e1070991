"""What the workloads share: launching the load generator, measurement windows, and reading
latencies out of the fake 8x8's timing log."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bench.loadgen import TAGGED
from bench.processes import (
    SUB_ACCOUNT,
    BenchDatabase,
    Child,
    Deployment,
    FakeLog,
    FakeServer,
    ProcSample,
    postmaster_pid,
    spawn,
    total_machine_cpu_s,
    wait_for,
)
from bench.stats import summary

START_DELAY_S = 1.5  # the generator's interpreter starts before its first send
CUSTOMER_BASE = 6590000000  # + seq: a distinct Singapore mobile number per item
SHORT_CODE = "+6580000000"


class SmsTarget(Protocol):
    """What a W1-style run needs of the system under test: relayflow or the DBOS baseline."""

    fake: FakeServer
    directory: Path
    database: BenchDatabase

    @property
    def sms_webhook(self) -> str: ...

    @property
    def relayflow_pids(self) -> dict[str, int]: ...


@dataclass
class LoadgenRun:
    """A running load generator process and where it will write its result."""

    child: Child
    out: Path
    spec: dict[str, Any]

    def wait(self, timeout_s: float) -> dict[str, Any]:
        try:
            self.child.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.child.stop(5)
            raise RuntimeError(f"load generator overran {timeout_s:g} s") from None
        if self.child.process.returncode != 0:
            raise RuntimeError(f"load generator failed:\n{self.child.log_tail()}")
        result: dict[str, Any] = json.loads(self.out.read_text())
        return result


def launch_loadgen(directory: Path, name: str, spec: dict[str, Any]) -> LoadgenRun:
    spec = {"start_at": time.time() + START_DELAY_S, **spec, "out": str(directory / f"{name}.json")}
    spec_path = directory / f"{name}.spec.json"
    spec_path.write_text(json.dumps(spec))
    child = spawn(
        f"loadgen-{name}", [sys.executable, "-m", "bench.loadgen", str(spec_path)], directory
    )
    return LoadgenRun(child, Path(spec["out"]), spec)


def sms_spec(
    deployment: SmsTarget, tag: str, *, numbers: list[str] | None = None, **options: Any
) -> dict[str, Any]:
    """A spec posting 8x8 inbound-SMS webhooks to relayflow, from distinct numbers."""
    sms: dict[str, Any] = {"sub_account": SUB_ACCOUNT, "to": SHORT_CODE}
    if numbers is not None:
        sms["numbers"] = numbers
    else:
        sms["number_base"] = CUSTOMER_BASE
    return {"target": "sms", "url": deployment.sms_webhook, "tag": tag, "sms": sms, **options}


def fake_completion(deployment: SmsTarget, since: int = 0) -> dict[str, Any]:
    return {"kind": "fake", "url": deployment.fake.urls["bench"], "since": since}


def sms_reply_step(step_id: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "stepType": "SMS",
        "inputs": {
            "subAccountId": SUB_ACCOUNT,
            "destination": "{{data.payload.source}}",
            "text": text,
        },
        **extra,
    }


@dataclass
class Window:
    """Process and machine CPU at the two ends of a measurement window."""

    start: ProcSample
    end: ProcSample
    machine_cpu_s: float

    @property
    def seconds(self) -> float:
        return self.end.at - self.start.at

    def cpu_s(self, names: list[str] | None = None) -> float:
        spent = self.end.cpu_since(self.start)
        return sum(value for name, value in spent.items() if names is None or name in names)

    def as_json(self, relayflow: list[str]) -> dict[str, Any]:
        """CPU shares (100 = one core) of each sampled process; `postgres` sums the backends
        serving the run's database; `other` is the rest of the machine (other users' load)."""
        spent = self.end.cpu_since(self.start)
        named_pct = {
            name.removeprefix("tree:"): 100 * value / self.seconds for name, value in spent.items()
        }
        machine = 100 * self.machine_cpu_s / self.seconds
        return {
            "seconds": self.seconds,
            "cpuPercent": named_pct,
            "relayflowCpuPercent": 100 * self.cpu_s(relayflow) / self.seconds,
            "machineCpuPercent": machine,
            "otherCpuPercent": max(0.0, machine - 100 * sum(spent.values()) / self.seconds),
        }


def sample_until(moment: float, pids: dict[str, int]) -> tuple[ProcSample, float]:
    time.sleep(max(0.0, moment - time.time()))
    return ProcSample.take(pids), total_machine_cpu_s()


def measure_window(start_at: float, end_at: float, pids: Callable[[], dict[str, int]]) -> Window:
    """Sleep to `start_at`, sample, sleep to `end_at`, sample the same processes. `pids` is
    called just before the window: database backends connect as the load ramps up."""
    time.sleep(max(0.0, start_at - 0.3 - time.time()))
    chosen = pids()
    start, machine_start = sample_until(start_at, chosen)
    end, machine_end = sample_until(end_at, chosen)
    return Window(start, end, machine_end - machine_start)


def all_pids(deployment: SmsTarget, loadgen: LoadgenRun | None = None) -> dict[str, int]:
    """Every process of the run: relayflow's, the fake's, the generator's and, on PostgreSQL,
    the whole server as a process tree (`tree:postgres`: backends that a churning connection
    pool starts and ends within the window are counted too; so is anything else the server
    did meanwhile, e.g. for other databases)."""
    pids = {**deployment.relayflow_pids, "fake8x8": deployment.fake.pid}
    if loadgen is not None:
        pids["loadgen"] = loadgen.child.pid
    if deployment.database.pg_name:
        server = postmaster_pid()
        if server is not None:
            pids["tree:postgres"] = server
    return pids


def tagged(items: list[list[Any]], tag: str) -> dict[int, tuple[float, float]]:
    """seq → (send time carried in the text, arrival at the fake) of accepted messages."""
    found: dict[int, tuple[float, float]] = {}
    for arrived, _, status, text, _ in items:
        if status != 200 or not text:
            continue
        match = TAGGED.search(text)
        if match and match.group(1) == tag:
            found.setdefault(int(match.group(2)), (float(match.group(3)), float(arrived)))
    return found


def rejected(items: list[list[Any]]) -> int:
    return sum(1 for item in items if item[2] != 200)


def wait_for_tagged(
    log: FakeLog, tag: str, count: int, timeout_s: float
) -> dict[int, tuple[float, float]]:
    """Fetch the fake's log until `count` messages with `tag` arrived, or `timeout_s` passed."""
    deadline = time.time() + timeout_s
    while True:
        log.fetch()
        found = tagged(log.items, tag)
        if len(found) >= count or time.time() > deadline:
            return found
        time.sleep(0.2)


def latency_summary(found: dict[int, tuple[float, float]], expected: int) -> dict[str, Any]:
    """Latency (ms) from send to arrival; items never seen count as infinitely late."""
    return summary(
        [(arrived - sent) * 1000 for sent, arrived in found.values()],
        missing=max(0, expected - len(found)),
    )


def relayflow_memory(deployment: SmsTarget) -> dict[str, Any]:
    sample = ProcSample.take(deployment.relayflow_pids)
    return {
        "rssMb": {name: kb / 1024 for name, kb in sample.rss_kb.items()},
        "peakRssMb": {name: kb / 1024 for name, kb in sample.hwm_kb.items()},
        "rssMbTotal": sum(sample.rss_kb.values()) / 1024,
        "peakRssMbTotal": sum(sample.hwm_kb.values()) / 1024,
        "peakRssMbMax": max(sample.hwm_kb.values()) / 1024 if sample.hwm_kb else None,
    }


def count_instances(deployment: Deployment, status: str | None = None) -> int:
    if status is None:
        [(count,)] = deployment.database.query("SELECT count(*) FROM instances")
    else:
        [(count,)] = deployment.database.query(
            "SELECT count(*) FROM instances WHERE status = ?", status
        )
    return int(count)


def wait_until_settled(
    deployment: Deployment, expected: int, timeout_s: float, status: str | None = None
) -> int:
    """Wait until `expected` instances are no longer Runnable (or have `status`); how many
    are."""

    def done() -> int:
        if status is not None:
            return count_instances(deployment, status)
        return count_instances(deployment) - count_instances(deployment, "Runnable")

    def settled() -> bool:
        deployment.check_alive()
        return done() >= expected

    with contextlib.suppress(TimeoutError):  # the caller reports how many settled
        wait_for(settled, f"{expected} settled instances", timeout_s, every_s=0.5)
    return done()
