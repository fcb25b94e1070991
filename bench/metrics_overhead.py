"""What the Prometheus metrics cost per auto-reply (issue: at most 5 % of W1's CPU per instance).

    .venv/bin/python -m bench.metrics_overhead [--instances 1000] [--rounds 5]

In one process, like `bench.cpu_probe`: inbound-SMS webhooks go through the ASGI app (no
sockets) into a SQLite file and the worker runs by hand with the sandbox provider (W1's
definition: one SMS reply). Process CPU ms per completed instance is measured in interleaved
rounds of three variants, so that the VM's drift and the growing database weigh on each alike:

- **on**: relayflow as shipped;
- **off**: prometheus-client's recording made no-ops in this process only (`Counter.inc`,
  `Gauge.set`, `Histogram.observe`, and `MetricWrapperBase.labels` returning the metric itself;
  children the engine bound at import are instances of the same classes, so they are covered).
  What *off* still pays: the `RequestMetrics` ASGI middleware's closure, its route-template
  lookup, `bounded()` and two `perf_counter()` calls per request, the engine's own
  `perf_counter()` around each step, and the tracing no-op checks;
- **bare**: as *off*, and `RequestMetrics` removed from the app's middleware stack (Starlette
  builds the stack at the first request, so filtering `app.user_middleware` before it works).

on − bare is the whole cost of the metrics; on − off the recording alone. Minima, medians and
the median of the per-round ratios are reported; the verdict against the 5 % budget takes the
per-round figure and an estimate that the VM's noise cannot move: the recording calls an
auto-reply makes (counted in an untimed round) times each call's `timeit` cost. `make bench`
runs this as the step "METRICS" (`--only METRICS`); bench/RESULTS.md has the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import shutil
import statistics
import tempfile
import time
import timeit
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client import metrics as prom

from bench.cpu_probe import BATCH, DEFINITION, _inbound
from relayflow.api.app import create_app
from relayflow.api.context import AppContext
from relayflow.api.metering import RequestMetrics
from relayflow.config import Settings
from relayflow.store.database import Database
from relayflow.telemetry import metrics

BUDGET_PERCENT = 5.0
SIZES = {"quick": (500, 4), "full": (1000, 6)}  # (auto-replies per round, rounds) per mode
COUNTED = 200  # auto-replies of the round that counts recording calls
VARIANTS = ("on", "off", "bare")
WHAT_OFF_KEEPS = (
    "off keeps the RequestMetrics middleware (closure, route-template lookup, bounded(), two "
    "perf_counter calls per request), the engine's perf_counter around each step and the "
    "tracing no-op checks; bare also drops the middleware"
)


def _noop(self: Any, *_args: Any, **_kwargs: Any) -> None:
    return None


def _self(self: Any, *_args: Any, **_kwargs: Any) -> Any:
    return self


PATCHES: tuple[tuple[type[Any], str, Callable[..., Any]], ...] = (
    (prom.Counter, "inc", _noop),
    (prom.Gauge, "set", _noop),
    (prom.Histogram, "observe", _noop),
    (prom.MetricWrapperBase, "labels", _self),
)


@contextlib.contextmanager
def recording_off() -> Iterator[None]:
    """prometheus-client's recording as no-ops until the block ends (this process only)."""
    saved = [(cls, name, cls.__dict__[name]) for cls, name, _ in PATCHES]
    for cls, name, replacement in PATCHES:
        setattr(cls, name, replacement)
    try:
        yield
    finally:
        for cls, name, original in saved:
            setattr(cls, name, original)


def _webhooks_counted() -> float:
    """relayflow_webhooks_received_total over all labels: proves the variants are what they say."""
    return sum(
        sample.value
        for family in REGISTRY.collect()
        if family.name == "relayflow_webhooks_received"
        for sample in family.samples
        if sample.name.endswith("_total")
    )


@contextlib.contextmanager
def counting(calls: dict[str, int]) -> Iterator[None]:
    """Count the recording calls (made as usual) until the block ends."""
    saved = [(cls, name, cls.__dict__[name]) for cls, name, _ in PATCHES]

    def wrap(key: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            calls[key] = calls.get(key, 0) + 1
            return original(self, *args, **kwargs)

        return counted

    for cls, name, original in saved:
        setattr(cls, name, wrap(f"{cls.__name__}.{name}", original))
    try:
        yield
    finally:
        for cls, name, original in saved:
            setattr(cls, name, original)


def unit_costs_us() -> dict[str, float]:
    """µs per recording call, best of 5 timeit runs, on metrics shaped like relayflow's (in a
    private registry): what each call costs without the VM's noise around a whole round."""
    registry = CollectorRegistry()
    counter = prom.Counter("probe_c", "c", ["a", "b"], registry=registry)
    gauge = prom.Gauge("probe_g", "g", ["a"], registry=registry)
    histogram = prom.Histogram(
        "probe_h", "h", ["a"], buckets=metrics.CALL_BUCKETS, registry=registry
    )
    child = counter.labels("x", "y")
    counter.labels("x", "z")
    histogram.labels("x")
    cases: dict[str, Callable[[], Any]] = {
        "Counter.inc": child.inc,
        "Gauge.set": lambda: gauge.labels("x").set(1),
        "Histogram.observe": lambda: histogram.labels("x").observe(0.003),
        "MetricWrapperBase.labels": lambda: counter.labels("x", "z"),
    }
    empty = min(timeit.repeat(lambda: None, number=20_000, repeat=5)) / 20_000
    costs = {}
    for name, call in cases.items():
        best = min(timeit.repeat(call, number=20_000, repeat=5)) / 20_000
        costs[name] = (best - empty) * 1e6
    # the lambdas above also pay a labels() call where they need one: take it back out
    for name in ("Gauge.set", "Histogram.observe"):
        costs[name] = max(costs[name] - costs["MetricWrapperBase.labels"], 0.0)
    return {name: round(value, 3) for name, value in costs.items()}


def _summary(values: list[float]) -> dict[str, Any]:
    return {
        "rounds": [round(v, 4) for v in values],
        "min": round(min(values), 4),
        "median": round(statistics.median(values), 4),
    }


def _percent(more: float, less: float) -> float:
    return round((more - less) / less * 100, 2)


async def measure(instances: int = 1000, rounds: int = 5) -> dict[str, Any]:
    """CPU ms per auto-reply for each variant, interleaved; overheads in % of the bare figure."""
    directory = Path(tempfile.mkdtemp(prefix="relayflow-metrics-overhead-"))
    url = f"sqlite:///{directory / 'probe.db'}"
    database = Database(url)
    await database.migrate()
    settings = Settings(database_url=url, start_rate_per_second=1e9, start_burst=1_000_000_000)
    context = AppContext(settings=settings, db=database)
    account = await context.accounts.create("probe")
    full_app = create_app(context)
    bare_app = create_app(context)
    before = len(bare_app.user_middleware)
    bare_app.user_middleware = [m for m in bare_app.user_middleware if m.cls is not RequestMetrics]  # type: ignore[comparison-overlap]
    if len(bare_app.user_middleware) != before - 1 or bare_app.middleware_stack is not None:
        raise RuntimeError("could not take RequestMetrics out of the middleware stack")
    hook = f"/webhooks/{account.account_id}/sms?token={account.webhook_token}"
    figures: dict[str, list[float]] = {v: [] for v in VARIANTS}
    calls: dict[str, int] = {}
    sent = 0
    try:
        full, bare = httpx.ASGITransport(app=full_app), httpx.ASGITransport(app=bare_app)
        async with (
            httpx.AsyncClient(transport=full, base_url="http://probe") as a,
            httpx.AsyncClient(transport=bare, base_url="http://probe") as b,
        ):
            created = await a.post(
                f"/api/v1/accounts/{account.account_id}/definitions",
                json=DEFINITION,
                headers={"Authorization": f"Bearer {account.api_key}"},
            )
            created.raise_for_status()

            async def round_of(client: httpx.AsyncClient, count: int) -> float:
                nonlocal sent

                async def send(number: int) -> None:
                    (await client.post(hook, json=_inbound(number))).raise_for_status()

                gc.collect()
                counted = _webhooks_counted()
                started = time.process_time()
                for first in range(0, count, BATCH):
                    size = min(BATCH, count - first)
                    await asyncio.gather(*(send(sent + first + k) for k in range(size)))
                    await context.worker.run_until_idle()
                cpu_ms = (time.process_time() - started) / count * 1000
                sent += count
                recorded = _webhooks_counted() - counted
                if recorded not in (0, count) or (recorded == 0) != (prom.Counter.inc is _noop):
                    raise RuntimeError(f"{recorded} webhooks counted in a round of {count}")
                return cpu_ms

            for client in (a, b):  # warm-up: imports, caches, both middleware stacks built
                await round_of(client, max(BATCH, instances // 4))
            with counting(calls):  # untimed: how many recording calls an auto-reply makes
                await round_of(a, COUNTED)
            for index in range(rounds):
                # rotate the order so no variant always follows the same one
                order = VARIANTS[index % 3 :] + VARIANTS[: index % 3]
                for variant in order:
                    if variant == "on":
                        figures["on"].append(await round_of(a, instances))
                    else:
                        with recording_off():
                            client = a if variant == "off" else b
                            figures[variant].append(await round_of(client, instances))
    finally:
        context.evaluator.close()
        await context.http.close()
        await database.dispose()
        shutil.rmtree(directory, ignore_errors=True)
    result: dict[str, Any] = {
        "instancesPerRound": instances,
        "rounds": rounds,
        "cpuMsPerInstance": {v: _summary(figures[v]) for v in VARIANTS},
        "offKeeps": WHAT_OFF_KEEPS,
        "budgetPercent": BUDGET_PERCENT,
    }
    s = result["cpuMsPerInstance"]
    result["recordingOverheadPercent"] = {
        k: _percent(s["on"][k], s["off"][k]) for k in ("min", "median")
    }
    result["totalOverheadPercent"] = {
        k: _percent(s["on"][k], s["bare"][k]) for k in ("min", "median")
    }
    # Each round of the three variants ran back to back: the ratio within a round is immune to
    # the drift between rounds (the VM, the growing database).
    result["pairedMedianPercent"] = {
        "recording": _paired(figures["on"], figures["off"]),
        "total": _paired(figures["on"], figures["bare"]),
    }
    costs = unit_costs_us()
    per_instance = {name: round(count / COUNTED, 2) for name, count in sorted(calls.items())}
    estimate_us = sum(per_instance[name] * costs[name] for name in per_instance)
    result["recordingEstimate"] = {
        "callsPerInstance": per_instance,
        "usPerCall": costs,
        "usPerInstance": round(estimate_us, 2),
        "percentOfOn": round(estimate_us / 1000 / s["on"]["median"] * 100, 2),
    }
    measured = result["pairedMedianPercent"]["total"]
    result["withinBudget"] = (
        measured <= BUDGET_PERCENT and result["recordingEstimate"]["percentOfOn"] <= BUDGET_PERCENT
    )
    return result


def _paired(more: list[float], less: list[float]) -> float:
    return round(statistics.median((m - n) / n * 100 for m, n in zip(more, less, strict=True)), 2)


def text(result: dict[str, Any]) -> str:
    s = result["cpuMsPerInstance"]
    lines = [
        f"CPU ms per auto-reply, {result['rounds']} interleaved rounds of "
        f"{result['instancesPerRound']} each (min / median):"
    ]
    for variant in VARIANTS:
        rounds = " ".join(f"{v:.3f}" for v in s[variant]["rounds"])
        lines.append(
            f"  {variant:<4} {s[variant]['min']:.3f} / {s[variant]['median']:.3f}   ({rounds})"
        )
    rec, tot = result["recordingOverheadPercent"], result["totalOverheadPercent"]
    paired, estimate = result["pairedMedianPercent"], result["recordingEstimate"]
    calls = ", ".join(f"{k} {v:g}" for k, v in estimate["callsPerInstance"].items())
    costs = ", ".join(f"{k} {v:.2f}" for k, v in estimate["usPerCall"].items())
    lines += [
        f"  recording (on vs off): {rec['min']:+.1f} % / {rec['median']:+.1f} %; "
        f"median of per-round ratios {paired['recording']:+.1f} %",
        f"  all of it (on vs bare): {tot['min']:+.1f} % / {tot['median']:+.1f} %; "
        f"median of per-round ratios {paired['total']:+.1f} %",
        f"  recording calls per auto-reply: {calls}",
        f"  µs per call (timeit): {costs}",
        f"  estimate: {estimate['usPerInstance']:.1f} µs of recording per auto-reply = "
        f"{estimate['percentOfOn']:.1f} % of the 'on' median",
        f"  verdict: {'within' if result['withinBudget'] else 'OVER'} the "
        f"{result['budgetPercent']:g} % budget",
        f"  ({result['offKeeps']})",
    ]
    return "\n".join(lines)


def headline(result: dict[str, Any]) -> str:
    s = result["cpuMsPerInstance"]
    mark = "✅" if result["withinBudget"] else "❌"
    return (
        f"{s['on']['median']:.3f} on / {s['off']['median']:.3f} off / "
        f"{s['bare']['median']:.3f} bare CPU ms per auto-reply; "
        f"{result['pairedMedianPercent']['total']:+.1f} % measured, "
        f"{result['recordingEstimate']['percentOfOn']:.1f} % estimated {mark}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_overhead", description=__doc__)
    parser.add_argument("--instances", type=int, default=1000, help="auto-replies per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each variant (>= 4)")
    args = parser.parse_args()
    print(text(asyncio.run(measure(args.instances, args.rounds))))


if __name__ == "__main__":
    main()
