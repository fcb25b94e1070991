"""W2 survey at scale: N instances waiting in WaitForReply, then replies to a random 10%.

Definition (inbound_sms): ask (SMS) → wait (WaitForReply from the sender, 1 day) → answer (SMS
echoing the reply). Setup: N inbound webhooks from N distinct numbers through a closed loop
(an item completes when its question reaches the fake 8x8); then the database must show N
subscriptions. Measured:
- memory: VmRSS of the relayflow processes before (after a small warm-up) and after the waits
  are set up, their peak (VmHWM), and RSS growth per waiting instance;
- database size before / after, per waiting instance (SQLite file + -wal, and the pages in use;
  PostgreSQL `pg_database_size`);
- reply → answer latency: replies from a random 10% of the numbers at a fixed rate (open loop),
  each carrying its send time, to the answer's arrival at the fake; p50/p99.
"""

from __future__ import annotations

import random
import time
from typing import Any

from bench.processes import Deployment, FakeLog, ProcSample, wait_for
from bench.settings import W2Settings
from bench.workloads.common import (
    CUSTOMER_BASE,
    all_pids,
    count_instances,
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

WARMUP = 200


def steps() -> list[dict[str, Any]]:
    return [
        sms_reply_step("ask", "How did we do? {{data.payload.body}}", nextStepId="wait"),
        {
            "id": "wait",
            "stepType": "WaitForReply",
            "nextStepId": "answer",
            "inputs": {
                "from": "{{data.payload.source}}",
                "channel": "sms",
                "timeout": "1.00:00:00",
            },
            "outputs": {"answer": "{{step.reply.payload.body}}"},
        },
        sms_reply_step("answer", "Thanks! {{data.answer}}"),
    ]


def subscriptions(deployment: Deployment) -> int:
    [(count,)] = deployment.database.query("SELECT count(*) FROM subscriptions")
    return int(count)


def start_waiting(
    deployment: Deployment, settings: W2Settings, tag: str, first: int, count: int
) -> dict[str, Any]:
    """Start `count` instances (numbers `first`..) and wait until all of them are subscribed."""
    log = FakeLog(deployment.fake)
    log.skip_existing()
    numbers = [str(CUSTOMER_BASE + first + i) for i in range(count)]
    spec = sms_spec(
        deployment,
        tag,
        numbers=numbers,
        mode="closed",
        concurrency=settings.setup_concurrency,
        count=count,
        completion=fake_completion(deployment, log.next),
    )
    started = time.time()
    loadgen = launch_loadgen(deployment.directory, f"w2-{tag}", spec)
    generated = loadgen.wait(count / 5 + 300)
    expected = first + count
    wait_for(
        lambda: subscriptions(deployment) >= expected,
        f"{expected} subscriptions",
        timeout_s=120,
        every_s=0.5,
    )
    elapsed = time.time() - started
    return {"count": count, "seconds": elapsed, "startRate": count / elapsed, "loadgen": generated}


def run(deployment: Deployment, settings: W2Settings) -> dict[str, Any]:
    deployment.define("inbound_sms", steps(), "W2 survey")
    n = settings.waiting
    warm = start_waiting(deployment, settings, "warm", 0, min(WARMUP, n))
    time.sleep(2)  # let the last sprints' garbage go before the baseline
    before = ProcSample.take(deployment.relayflow_pids)
    size_before = deployment.database.size_bytes()
    setup = start_waiting(deployment, settings, "setup", warm["count"], n - warm["count"])
    time.sleep(2)
    after = ProcSample.take(deployment.relayflow_pids)
    size_after = deployment.database.size_bytes()
    waiting_now = subscriptions(deployment)
    added = n - warm["count"]
    memory = {
        "rssMbBefore": sum(before.rss_kb.values()) / 1024,
        "rssMbAfter": sum(after.rss_kb.values()) / 1024,
        "peakRssMbAfterSetup": sum(after.hwm_kb.values()) / 1024,
        "rssKbPerWaiting": (sum(after.rss_kb.values()) - sum(before.rss_kb.values())) / added,
        "perProcessAfter": {
            name: {"rssMb": after.rss_kb[name] / 1024, "peakRssMb": after.hwm_kb[name] / 1024}
            for name in after.rss_kb
        },
    }
    database = {
        "before": size_before,
        "after": size_after,
        "bytesPerWaiting": (size_after["total"] - size_before["total"]) / added,
        "usedBytesPerWaiting": (
            (size_after["used"] - size_before["used"]) / added if "used" in size_after else None
        ),
    }

    # Replies from a random 10% at a fixed rate.
    chooser = random.Random(5)  # noqa: S311 - reproducible choice, not crypto
    replying = sorted(chooser.sample(range(n), int(n * settings.reply_fraction)))
    log = FakeLog(deployment.fake)
    log.skip_existing()
    spec = sms_spec(
        deployment,
        "reply",
        numbers=[str(CUSTOMER_BASE + i) for i in replying],
        mode="open",
        rate=settings.reply_rate,
        count=len(replying),
        connections=1024,
    )
    loadgen = launch_loadgen(deployment.directory, "w2-reply", spec)
    duration = len(replying) / settings.reply_rate
    start = loadgen.spec["start_at"]
    window = measure_window(start, start + duration, lambda: all_pids(deployment, loadgen))
    generated = loadgen.wait(duration + 120)
    accepted = generated["statuses"].get("200", 0)
    found = wait_for_tagged(log, "reply", accepted, settings.drain_s)
    return {
        "waiting": n,
        "subscribed": waiting_now,
        "setup": {"seconds": warm["seconds"] + setup["seconds"], "startRate": setup["startRate"]},
        "memory": memory,
        "database": database,
        "replies": {
            "rate": settings.reply_rate,
            "sent": generated["sent"],
            "accepted": accepted,
            "retried": generated.get("retried"),
            "answered": len(found),
            "latencyMs": latency_summary(found, accepted),
            "webhookAckMs": generated["postMs"],
            "generatorLagMs": generated["lagMs"],
            "window": window.as_json(list(deployment.relayflow_pids)),
            "rejectedAtFake": rejected(log.items),
        },
        "instances": count_instances(deployment),
        "memoryAtEnd": relayflow_memory(deployment),
    }
