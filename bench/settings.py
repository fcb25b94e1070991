"""Sizes, rates and durations of the quick and full modes, and the goals figures are held to.

Quick mode exists so that `make bench` proves the suite end to end in about ten minutes on the
2-core development machine, plus ~2.5 minutes per deployment for W5 (its 60 s outage is issue 9's
figure, kept in quick mode); its figures are indicative. Full mode uses the sizes issue 5 names
(100,000 waiting instances, 50,000 timers over 60 s, 500/s offered) and takes under an hour.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class W1Settings:
    concurrency: int  # instances outstanding in the closed loop (sent, reply not yet at the fake)
    warmup_s: float
    measure_s: float  # the steady window over which throughput and CPU are measured
    rates: tuple[float, ...]  # open-loop offered rates for the latency runs
    rate_s: float  # how long each offered rate runs
    drain_s: float  # how long to wait for the last replies after sending stops


@dataclass(frozen=True)
class W2Settings:
    waiting: int  # instances left waiting in WaitForReply
    setup_concurrency: int
    reply_fraction: float
    reply_rate: float
    drain_s: float


@dataclass(frozen=True)
class W3Settings:
    timers: int
    spread_s: float  # due times spread uniformly over this window
    margin_factor: float  # the window opens this many times the burst's expected length later
    min_margin_s: float
    burst_concurrency: int
    grace_s: float  # after the last due time, how long to wait for stragglers


@dataclass(frozen=True)
class W4Settings:
    concurrency: int
    warmup_s: float
    measure_s: float


@dataclass(frozen=True)
class W5Settings:
    flaky_messages: int  # W5a: inbound messages, offered at `flaky_rate` per second
    flaky_rate: float
    fail_rate: float  # the share of SMS requests the fake fails (seeded random)
    fail_modes: str  # comma-separated fault modes, drawn uniformly
    fail_seed: int
    outage_s: float  # W5b: the fake answers 503 to every SMS request this long
    outage_rate: float  # inbound messages per second during the outage
    settle_s: float  # how long to wait for the last instances after each phase's load


@dataclass(frozen=True)
class DbosSettings:
    concurrency: int
    warmup_s: float
    measure_s: float


@dataclass(frozen=True)
class BenchSettings:
    mode: str
    w1: W1Settings
    w2: W2Settings
    w3: W3Settings
    w4: W4Settings
    w5: W5Settings
    dbos: DbosSettings
    relayflow_env: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


QUICK = BenchSettings(
    mode="quick",
    w1=W1Settings(concurrency=64, warmup_s=3, measure_s=8, rates=(50, 200), rate_s=5, drain_s=8),
    w2=W2Settings(
        waiting=1_500, setup_concurrency=64, reply_fraction=0.10, reply_rate=50, drain_s=10
    ),
    w3=W3Settings(
        timers=1_500,
        spread_s=10,
        margin_factor=1.5,
        min_margin_s=5,
        burst_concurrency=64,
        grace_s=10,
    ),
    w4=W4Settings(concurrency=32, warmup_s=2, measure_s=6),
    w5=W5Settings(
        flaky_messages=1_000,
        flaky_rate=100,
        fail_rate=0.20,
        fail_modes="500,503,429,drop,lost",
        fail_seed=5,
        outage_s=60,
        outage_rate=20,
        settle_s=300,
    ),
    dbos=DbosSettings(concurrency=64, warmup_s=3, measure_s=8),
)

FULL = BenchSettings(
    mode="full",
    w1=W1Settings(
        concurrency=128, warmup_s=10, measure_s=60, rates=(100, 500), rate_s=30, drain_s=60
    ),
    w2=W2Settings(
        waiting=100_000, setup_concurrency=128, reply_fraction=0.10, reply_rate=100, drain_s=60
    ),
    w3=W3Settings(
        timers=50_000,
        spread_s=60,
        margin_factor=1.5,
        min_margin_s=15,
        burst_concurrency=128,
        grace_s=30,
    ),
    w4=W4Settings(concurrency=64, warmup_s=10, measure_s=60),
    w5=W5Settings(
        flaky_messages=10_000,
        flaky_rate=100,
        fail_rate=0.20,
        fail_modes="500,503,429,drop,lost",
        fail_seed=5,
        outage_s=60,
        outage_rate=20,
        settle_s=300,
    ),
    dbos=DbosSettings(concurrency=128, warmup_s=10, measure_s=60),
)


def override(settings: BenchSettings, assignments: list[str]) -> BenchSettings:
    """`["w2.waiting=20000", "w1.rates=100,300"]` applied to `settings` (for a machine that
    is slower or faster than the sizes were chosen for)."""
    for assignment in assignments:
        path, _, text = assignment.partition("=")
        group_name, _, field_name = path.strip().partition(".")
        group = getattr(settings, group_name, None)
        if group is None or not field_name or not hasattr(group, field_name):
            raise ValueError(f"unknown setting '{path}' (e.g. w2.waiting, w1.rates, w3.spread_s)")
        current = getattr(group, field_name)
        value: Any
        if isinstance(current, tuple):
            value = tuple(float(part) for part in text.split(",") if part.strip())
        else:
            value = type(current)(text)
        settings = replace(settings, **{group_name: replace(group, **{field_name: value})})
    return settings


@dataclass(frozen=True)
class Goal:
    """A target from issue 5: recorded next to the figure, never asserted."""

    key: str
    label: str
    target: float
    higher_is_better: bool
    unit: str

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return value >= self.target if self.higher_is_better else value < self.target

    @property
    def text(self) -> str:
        return f"{'≥' if self.higher_is_better else '<'} {self.target:g} {self.unit}".strip()


GOALS = {
    "w1_throughput": Goal("w1_throughput", "W1 throughput on SQLite", 1000, True, "inst/s"),
    "w1_p99_at_500": Goal("w1_p99_at_500", "W1 p99 latency at 500/s offered", 50, False, "ms"),
    "w1_vs_dbos": Goal("w1_vs_dbos", "W1 relayflow / DBOS throughput", 3, True, "×"),
    "w1_pg_vs_dbos": Goal(
        "w1_pg_vs_dbos", "W1 on PostgreSQL relayflow / DBOS on the same server", 3, True, "×"
    ),
    "w2_rss": Goal("w2_rss", "W2 peak RSS with all instances waiting", 300, False, "MB"),
    "w2_p99": Goal("w2_p99", "W2 reply → answer p99", 50, False, "ms"),
    "w3_p99": Goal("w3_p99", "W3 timer lateness p99", 200, False, "ms"),
    "w4_steps": Goal("w4_steps", "W4 step executions/s on SQLite", 5000, True, "steps/s"),
}
