"""Turn a run's results into the console table, the JSON file and RESULTS.md's generated section.

The table puts every figure next to its goal (issue 5) and says whether it was met; goals are
recorded, never asserted. RESULTS.md keeps whatever people wrote outside the markers.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sqlite3
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bench.processes import DB_KINDS, pg_version, relayflow_version_info
from bench.settings import GOALS, Goal

START, END = "<!-- results:start -->", "<!-- results:end -->"
LIBRARIES = (
    "relayflow",
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "sqlalchemy",
    "asyncpg",
    "quickjs-ng",
    "aiohttp",
    "orjson",
    "dbos",
    "psycopg",
)
DB_TITLES = {"sqlite": "SQLite (serve)", "pg1": "PG api+1 worker", "pg2": "PG api+2 workers"}


# ---------------------------------------------------------------------------------------------
# Facts about the machine


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM, OS, Python, SQLite, PostgreSQL, relayflow's commit, load."""
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_kb = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = f"{line.split('=', 1)[1].strip(chr(34))} (Linux {platform.release()})"
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "ramGb": round(memory_kb / 1024 / 1024, 1),
        "os": os_name,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_version(),
        "relayflow": relayflow_version_info(),
        "loadAverageAtStart": os.getloadavg(),
        "speedProbeMs": speed_probe_ms(),
    }


def speed_probe_ms() -> float:
    """Best of five timings of a fixed pure-Python loop: development VMs of the same kind
    differ in speed by up to ~1.5x from session to session, so runs are compared through it."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        total = 0
        for number in range(1_000_000):
            total += number
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def libraries() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


# ---------------------------------------------------------------------------------------------
# Picking figures out of the results


def dig(tree: Any, *path: str | int) -> Any:
    for key in path:
        if isinstance(tree, dict):
            tree = tree.get(key)
        elif isinstance(tree, list) and isinstance(key, int) and -len(tree) <= key < len(tree):
            tree = tree[key]
        else:
            return None
    return tree


def number(value: Any) -> float | None:
    if value == "inf":
        return math.inf
    return float(value) if isinstance(value, int | float) else None


def fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "—"
    if value == "inf" or (isinstance(value, float) and math.isinf(value)):
        return "never"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if digits == 0 and abs(value) >= 1:
            return f"{value:,.0f}"
        return f"{value:,.{max(digits, 1)}f}"
    return str(value)


def latency_at(w1: dict[str, Any] | None, index: int) -> Any:
    return dig(w1, "latency", index)


class Row:
    """One table row: a label, how to read the figure per DB, and its goal (if any)."""

    def __init__(
        self,
        label: str,
        pick: Any,
        digits: int = 0,
        goal: Goal | None = None,
        goal_dbs: tuple[str, ...] = DB_KINDS,
    ) -> None:
        self.label, self.pick, self.digits = label, pick, digits
        self.goal, self.goal_dbs = goal, goal_dbs


def rows(settings: dict[str, Any]) -> list[Row]:
    rates = settings["w1"]["rates"]
    top = len(rates) - 1
    p99_goal = GOALS["w1_p99_at_500"] if rates and rates[-1] >= 500 else None
    result = [
        Row(
            "W1 throughput, instances/s",
            lambda r: dig(r, "W1", "saturation", "throughput"),
            goal=GOALS["w1_throughput"],
            goal_dbs=("sqlite",),
        ),
        Row(
            "W1 CPU ms per instance (relayflow)",
            lambda r: dig(r, "W1", "saturation", "cpuMsPerInstance"),
            1,
        ),
        Row(
            "W1 relayflow CPU in window, % of a core",
            lambda r: dig(r, "W1", "saturation", "window", "relayflowCpuPercent"),
        ),
        Row(
            "W1 PostgreSQL server CPU in window, % of a core",
            lambda r: dig(r, "W1", "saturation", "window", "cpuPercent", "postgres"),
        ),
        Row(
            "W1 PostgreSQL server CPU ms per instance",
            lambda r: server_cpu_ms(dig(r, "W1", "saturation")),
            1,
        ),
        Row("other load on the machine in W1 / W2 / W3 / W4, % of a core", other_load),
    ]
    for index, rate in enumerate(rates):
        goal = p99_goal if index == top else None
        result += [
            Row(
                f"W1 latency p50 at {rate:g}/s offered, ms",
                lambda r, i=index: dig(latency_at(dig(r, "W1"), i), "latencyMs", "p50"),
                1,
            ),
            Row(
                f"W1 latency p99 at {rate:g}/s offered, ms",
                lambda r, i=index: dig(latency_at(dig(r, "W1"), i), "latencyMs", "p99"),
                1,
                goal=goal,
                goal_dbs=("sqlite",),
            ),
        ]
    result += [
        Row("W1 peak RSS, MB (largest process)", lambda r: dig(r, "W1", "memory", "peakRssMbMax")),
        Row(
            "W1 peak RSS, MB (all relayflow processes)",
            lambda r: dig(r, "W1", "memory", "peakRssMbTotal"),
        ),
        Row("W2 waiting instances", lambda r: dig(r, "W2", "subscribed")),
        Row("W2 set-up rate, instances/s", lambda r: dig(r, "W2", "setup", "startRate")),
        Row(
            "W2 RSS before → after set-up, MB",
            lambda r: _arrow(
                dig(r, "W2", "memory", "rssMbBefore"), dig(r, "W2", "memory", "rssMbAfter")
            ),
        ),
        Row(
            "W2 RSS growth per waiting instance, KB",
            lambda r: dig(r, "W2", "memory", "rssKbPerWaiting"),
            2,
        ),
        Row(
            "W2 peak RSS with all waiting, MB (largest process)",
            lambda r: _largest(dig(r, "W2", "memory", "perProcessAfter")),
            goal=GOALS["w2_rss"],
        ),
        Row(
            "W2 database bytes per waiting instance",
            lambda r: dig(r, "W2", "database", "bytesPerWaiting"),
        ),
        Row("W2 reply → answer p50, ms", lambda r: dig(r, "W2", "replies", "latencyMs", "p50"), 1),
        Row(
            "W2 reply → answer p99, ms",
            lambda r: dig(r, "W2", "replies", "latencyMs", "p99"),
            1,
            goal=GOALS["w2_p99"],
        ),
        Row(
            "W3 timers fired / set",
            lambda r: _ratio(dig(r, "W3", "fired"), dig(r, "W3", "timersSet")),
        ),
        Row("W3 timers set < 1 s before due (burst overran)", lambda r: dig(r, "W3", "setLate")),
        Row("W3 lateness p50, ms", lambda r: dig(r, "W3", "lateMs", "p50")),
        Row("W3 lateness p99, ms", lambda r: dig(r, "W3", "lateMs", "p99"), goal=GOALS["w3_p99"]),
        Row("W3 lateness max, ms", lambda r: dig(r, "W3", "lateMs", "max")),
        Row(
            "W3 start rate in the burst, instances/s", lambda r: dig(r, "W3", "burst", "startRate")
        ),
        Row(
            "W4 step executions/s",
            lambda r: dig(r, "W4", "stepExecutionsPerS"),
            goal=GOALS["w4_steps"],
            goal_dbs=("sqlite",),
        ),
        Row("W4 expression evaluations/s", lambda r: dig(r, "W4", "expressionEvaluationsPerS")),
        Row("W4 CPU ms per instance (20 steps)", lambda r: dig(r, "W4", "cpuMsPerInstance"), 1),
    ]
    for phase, title in (("flaky", "W5a flaky sends"), ("outage", "W5b 503 outage")):
        result += [
            Row(
                f"{title}: webhooks sent / instances started / delivered",
                lambda r, p=phase: _slash(dig(r, "W5", p, "offered"), w5_delivery(dig(r, "W5"), p)),
            ),
            Row(
                f"{title}: duplicated (after a lost answer / without one)",
                lambda r, p=phase: _w5_duplicates(dig(r, "W5", p)),
            ),
            Row(
                f"{title}: Terminated / still running at the end",
                lambda r, p=phase: _slash(
                    dig(r, "W5", p, "instances", "terminated"),
                    dig(r, "W5", p, "instances", "stillRunning"),
                ),
            ),
            Row(
                f"{title}: send attempts per message, mean / max",
                lambda r, p=phase: _slash(
                    dig(r, "W5", p, "attemptsPerMessage", "mean"),
                    dig(r, "W5", p, "attemptsPerMessage", "max"),
                    2,
                ),
            ),
            Row(
                f"{title}: sends deferred by the breaker (circuit open / draining)",
                lambda r, p=phase: (
                    _slash(
                        dig(r, "W5", p, "relayflow", "deferralsBy", "open") or 0,
                        dig(r, "W5", p, "relayflow", "deferralsBy", "draining") or 0,
                    )
                    if dig(r, "W5", p, "relayflow") is not None
                    else None
                ),
            ),
        ]
    result += [
        Row(
            "W5b SMS requests during the outage (per-instance backoff alone)",
            lambda r: _w5_herd(dig(r, "W5", "outage")),
        ),
        Row(
            "W5b outage end → first / last backlog message accepted, s",
            lambda r: _slash(
                dig(r, "W5", "outage", "firstAcceptedAfterEndS"),
                dig(r, "W5", "outage", "drainS"),
                1,
            ),
        ),
    ]
    result += [
        Row(
            "CPU ms per auto-reply in-process, metrics on / off / bare (bench.metrics_overhead)",
            lambda r: _metrics_cpu(dig(r, "METRICS", "cpuMsPerInstance")),
        ),
        Row(
            "metrics overhead, % of CPU per auto-reply (on vs bare, median of rounds)",
            lambda r: dig(r, "METRICS", "pairedMedianPercent", "total"),
            1,
            goal=METRICS_GOAL,
            goal_dbs=("sqlite",),
        ),
        Row(
            "metrics recording estimate, µs per auto-reply (calls × timeit cost)",
            lambda r: dig(r, "METRICS", "recordingEstimate", "usPerInstance"),
            1,
        ),
    ]
    return result


# Issue: "Metrics may cost at most 5 % of W1's CPU per instance" (in-process figure).
METRICS_GOAL = Goal("metrics_overhead", "metrics overhead", 5, False, "%")


def _metrics_cpu(cpu: Any) -> str | None:
    medians = [dig(cpu, variant, "median") for variant in ("on", "off", "bare")]
    if any(number(m) is None for m in medians):
        return None
    return " / ".join(f"{m:.3f}" for m in medians)


def w5_delivery(w5: Any, phase: str) -> str | None:
    started = dig(w5, phase, "instances", "started")
    delivered = dig(w5, phase, "delivered")
    return _slash(started, delivered)


def _w5_duplicates(phase: Any) -> str | None:
    duplicated = dig(phase, "duplicated")
    if duplicated is None:
        return None
    return (
        f"{duplicated:,} ({dig(phase, 'duplicatedAfterLostAnswer'):,} / "
        f"{dig(phase, 'duplicatedWithoutLostAnswer'):,})"
    )


def _w5_herd(phase: Any) -> str | None:
    requests = dig(phase, "duringOutage", "requests")
    if requests is None:
        return None
    return f"{requests:,} ({fmt(dig(phase, 'backoffAlone', 'requestsDuringOutage'))})"


def _slash(first: Any, second: Any, digits: int = 0) -> str | None:
    if first is None and second is None:
        return None
    return f"{fmt(first, digits)} / {fmt(second, digits)}"


def other_load(results: dict[str, Any]) -> str | None:
    """CPU the run's own processes did not use, per workload window: noise, if well above 0."""
    windows = [
        dig(results, "W1", "saturation", "window", "otherCpuPercent"),
        dig(results, "W2", "replies", "window", "otherCpuPercent"),
        dig(results, "W3", "window", "otherCpuPercent"),
        dig(results, "W4", "window", "otherCpuPercent"),
    ]
    if all(value is None for value in windows):
        return None
    return " / ".join("—" if value is None else f"{value:.0f}" for value in windows)


def _arrow(before: Any, after: Any) -> str | None:
    if before is None or after is None:
        return None
    return f"{before:,.0f} → {after:,.0f}"


def _ratio(done: Any, of: Any) -> str | None:
    return None if done is None or of is None else f"{done:,} / {of:,}"


def _largest(per_process: Any) -> float | None:
    if not isinstance(per_process, dict) or not per_process:
        return None
    return max(float(p["peakRssMb"]) for p in per_process.values())


def by_db(results: dict[str, Any], db: str) -> dict[str, Any]:
    """{workload: result} for one database kind."""
    return {name: runs.get(db) for name, runs in results.items() if isinstance(runs, dict)}


def verdict(goal: Goal, value: Any) -> str:
    met = goal.met(number(value))
    return "" if met is None else (" ✅" if met else " ❌")


def main_table(report: dict[str, Any]) -> str:
    results = report["results"]
    dbs = [db for db in DB_KINDS if any(db in (runs or {}) for runs in results.values())]
    lines = [
        "| figure | " + " | ".join(DB_TITLES[db] for db in dbs) + " | goal |",
        "|---|" + "---:|" * len(dbs) + "---|",
    ]
    for row in rows(report["settings"]):
        cells = []
        for db in dbs:
            value = row.pick(by_db(results, db))
            mark = verdict(row.goal, value) if row.goal and db in row.goal_dbs else ""
            cells.append(fmt(value, row.digits) + mark)
        if all(cell == "—" for cell in cells):
            continue
        goal = ""
        if row.goal:
            scope = " (SQLite)" if row.goal_dbs == ("sqlite",) else ""
            goal = row.goal.text + scope
        lines.append(f"| {row.label} | " + " | ".join(cells) + f" | {goal} |")
    return "\n".join(lines)


def server_cpu_ms(saturation: Any) -> float | None:
    """PostgreSQL server CPU ms per instance of a saturation window: its share of a core / the
    instances per second (both over the same window), so relayflow's and DBOS's compare."""
    percent = number(dig(saturation, "window", "cpuPercent", "postgres"))
    rate = number(dig(saturation, "throughput"))
    return 10 * percent / rate if percent is not None and rate else None


def server_cpu_text(saturation: Any) -> str:
    """`, N PG server CPU ms/inst` for a run's headline, or nothing off PostgreSQL."""
    value = server_cpu_ms(saturation)
    return "" if value is None else f", {fmt(value, 1)} PG server CPU ms/inst"


def baseline_table(report: dict[str, Any]) -> str:
    """The SQLite comparison (relayflow `serve` ÷ DBOS on SQLite), then the PostgreSQL one."""
    dbos = report["results"].get("DBOS") or {}
    if not dbos:
        return "_DBOS baseline not run: " + str(report.get("dbosNote") or "not selected") + "_"
    tables = []
    if "default" in dbos or "wal" in dbos:
        tables.append(_sqlite_baseline(report, dbos))
    if "postgres" in dbos:
        tables.append(_postgres_baseline(report, dbos["postgres"]))
    return "\n\n".join(tables)


def _sqlite_baseline(report: dict[str, Any], dbos: dict[str, Any]) -> str:
    relayflow = dig(report["results"], "W1", "sqlite", "saturation")
    lines = [
        "| system (W1 saturation, same generator) | instances/s | CPU ms/instance "
        "| peak RSS MB | relayflow ÷ this | goal |",
        "|---|---:|---:|---:|---:|---|",
    ]
    if relayflow:
        lines.append(
            f"| relayflow, SQLite (`serve`) | {fmt(relayflow.get('throughput'))} | "
            f"{fmt(relayflow.get('cpuMsPerInstance'), 1)} | "
            f"{fmt(dig(report['results'], 'W1', 'sqlite', 'memory', 'peakRssMbMax'))} | 1.0 | |"
        )
    for variant, title in (
        ("default", "DBOS 3.x, SQLite as shipped"),
        ("wal", "DBOS 3.x, SQLite WAL + synchronous=NORMAL"),
    ):
        run = dbos.get(variant)
        if not isinstance(run, dict) or "saturation" not in run:
            continue
        throughput = dig(run, "saturation", "throughput")
        ratio = _relayflow_ratio(relayflow, throughput)
        goal = GOALS["w1_vs_dbos"]
        lines.append(
            f"| {title} | {fmt(throughput)} | {fmt(dig(run, 'saturation', 'cpuMsPerInstance'), 1)}"
            f" | {fmt(dig(run, 'memory', 'peakRssMbMax'))} | {fmt(ratio, 2)}"
            f"{verdict(goal, ratio)} | {goal.text} |"
        )
    return "\n".join(lines)


def _postgres_baseline(report: dict[str, Any], dbos: Any) -> str:
    """relayflow's pg1 / pg2 ÷ DBOS with its system database on the same PostgreSQL server; CPU
    split into the application's processes and the server's (both measured the same way)."""
    goal = GOALS["w1_pg_vs_dbos"]
    theirs = dig(dbos, "saturation", "throughput")
    lines = [
        "On PostgreSQL (DBOS's system database on the server relayflow's pg1 / pg2 use):",
        "",
        "| system (W1 saturation, same generator) | instances/s | app CPU ms/instance "
        "| PostgreSQL server CPU ms/instance | peak RSS MB | relayflow ÷ DBOS | goal |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for db in ("pg1", "pg2"):
        w1 = dig(report["results"], "W1", db)
        if not isinstance(w1, dict) or "saturation" not in w1:
            continue
        ratio = _relayflow_ratio(w1["saturation"], theirs)
        lines.append(_postgres_row(f"relayflow, {DB_TITLES[db]}", w1, ratio, goal))
    if isinstance(dbos, dict) and "saturation" in dbos:
        lines.append(_postgres_row("DBOS 3.x, PostgreSQL system database", dbos, None, None))
    return "\n".join(lines)


def _postgres_row(title: str, run: dict[str, Any], ratio: float | None, goal: Goal | None) -> str:
    saturation = run["saturation"]
    return (
        f"| {title} | {fmt(dig(saturation, 'throughput'))} | "
        f"{fmt(dig(saturation, 'cpuMsPerInstance'), 1)} | {fmt(server_cpu_ms(saturation), 1)} | "
        f"{fmt(dig(run, 'memory', 'peakRssMbMax'))} | "
        + (f"{fmt(ratio, 2)}{verdict(goal, ratio)} | {goal.text} |" if goal else " | |")
    )


def _relayflow_ratio(relayflow: dict[str, Any] | None, throughput: Any) -> float | None:
    ours = number(dig(relayflow, "throughput"))
    theirs = number(throughput)
    if ours is None or not theirs:
        return None
    return ours / theirs


def goals_summary(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal with the figure it is judged on (for the JSON file)."""
    results = report["results"]
    rates = report["settings"]["w1"]["rates"]
    figures: dict[str, Any] = {
        "w1_throughput": dig(results, "W1", "sqlite", "saturation", "throughput"),
        "w1_p99_at_500": dig(results, "W1", "sqlite", "latency", -1, "latencyMs", "p99")
        if rates and rates[-1] >= 500
        else None,
        "w1_vs_dbos": _relayflow_ratio(
            dig(results, "W1", "sqlite", "saturation"),
            dig(results, "DBOS", "wal", "saturation", "throughput"),
        ),
        "w2_rss": _largest(dig(results, "W2", "sqlite", "memory", "perProcessAfter")),
        "w2_p99": dig(results, "W2", "sqlite", "replies", "latencyMs", "p99"),
        "w3_p99": dig(results, "W3", "sqlite", "lateMs", "p99"),
        "w4_steps": dig(results, "W4", "sqlite", "stepExecutionsPerS"),
    }
    # relayflow on PostgreSQL vs DBOS on PostgreSQL: judged on pg1 (api + 1 worker), else pg2.
    pg = next((db for db in ("pg1", "pg2") if dig(results, "W1", db, "saturation")), "pg1")
    figures["w1_pg_vs_dbos"] = _relayflow_ratio(
        dig(results, "W1", pg, "saturation"),
        dig(results, "DBOS", "postgres", "saturation", "throughput"),
    )
    judged_on = {"w1_pg_vs_dbos": f"PostgreSQL ({pg})"}
    return [
        {
            "goal": goal.label,
            "target": goal.text,
            "value": figures[key],
            "met": goal.met(number(figures[key])),
            "judgedOn": judged_on.get(key, "SQLite"),
        }
        for key, goal in GOALS.items()
    ]


def settings_text(settings: dict[str, Any]) -> str:
    w1, w2, w3, w4 = settings["w1"], settings["w2"], settings["w3"], settings["w4"]
    w5, dbos = settings.get("w5"), settings["dbos"]
    rates = ", ".join(f"{r:g}/s" for r in w1["rates"])
    return "\n".join(
        [
            f"- mode **{settings['mode']}**; relayflow environment: "
            + ", ".join(f"`{k}={v}`" for k, v in settings["relayflow_env"].items()),
            f"- W1: closed loop, {w1['concurrency']} instances outstanding, warm-up "
            f"{w1['warmup_s']:g} s, window {w1['measure_s']:g} s; open loop at {rates}, "
            f"{w1['rate_s']:g} s each",
            f"- W2: {w2['waiting']:,} waiting instances (set up {w2['setup_concurrency']} at a "
            f"time), replies from {w2['reply_fraction']:.0%} at {w2['reply_rate']:g}/s",
            f"- W3: {w3['timers']:,} timers due over {w3['spread_s']:g} s, started in a burst "
            f"({w3['burst_concurrency']} concurrent POSTs)",
            f"- W4: closed loop, {w4['concurrency']} instances outstanding, warm-up "
            f"{w4['warmup_s']:g} s, window {w4['measure_s']:g} s",
            *(
                [
                    f"- W5: {w5['flaky_messages']:,} auto-replies at {w5['flaky_rate']:g}/s with "
                    f"{w5['fail_rate']:.0%} of SMS sends failing ({w5['fail_modes']}, seed "
                    f"{w5['fail_seed']}); then a {w5['outage_s']:g} s 503 outage with "
                    f"{w5['outage_rate']:g} auto-replies/s arriving during it"
                ]
                if w5
                else []
            ),
            f"- DBOS: closed loop, {dbos['concurrency']} outstanding, warm-up "
            f"{dbos['warmup_s']:g} s, window {dbos['measure_s']:g} s",
        ]
    )


def _commit_text(version: dict[str, Any]) -> str:
    return f"`{version['commit'][:12]}`" + (" + local changes in src/" if version["dirty"] else "")


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    commit = _commit_text(m["relayflow"])
    at_end = m.get("relayflowAtEnd")
    if at_end and at_end != m["relayflow"]:
        commit += f" at the start, {_commit_text(at_end)} at the end (the tree changed mid-run)"
    libs = ", ".join(f"{name} {v}" for name, v in report["libraries"].items() if v)
    errors = report.get("errors") or {}
    load = ", ".join(f"{x:.2f}" for x in m["loadAverageAtStart"])
    parts = [
        START,
        "<!-- generated by `make bench`; edits between these markers are overwritten -->",
        f"### Run of {report['startedAt']} ({report['settings']['mode']} mode, "
        f"{report['durationS'] / 60:.1f} min)",
        "",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['ramGb']} GB RAM; {m['os']}",
        f"- Python {m['python']}, SQLite {m['sqlite']}, "
        f"PostgreSQL {m['postgresql'] or 'not available'}; load average at start {load}",
        f"- speed probe (1M-iteration Python loop, best of 5): "
        f"{m.get('speedProbeMs', 'not measured')} ms — compare runs on different VMs by it",
        f"- relayflow commit {commit}",
        f"- libraries: {libs}",
        settings_text(report["settings"]),
        f"- raw results: `{report['jsonPath']}` (gitignored)",
        "",
        main_table(report),
        "",
        "Peer baseline (W1 on DBOS Transact; SQLite system database, then PostgreSQL):",
        "",
        baseline_table(report),
    ]
    if errors:
        parts += ["", "Runs that failed:", ""]
        parts += [
            f"- {name}: {text.splitlines()[-1] if text else ''}" for name, text in errors.items()
        ]
    parts.append(END)
    return "\n".join(parts)


def update_results_md(path: Path, generated: str, template: str) -> None:
    """Replace the generated section, keeping everything people wrote around it."""
    text = path.read_text() if path.exists() else template
    if START in text and END in text:
        before = text[: text.index(START)]
        after = text[text.index(END) + len(END) :]
        text = before + generated + after
    else:
        text = text.rstrip() + "\n\n" + generated + "\n"
    path.write_text(text)


def write_json(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, default=str))
