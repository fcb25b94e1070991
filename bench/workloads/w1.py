"""W1 auto-reply: an inbound SMS webhook starts an instance whose one SMS step replies.

(a) Saturation: a closed loop keeps `concurrency` instances outstanding (webhook posted, reply
    not yet at the fake 8x8); throughput = replies the fake received per second in a steady
    window after a warm-up. Every instance costs the webhook's transaction, a claim, a load,
    the checkpoint before the send, the send record, the HTTP call and the final save.
(b) Latency: open loop at fixed offered rates; webhook POST (send time in the SMS text) →
    reply received by the fake (its arrival stamp), p50/p99; replies never seen count as
    infinitely late.
(c) CPU-ms per instance: CPU of all relayflow processes over the window (a) / replies in it.
(d) Peak RSS: VmHWM of each relayflow process after (a) and (b).
"""

from __future__ import annotations

from typing import Any

from bench.processes import Deployment, FakeLog
from bench.settings import W1Settings
from bench.workloads.common import (
    SmsTarget,
    all_pids,
    fake_completion,
    latency_summary,
    launch_loadgen,
    measure_window,
    rejected,
    relayflow_memory,
    sms_reply_step,
    sms_spec,
    wait_for_tagged,
)

REPLY_TEXT = "{{data.payload.body}}"  # the echo carries the send time back to the fake


def define(deployment: Deployment) -> str:
    return deployment.define("inbound_sms", [sms_reply_step("reply", REPLY_TEXT)], "W1 auto-reply")


def saturation(
    deployment: SmsTarget, settings: W1Settings, concurrency: int, tag: str = "sat"
) -> dict[str, Any]:
    """Closed-loop throughput, CPU per instance and the loop's own latency."""
    log = FakeLog(deployment.fake)
    log.skip_existing()
    spec = sms_spec(
        deployment,
        tag,
        mode="closed",
        concurrency=concurrency,
        duration_s=settings.warmup_s + settings.measure_s,
        completion=fake_completion(deployment, log.next),
    )
    loadgen = launch_loadgen(deployment.directory, f"w1-{tag}", spec)
    begin = loadgen.spec["start_at"] + settings.warmup_s
    window = measure_window(
        begin, begin + settings.measure_s, lambda: all_pids(deployment, loadgen)
    )
    generated = loadgen.wait(settings.measure_s + settings.drain_s + 120)
    found = wait_for_tagged(log, tag, generated["completed"], 10)
    in_window = [
        arrived for _, arrived in found.values() if window.start.at <= arrived < window.end.at
    ]
    throughput = len(in_window) / window.seconds
    relayflow = list(deployment.relayflow_pids)
    cpu_s = window.cpu_s(relayflow)
    return {
        "concurrency": concurrency,
        "throughput": throughput,
        "cpuMsPerInstance": 1000 * cpu_s / len(in_window) if in_window else None,
        "window": window.as_json(relayflow),
        "latencyMs": latency_summary(found, 0),
        "loadgen": generated,
        "rejectedAtFake": rejected(log.items),
    }


def offered(deployment: Deployment, settings: W1Settings, rate: float) -> dict[str, Any]:
    """Open-loop latency at `rate` instances/s."""
    tag = f"r{int(rate)}"
    log = FakeLog(deployment.fake)
    log.skip_existing()
    count = int(rate * settings.rate_s)
    spec = sms_spec(deployment, tag, mode="open", rate=rate, count=count, connections=1024)
    loadgen = launch_loadgen(deployment.directory, f"w1-{tag}", spec)
    start = loadgen.spec["start_at"]
    window = measure_window(start, start + settings.rate_s, lambda: all_pids(deployment, loadgen))
    generated = loadgen.wait(settings.rate_s + 120)
    accepted = generated["statuses"].get("200", 0)
    found = wait_for_tagged(log, tag, accepted, settings.drain_s)
    return {
        "offeredRate": rate,
        "sent": generated["sent"],
        "accepted": accepted,
        "replied": len(found),
        "latencyMs": latency_summary(found, accepted),
        "webhookAckMs": generated["postMs"],
        "generatorLagMs": generated["lagMs"],
        "window": window.as_json(list(deployment.relayflow_pids)),
        "rejectedAtFake": rejected(log.items),
    }


def run(deployment: Deployment, settings: W1Settings) -> dict[str, Any]:
    define(deployment)
    result: dict[str, Any] = {"saturation": saturation(deployment, settings, settings.concurrency)}
    result["latency"] = [offered(deployment, settings, rate) for rate in settings.rates]
    result["memory"] = relayflow_memory(deployment)
    return result
