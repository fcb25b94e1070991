"""W4 engine core: 20 chained Branch / If steps with expressions and no I/O.

Definition (http_request): b1 → i2 → b3 → … → i20. Each Branch writes two outputs and picks its
successor with one condition (a `null` default is also listed but, never needed, never
evaluated); each If tests one condition that is false, so its `do` branch (a Wait) never runs
and the path continues with `nextStepId`. All 20 steps execute in one sprint with no
checkpoint (no side effect), so this measures the runner, the expression sandbox and one save.

A closed loop keeps `concurrency` instances outstanding (completion counted by the database);
throughput = instances whose `completed_at_ms` falls in the steady window / window. Step
executions/s = that × 20; expression evaluations/s = that × the expressions counted on the
executed path of the definition (`expressions_per_instance`).
"""

from __future__ import annotations

import re
from typing import Any

from bench.processes import Deployment
from bench.settings import W4Settings
from bench.workloads.common import (
    all_pids,
    launch_loadgen,
    measure_window,
    relayflow_memory,
    wait_until_settled,
)

CHAIN = 20
EXPRESSION = re.compile(r"\{\{.*?\}\}")


def steps() -> list[dict[str, Any]]:
    chain: list[dict[str, Any]] = []
    for number in range(1, CHAIN + 1):
        step_id = f"{'b' if number % 2 else 'i'}{number}"
        following = f"{'b' if (number + 1) % 2 else 'i'}{number + 1}" if number < CHAIN else None
        if number % 2:
            chain.append(
                {
                    "id": step_id,
                    "stepType": "Branch",
                    "outputs": {
                        "v": "{{data.v + 1}}",
                        "label": "{{'step ' + data.v + ' of ' + data.name}}",
                    },
                    "selectNextStep": {
                        following: "{{data.v % 2 == 1 || data.label.length > 3}}",
                        f"x{number}": None,
                    },
                }
            )
            chain.append({"id": f"x{number}", "stepType": "Wait", "inputs": {"duration": "0"}})
        else:
            step: dict[str, Any] = {
                "id": step_id,
                "stepType": "If",
                "inputs": {"condition": "{{data.v < 0 && data.name.indexOf('never') >= 0}}"},
                "do": [[{"id": f"never{number}", "stepType": "Wait", "inputs": {"duration": "0"}}]],
            }
            if following:
                step["nextStepId"] = following
            chain.append(step)
    return chain


def expressions_per_instance(definition: list[dict[str, Any]]) -> int:
    """`{{ }}` expressions the executed path evaluates: inputs, outputs and non-null conditions
    of the chain's steps (not the never-taken `x*` / `never*` steps)."""
    count = 0
    for step in definition:
        if not re.fullmatch(r"[bi]\d+", step["id"]):
            continue
        for group in ("inputs", "outputs"):
            count += sum(len(EXPRESSION.findall(str(v))) for v in (step.get(group) or {}).values())
        count += sum(
            len(EXPRESSION.findall(str(v)))
            for v in (step.get("selectNextStep") or {}).values()
            if v is not None
        )
    return count


def run(deployment: Deployment, settings: W4Settings) -> dict[str, Any]:
    definition = steps()
    definition_id = deployment.define("http_request", definition, "W4 engine core")
    per_instance = expressions_per_instance(definition)
    spec = {
        "target": "http",
        "url": deployment.trigger_url,
        "headers": {"Authorization": f"Bearer {deployment.api_key}"},
        "tag": "core",
        "mode": "closed",
        "concurrency": settings.concurrency,
        "duration_s": settings.warmup_s + settings.measure_s,
        "http": {"body": {"v": 0, "name": "bench"}},
        "completion": {
            "kind": "db",
            "url": deployment.database.url,
            "sql": "SELECT count(*) FROM instances WHERE status = 'Complete'",
        },
    }
    loadgen = launch_loadgen(deployment.directory, "w4", spec)
    begin = loadgen.spec["start_at"] + settings.warmup_s
    window = measure_window(
        begin, begin + settings.measure_s, lambda: all_pids(deployment, loadgen)
    )
    generated = loadgen.wait(settings.measure_s + 300)
    wait_until_settled(deployment, generated["statuses"].get("200", 0), 60)
    [(completed,)] = deployment.database.query(
        "SELECT count(*) FROM instances WHERE status = 'Complete'"
        " AND completed_at_ms >= ? AND completed_at_ms < ?",
        int(window.start.at * 1000),
        int(window.end.at * 1000),
    )
    [(steps_done,)] = deployment.database.query(
        "SELECT count(*) FROM instance_events e JOIN instances i ON i.id = e.instance_id"
        " WHERE e.type = 'step_completed' AND i.status = 'Complete'"
    )
    [(total_complete, failed)] = deployment.database.query(
        "SELECT sum(CASE WHEN status = 'Complete' THEN 1 ELSE 0 END),"
        " sum(CASE WHEN status = 'Terminated' THEN 1 ELSE 0 END) FROM instances"
        " WHERE definition_id = ?",
        definition_id,
    )
    instances_per_s = int(completed) / window.seconds
    relayflow = list(deployment.relayflow_pids)
    return {
        "instancesPerS": instances_per_s,
        "stepsPerInstance": int(steps_done) / int(total_complete) if total_complete else None,
        "stepExecutionsPerS": instances_per_s * CHAIN,
        "expressionsPerInstance": per_instance,
        "expressionEvaluationsPerS": instances_per_s * per_instance,
        "cpuMsPerInstance": 1000 * window.cpu_s(relayflow) / int(completed) if completed else None,
        "terminated": int(failed or 0),
        "window": window.as_json(relayflow),
        "loadgen": generated,
        "memory": relayflow_memory(deployment),
    }
