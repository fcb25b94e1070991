"""W3 timers: N instances sleeping in a Wait whose due times are spread over a window.

Definition (http_request): one Wait step, `duration = {{data.d}}`. The generator starts all N in
a burst (closed loop: an item is outstanding from its trigger POST until its Wait has started)
and gives each a duration that puts its due time at `window start + U(0, spread)`. The window
starts after the burst is expected to be over: the generator first starts a few parked
calibration instances (due in an hour, left out of the figures), times them, and places the
window at `margin_factor` x the time the remaining burst should take. Timers then fire while
the engine does nothing else, which is what the figure is about.

Lateness of a wake-up = `at_ms` of the Wait's `step_completed` event − `until` of its
`wait_started` event, both written by relayflow itself (table `instance_events`), so the
figure is relayflow's own account, to the millisecond. Timers whose wait began less than a
second before their due time are counted (`setLate`): if there are many, the burst overran
the margin and the window overlapped the starts.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bench.processes import Deployment
from bench.settings import W3Settings
from bench.stats import summary
from bench.workloads.common import (
    all_pids,
    launch_loadgen,
    measure_window,
    relayflow_memory,
    wait_until_settled,
)

PARK_S = 3600  # calibration instances sleep past the end of the run
PARKED_AFTER_S = 600


def steps() -> list[dict[str, Any]]:
    return [{"id": "sleep", "stepType": "Wait", "inputs": {"duration": "{{data.d}}"}}]


def lateness(deployment: Deployment, window_end: float) -> dict[str, Any]:
    """Per timer: due time, wait start, wake-up (step completion), from the audit log. The
    generator's parked calibration instances (due long after the window) are left out."""
    rows = deployment.database.query(
        "SELECT instance_id, type, at_ms, detail_json FROM instance_events"
        " WHERE step_id = 'sleep' AND type IN ('wait_started', 'step_completed')"
    )
    due: dict[str, tuple[int, int]] = {}
    woke: dict[str, int] = {}
    for instance_id, kind, at_ms, detail in rows:
        if kind == "wait_started":
            due[instance_id] = (int(json.loads(detail)["until"]), int(at_ms))
        else:
            woke[instance_id] = int(at_ms)
    parked_after = (window_end + PARKED_AFTER_S) * 1000
    timers = {i: times for i, times in due.items() if times[0] < parked_after}
    late = [woke[i] - until for i, (until, _) in timers.items() if i in woke]
    return {
        "lateMs": summary(late, missing=len(timers) - len(late)),
        "timersSet": len(timers),
        "fired": len(late),
        "setLate": sum(1 for until, started in timers.values() if until - started < 1000),
        "early": sum(1 for value in late if value < 0),
    }


def run(deployment: Deployment, settings: W3Settings) -> dict[str, Any]:
    deployment.define("http_request", steps(), "W3 timers")
    n = settings.timers
    calibrate = settings.burst_concurrency + max(100, min(500, n // 10))
    spec = {
        "target": "http",
        "url": deployment.trigger_url,
        "headers": {"Authorization": f"Bearer {deployment.api_key}"},
        "tag": "timer",
        "mode": "closed",
        "concurrency": settings.burst_concurrency,
        "count": calibrate + n,
        "http": {
            "body": {},
            "timer": {
                "spread_s": settings.spread_s,
                "seed": 3,
                "calibrate": calibrate,
                "park_s": PARK_S,
                "margin_factor": settings.margin_factor,
                "min_margin_s": settings.min_margin_s,
                "assumed_rate": 100,
            },
        },
        # An item is done when its Wait has started: the burst goes at the engine's pace.
        "completion": {
            "kind": "db",
            "url": deployment.database.url,
            "sql": "SELECT count(*) FROM instance_events WHERE type = 'wait_started'",
        },
    }
    loadgen = launch_loadgen(deployment.directory, "w3-burst", spec)
    first_send = loadgen.spec["start_at"]
    generated = loadgen.wait(n / 5 + 600)
    burst_end = time.time()
    window_start = float(generated["dueBase"])
    window_end = window_start + settings.spread_s
    opens = max(time.time() + 0.5, window_start)  # later if the burst overran the margin
    window = measure_window(opens, max(window_end, opens + 1), lambda: all_pids(deployment))
    settled = wait_until_settled(deployment, n, settings.grace_s, status="Complete")
    figures = lateness(deployment, window_end)
    relayflow = list(deployment.relayflow_pids)
    return {
        "timers": n,
        "spreadS": settings.spread_s,
        "calibrationInstances": calibrate,
        "marginS": window_start - first_send,
        "burst": {
            "seconds": burst_end - first_send,
            "startRate": (n + calibrate) / (burst_end - first_send),
            "endedBeforeWindow": burst_end < window_start,
            "loadgen": generated,
        },
        "settled": settled,
        **figures,
        "window": window.as_json(relayflow),
        "cpuMsPerTimer": 1000 * window.cpu_s(relayflow) / figures["fired"]
        if figures["fired"]
        else None,
        "memory": relayflow_memory(deployment),
    }
