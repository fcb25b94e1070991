"""Scale-out on PostgreSQL (issue 13): one `relayflow api` and 4 `relayflow worker` processes
share a fresh database with a short lease, a steady stream of instances (Wait, then two SMS
through the sandbox) runs, and meanwhile one worker is SIGKILLed and replaced, then another.

In the end every instance is Complete, each step sent exactly once, and no instance ever ran
in two workers at once. That last claim rests on what the engine records, with no timing
threshold anywhere (only clock comparisons on one machine's clock):

1. Each step is started once: exactly one `step_started` audit row per (instance, step). Two
   workers running one instance concurrently each start the step they loaded and record it
   (`{"worker": owner}` in the detail), so a concurrent run that committed shows up here.
2. Per instance, each step execution is an interval from its `step_started` to its
   `step_completed`, owned by the worker in the start event. No two intervals of different
   workers may overlap. In a sequential run the next step starts at or after the previous
   one completes (the same sprint, or a later claim), so intervals only touch.
3. No takeover while the holder lives: every instance a worker held when it was frozen by
   SIGSTOP (alive, its lease valid) may be started on by another worker, or seen leased to
   another owner by the sampler, only after it was SIGKILLed. (Not "after its lease's end": a
   replacement worker on the same host releases the leases of a dead process at once, by
   design, `Worker.release_dead_local_leases`.) A sign of another owner while the holder was
   frozen means two owners at once.
4. The sampler reads `instances.lease_owner` every few milliseconds with the database's clock:
   every owner seen is one of the workers started, and (3) is checked on its observations.
5. Sends: the messages table has exactly one row per (instance, SMS step), and the sandbox
   outbox shows each instance's two texts once.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.databases import db_rows, step_logs
from tests.support.definitions import definition
from tests.support.process_api import Api, all_complete
from tests.support.processes import (
    LEASE_SECONDS,
    LeaseSampler,
    Processes,
    Worker,
    create_account,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

INSTANCES = 300
RATE_PER_S = 15  # the stream lasts 20 s: both kills happen while it flows
WORKERS = 4
SMS_STEPS = ("greet", "remind")

FLOW = definition(
    "scale-out",
    "http_request",
    [
        {
            "id": "nap",
            "stepType": "Wait",
            "inputs": {"duration": "00:00:01"},
            "nextStepId": "greet",
        },
        {
            "id": "greet",
            "stepType": "SMS",
            "inputs": {
                "subAccountId": "acme_sms",
                "destination": "{{data.phone}}",
                "text": "Hello #{{data.n}}",
            },
            "nextStepId": "remind",
        },
        {
            "id": "remind",
            "stepType": "SMS",
            "inputs": {
                "subAccountId": "acme_sms",
                "destination": "{{data.phone}}",
                "text": "Bye #{{data.n}}",
            },
        },
    ],
)


def phone_of(n: int) -> str:
    return f"+6595{n:06d}"


class Stream(threading.Thread):
    """Trigger INSTANCES instances at about RATE_PER_S (4 requests in flight)."""

    def __init__(self, api: Api) -> None:
        super().__init__(daemon=True)
        self.api = api
        self.started: dict[str, int] = {}  # workflowId -> n
        self.error: BaseException | None = None

    def run(self) -> None:
        began = time.monotonic()

        def one(n: int) -> tuple[str, int]:
            time.sleep(max(0.0, began + n / RATE_PER_S - time.monotonic()))
            [workflow] = self.api.trigger({"phone": phone_of(n), "n": n})
            return workflow, n

        try:
            with ThreadPoolExecutor(max_workers=4) as pool:
                self.started = dict(pool.map(one, range(INSTANCES)))
        except BaseException as error:  # reported by the test thread
            self.error = error

    def finish(self) -> dict[str, int]:
        self.join(timeout=120)
        if self.error:
            raise self.error
        return self.started


def kill_one_holding(
    pg_url: str, candidates: list[Worker]
) -> tuple[Worker, int, int, dict[str, int]]:
    """Freeze a candidate while it holds leases, read them, SIGKILL it: the victim, when its
    leases were read and when it was dead (database clock, ms), and {instance: lease end}."""
    by_owner = {w.owner: w for w in candidates}

    def busy() -> Worker | None:
        rows = db_rows(
            pg_url,
            "SELECT lease_owner FROM instances WHERE lease_owner IS NOT NULL "
            "GROUP BY lease_owner ORDER BY count(*) DESC",
        )
        return next((by_owner[owner] for (owner,) in rows if owner in by_owner), None)

    for _ in range(20):
        victim = wait_for(busy, "a worker to hold leases", interval_s=0.005)
        os.kill(victim.pid, signal.SIGSTOP)
        time.sleep(0.3)  # a COMMIT already sent still lands; nothing else can
        rows = db_rows(
            pg_url,
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint, id, lease_until_ms "
            f"FROM instances WHERE lease_owner = '{victim.owner}'",
        )
        if rows:
            victim.kill9()
            assert victim.process.returncode == -signal.SIGKILL
            [(killed_at,)] = db_rows(
                pg_url, "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint"
            )
            held = {instance: until for _, instance, until in rows}
            return victim, rows[0][0], killed_at, held
        os.kill(victim.pid, signal.SIGCONT)
    pytest.fail("no worker held a lease when frozen")


def audit_rows(pg_url: str) -> dict[str, list[tuple[int, str, str, int, dict[str, object]]]]:
    """instance -> [(id, type, step, at_ms, detail)] of step starts and completions, in order."""
    rows = db_rows(
        pg_url,
        "SELECT id, instance_id, type, step_id, at_ms, detail_json FROM instance_events "
        "WHERE type IN ('step_started', 'step_completed') ORDER BY id",
    )
    found: dict[str, list[tuple[int, str, str, int, dict[str, object]]]] = defaultdict(list)
    for event_id, instance_id, kind, step_id, at_ms, detail in rows:
        found[instance_id].append((event_id, kind, step_id, at_ms, json.loads(detail or "{}")))
    return found


def step_intervals(
    events: list[tuple[int, str, str, int, dict[str, object]]],
) -> list[tuple[str, str, int, int]]:
    """[(worker, step, started at, completed at)]: each start with the step's next completion."""
    intervals = []
    for event_id, kind, step_id, at_ms, detail in events:
        if kind != "step_started":
            continue
        ends = [
            e[3] for e in events if e[1] == "step_completed" and e[2] == step_id and e[0] > event_id
        ]
        assert ends, f"step {step_id} started and never completed: {events}"
        intervals.append((str(detail.get("worker")), step_id, at_ms, ends[0]))
    return intervals


def test_four_workers_with_kills_never_run_one_instance_twice(pg_url: str, tmp_path: Path) -> None:
    began = time.monotonic()
    settings = {"worker_lease_seconds": LEASE_SECONDS}
    with Processes(tmp_path) as procs:
        account = create_account(pg_url, tmp_path)
        workers = [procs.worker(pg_url, f"worker-{n}", **settings) for n in range(1, WORKERS + 1)]
        server = procs.api(pg_url, "api")
        server.wait_healthy()
        for worker in workers:
            worker.wait_started()
        api = Api(server.base_url, account["accountId"], account["apiKey"])
        sampler = LeaseSampler(pg_url)
        try:
            definition_id = api.define(FLOW)
            sampler.start()
            stream = Stream(api)
            stream.start()

            # Kills in between: freeze and kill a busy worker, start a replacement (it joins
            # when it is up: a process takes seconds to start here), then another.
            killed: dict[str, tuple[int, int, dict[str, int]]] = {}  # owner -> (read, dead, held)
            killed_held: dict[str, int] = {}  # name -> how many leases it held
            replacements: list[Worker] = []
            for round_ in (1, 2):
                time.sleep(2)
                originals = [w for w in workers if w.owner not in killed]
                victim, read_at, killed_at, held = kill_one_holding(pg_url, originals)
                killed[victim.owner] = (read_at, killed_at, held)
                killed_held[victim.name] = len(held)
                replacements.append(procs.worker(pg_url, f"replacement-{round_}", **settings))
            for replacement in replacements:
                replacement.wait_started()
            workers += replacements
            started = stream.finish()
            assert len(started) == INSTANCES
            wait_for(
                lambda: all_complete(api, [definition_id], INSTANCES),
                "every instance to complete",
                deadline_s=60,
                interval_s=0.2,
            )
            seen = sampler.finish()

            # Every instance Complete, each step run once (one pointer each, no resend).
            listed = api.instances(definition_id)
            assert {i["workflowId"] for i in listed} == set(started)
            assert {i["status"] for i in listed} == {"Complete"}
            logs = step_logs(pg_url)
            for workflow in started:
                steps = [(step, status) for step, status, _ in logs[workflow]]
                assert steps == [("nap", "Complete"), ("greet", "Complete"), ("remind", "Complete")]

            # (5) One message per (instance, SMS step), with the right texts.
            per_step = Counter(
                {
                    (instance, step): count
                    for instance, step, count in db_rows(
                        pg_url,
                        "SELECT m.instance_id, p.step_id, count(*) FROM messages m "
                        "JOIN pointers p ON p.id = m.pointer_id GROUP BY 1, 2",
                    )
                }
            )
            expected = {(w, s) for w in started for s in SMS_STEPS}
            assert set(per_step) == expected, "a send is missing or from an unknown step"
            assert set(per_step.values()) == {1}, "a step sent twice"
            for workflow, messages in api.sent_by_instance().items():
                n = started[workflow]
                assert sorted(messages) == sorted(
                    [(phone_of(n), f"Hello #{n}"), (phone_of(n), f"Bye #{n}")]
                ), (workflow, messages)

            owners = {w.owner for w in workers}
            audit = audit_rows(pg_url)
            assert set(audit) == set(started)
            workers_of: dict[str, set[str]] = defaultdict(set)
            for workflow, events in audit.items():
                # (1) Each step started once, and completed once.
                starts = Counter(e[2] for e in events if e[1] == "step_started")
                completions = Counter(e[2] for e in events if e[1] == "step_completed")
                assert starts == completions == Counter(["nap", *SMS_STEPS]), (workflow, events)
                # (2) No two workers' step executions overlap in time.
                intervals = step_intervals(events)
                for step_owner, *_ in intervals:
                    assert step_owner in owners, f"{workflow}: a step started by {step_owner}"
                    workers_of[step_owner].add(workflow)
                for a_worker, a_step, a_start, a_end in intervals:
                    for b_worker, b_step, b_start, b_end in intervals:
                        if a_worker != b_worker:
                            assert not (a_start < b_end and b_start < a_end), (
                                f"{workflow}: {a_step} in {a_worker} [{a_start}, {a_end}] overlaps "
                                f"{b_step} in {b_worker} [{b_start}, {b_end}]"
                            )

            # (4) Only the workers started ever held a lease.
            lease_holders = {owner for changes in seen.values() for _, owner in changes}
            assert lease_holders <= owners, f"unknown lease owners: {lease_holders - owners}"

            # (3) A frozen worker's instances were taken over only once it was dead.
            for dead, (read_at, killed_at, held) in killed.items():
                for workflow, lease_end in held.items():
                    alive_until = min(killed_at, lease_end)
                    early_steps = [
                        (at_ms, detail)
                        for _, kind, _, at_ms, detail in audit[workflow]
                        if kind == "step_started" and detail.get("worker") != dead
                        if read_at < at_ms <= alive_until
                    ]
                    assert not early_steps, (workflow, dead, alive_until, early_steps)
                    # Owners seen after the frozen worker's leases were read (earlier ones
                    # held the instance before it did).
                    early_leases = [
                        (at_ms, owner)
                        for at_ms, owner in seen.get(workflow, [])
                        if owner != dead and read_at < at_ms <= alive_until
                    ]
                    assert not early_leases, (workflow, dead, alive_until, early_leases)

            for child in (*(w for w in workers if w.owner not in killed), server):
                child.check_alive()
                assert child.error_logs() == [], child.name
            share = {w.name: len(workers_of.get(w.owner, set())) for w in workers}
            print(
                f"\nscale-out: {INSTANCES} instances; instances each worker started steps of "
                f"{share}; "
                f"leases held by the killed workers {killed_held}; "
                f"{sampler.samples} lease samples; {time.monotonic() - began:.1f} s"
            )
        finally:
            sampler.stop.set()
            api.close()
