"""W5 provider faults (issue 9): W1's auto-reply while the fake 8x8 fails SMS sends.

(a) flaky: `flaky_messages` inbound SMS webhooks at `flaky_rate`/s (open loop) while the fake
    fails a seeded random `fail_rate` of the SMS requests it receives, the mode drawn from
    `fail_modes` (500, 503, 429 with Retry-After 1, "drop": connection cut and nothing
    accepted, "lost": accepted with a umid, then the connection cut so relayflow never sees the
    answer). The faults stay on until every instance has finished, so retries fail too.
(b) outage: the fake answers 503 to every SMS request for `outage_s` while webhooks arrive at
    `outage_rate`/s for the whole outage; then the outage ends (the fake's own timer).

Every figure comes from the fake's send log (`/bench/sends` of bench/fake8x8_timed.py: each
request's arrival, status, injected fault and `clientMessageId`) and from relayflow's own
tables (instances by status, `step_retry_scheduled` events). A message is one
`clientMessageId` (relayflow keeps it the same on every attempt of one send); the tag and
sequence number of the webhook that started it are in the echoed text.

- delivered: messages the fake accepted (200) at least once;
- duplicated: messages accepted more than once; each such duplicate must follow a "lost"
  answer (the only way relayflow cannot know the first was accepted) — the rest are counted
  apart (`withoutLostAnswer`, must be 0);
- send attempts per message: requests the fake received per `clientMessageId`;
- outage: the SMS requests the fake received while it was down, next to what per-instance
  backoff alone (relayflow's retry policy, no breaker) would have sent: each message's
  attempts from its webhook's time on, with the policy's own seeded jitter, counted inside the
  outage; drain time: from the outage's end to the acceptance of the last message that was
  waiting for it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter, defaultdict
from typing import Any

import httpx

from bench.loadgen import TAGGED
from bench.processes import Deployment, FakeServer, ProcSample, total_machine_cpu_s, wait_for
from bench.settings import W5Settings
from bench.stats import summary
from bench.workloads import w1
from bench.workloads.common import Window, all_pids, launch_loadgen, sms_spec
from fake8x8.client import ControlCalls, ControlError

FINAL = ("Complete", "Terminated")
REPLY_STEP = "reply"  # W1's one SMS step
RAMP_SECONDS = 15  # acceptances per second after recovery, listed this far


class Control(ControlCalls[Any]):
    """The fake's control API (fake8x8/client.py's calls), on the bench's own fake."""

    def __init__(self, url: str) -> None:
        self._http = httpx.Client(base_url=url, timeout=30)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = self._http.request(method, path, json=body)
        if answer.status_code >= 400:
            raise ControlError(answer.status_code, answer.text)
        return answer.json()

    def close(self) -> None:
        self._http.close()


class SendLog:
    """An incremental reader of the fake's send log: `[t, role, status, fault, id, text]`."""

    def __init__(self, fake: FakeServer) -> None:
        self._fake = fake
        self.next = 0
        self.items: list[list[Any]] = []

    def fetch(self) -> None:
        answer = self._fake.http.get(
            f"{self._fake.urls['bench']}/bench/sends", params={"since": self.next}
        )
        answer.raise_for_status()
        body = answer.json()
        self.next = int(body["next"])
        self.items.extend(body["items"])

    def skip_existing(self) -> None:
        self.fetch()
        self.items = []


# ---------------------------------------------------------------------------------------------
# relayflow's side


def instance_statuses(deployment: Deployment, since_ms: int) -> dict[str, int]:
    rows = deployment.database.query(
        "SELECT status, count(*) FROM instances WHERE started_at_ms >= ? GROUP BY status",
        since_ms,
    )
    return {str(status): int(count) for status, count in rows}


def wait_finished(
    deployment: Deployment, since_ms: int, expected: int, deadline: float
) -> tuple[dict[str, int], float | None]:
    """Poll until `expected` instances started since `since_ms` are Complete or Terminated
    (or `deadline` passes): their statuses, and when they were all seen finished."""
    statuses: dict[str, int] = {}

    def finished() -> bool:
        nonlocal statuses
        deployment.check_alive()
        statuses = instance_statuses(deployment, since_ms)
        done = sum(statuses.get(status, 0) for status in FINAL)
        return sum(statuses.values()) >= expected and done == sum(statuses.values())

    try:
        wait_for(finished, "instances to finish", max(1.0, deadline - time.time()), every_s=1.0)
    except TimeoutError:
        return statuses, None
    return statuses, time.time()


def relayflow_view(
    deployment: Deployment, since_ms: int, tag: str, messages: dict[str, list[list[Any]]]
) -> dict[str, Any]:
    """relayflow's own account, from its audit log: retries it scheduled after an attempt (by
    error), sends it deferred without attempting them (the circuit open, or the backlog
    draining) and when, and why instances ended Terminated. Also the outcomes in the order
    relayflow recorded them (a failure's retry, a success's step completion), which is about
    the order its breaker saw them in, and how long after the fake's arrival stamp each was
    recorded. The events are written to the run's directory as well."""
    rows = deployment.database.query(
        "SELECT p.id, e.type, e.at_ms, e.detail_json FROM instance_events e"
        " JOIN instances i ON i.id = e.instance_id"
        " JOIN pointers p ON p.instance_id = e.instance_id AND p.step_id = e.step_id"
        " WHERE i.started_at_ms >= ? AND e.step_id = ?"
        " AND e.type IN ('step_retry_scheduled', 'step_completed') ORDER BY e.at_ms, e.id",
        since_ms,
        REPLY_STEP,
    )
    events = [
        (str(pointer), str(kind), int(at), json.loads(detail or "{}"))
        for pointer, kind, at, detail in rows
    ]
    (deployment.directory / f"w5-{tag}-events.json").write_text(json.dumps(events))
    attempted: Counter[str] = Counter()
    deferred: Counter[str] = Counter()
    deferred_at: list[float] = []
    outcomes: dict[str, list[tuple[int, bool]]] = defaultdict(list)  # pointer → (at, success)
    longest = run = 0
    for pointer, kind, at, detail in events:
        if kind == "step_completed":
            outcomes[pointer].append((at, True))
            run = 0
            continue
        message = str(detail.get("message", ""))
        if detail.get("deferred"):
            deferred["open" if "circuit is open" in message else "draining"] += 1
            deferred_at.append((at - since_ms) / 1000)
            continue
        attempted[message.split(" (")[0].split(". Error id")[0][:90]] += 1
        outcomes[pointer].append((at, False))
        run += 1
        longest = max(longest, run)
    lag: dict[bool, list[float]] = {True: [], False: []}
    for client_id, attempts in messages.items():  # the k-th request ↔ the k-th outcome
        for item, (at, success) in zip(attempts, outcomes.get(client_id, []), strict=False):
            lag[success].append(at - item[0] * 1000)
    errors = deployment.database.query(
        "SELECT w.message FROM workflow_errors w JOIN instances i ON i.id = w.instance_id"
        " WHERE i.started_at_ms >= ?",
        since_ms,
    )
    return {
        "retriesAfterAttempt": sum(attempted.values()),
        "retryErrors": dict(attempted.most_common(8)),
        "deferrals": sum(deferred.values()),
        "deferralsBy": dict(deferred),
        "deferralsFromS": min(deferred_at) if deferred_at else None,
        "deferralsUntilS": max(deferred_at) if deferred_at else None,
        "longestFailureRunAsRecorded": longest,
        "outcomeRecordedAfterArrivalMs": {
            "success": summary(lag[True]),
            "failure": summary(lag[False]),
        },
        "terminationErrors": dict(Counter(str(message) for (message,) in errors).most_common(5)),
    }


# ---------------------------------------------------------------------------------------------
# The fake's side


def longest_failure_run(items: list[list[Any]]) -> int:
    """The most SMS requests in a row (in arrival order) that relayflow saw fail: five in a
    row open a process's breaker (with one process; with several, each sees its own)."""
    longest = run = 0
    for item in sorted((item for item in items if item[1] == "sms"), key=lambda item: item[0]):
        run = run + 1 if item[2] != 200 or item[3] == "lost" else 0
        longest = max(longest, run)
    return longest


def save(deployment: Deployment, tag: str, items: list[list[Any]]) -> None:
    (deployment.directory / f"w5-{tag}-sends.json").write_text(json.dumps(items))


def by_message(items: list[list[Any]], tag: str) -> dict[str, list[list[Any]]]:
    """The phase's SMS requests grouped by clientMessageId, in arrival order."""
    grouped: dict[str, list[list[Any]]] = defaultdict(list)
    for item in items:
        _, role, _, _, client_id, text = item
        match = TAGGED.search(text or "")
        if role == "sms" and client_id and match and match.group(1) == tag:
            grouped[client_id].append(item)
    for attempts in grouped.values():
        attempts.sort(key=lambda item: item[0])
    return grouped


def stamp(attempts: list[list[Any]]) -> tuple[int, float]:
    """The webhook's sequence number and send time, from the echoed text."""
    match = TAGGED.search(attempts[0][5])
    assert match is not None
    return int(match.group(2)), float(match.group(3))


def first_accepted(attempts: list[list[Any]]) -> float | None:
    return next((item[0] for item in attempts if item[2] == 200), None)


def deliveries(messages: dict[str, list[list[Any]]], accepted_webhooks: int) -> dict[str, Any]:
    """Delivered, duplicated (and whether after a lost answer), attempts per message."""
    delivered = duplicated = after_lost = 0
    without_lost: list[dict[str, Any]] = []
    lost_answers = resent_after_lost = 0
    seqs: dict[int, set[str]] = defaultdict(set)
    for client_id, attempts in messages.items():
        seqs[stamp(attempts)[0]].add(client_id)
        accepted = [item for item in attempts if item[2] == 200]
        for index, item in enumerate(attempts):
            if item[3] == "lost":
                lost_answers += 1
                resent_after_lost += index + 1 < len(attempts)
        if accepted:
            delivered += 1
        if len(accepted) > 1:
            duplicated += 1
            if all(item[3] == "lost" for item in accepted[:-1]):
                after_lost += 1
            elif len(without_lost) < 5:
                without_lost.append(
                    {"clientMessageId": client_id, "attempts": [item[:4] for item in attempts]}
                )
    counts = [len(attempts) for attempts in messages.values()]
    latency = [
        (accepted_at - stamp(attempts)[1]) * 1000
        for attempts in messages.values()
        if (accepted_at := first_accepted(attempts)) is not None
    ]
    return {
        "messages": len(messages),
        "delivered": delivered,
        "undelivered": accepted_webhooks - delivered,
        "duplicated": duplicated,
        "duplicatedAfterLostAnswer": after_lost,
        "duplicatedWithoutLostAnswer": duplicated - after_lost,
        "duplicatesWithoutLostAnswerExamples": without_lost,
        "lostAnswers": lost_answers,
        "lostAnswersResent": resent_after_lost,
        "webhooksWithSeveralMessages": sum(1 for ids in seqs.values() if len(ids) > 1),
        "attemptsPerMessage": {
            "mean": sum(counts) / len(counts) if counts else None,
            "max": max(counts) if counts else None,
            "histogram": {str(n): c for n, c in sorted(Counter(counts).items())},
        },
        "requests": sum(counts),
        "outcomes": dict(
            Counter(
                item[3] or ("no answer" if item[2] is None else str(item[2]))
                for attempts in messages.values()
                for item in attempts
            )
        ),
        "webhookToAcceptedMs": summary(latency, missing=max(0, accepted_webhooks - len(latency))),
    }


def per_second_peak(times: list[float]) -> int:
    bins = Counter(int(t) for t in times)
    return max(bins.values()) if bins else 0


def backoff_alone(messages: dict[str, list[list[Any]]], start: float, end: float) -> dict[str, Any]:
    """What per-instance backoff alone would have sent during the outage: every message tried
    at its webhook's time, then after relayflow's own backoff (seeded by its pointer id, as the
    engine does), until the outage's end; and when each would have tried next after it."""
    from relayflow.engine.retry import RetryPolicy  # the policy under test, not a copy

    policy = RetryPolicy()  # relayflow's defaults (1 s doubling to 300 s; a 3,600 s window)
    in_outage: list[float] = []
    after_end: list[float] = []
    for client_id, attempts in messages.items():
        at, attempt = stamp(attempts)[1], 1
        while at < end:
            if at >= start:
                in_outage.append(at)
            at += policy.backoff_ms(attempt, client_id) / 1000
            attempt += 1
        after_end.append(at)
    return {
        "requestsDuringOutage": len(in_outage),
        "peakRequestsPerSecond": per_second_peak(in_outage),
        "lastRetryAfterEndS": max(after_end) - end if after_end else None,
        "backlogBackWithin1sOfEnd": sum(1 for at in after_end if at < end + 1),
    }


# ---------------------------------------------------------------------------------------------
# The two phases


def launch(deployment: Deployment, tag: str, rate: float, count: int) -> Any:
    spec = sms_spec(deployment, tag, mode="open", rate=rate, count=count, connections=256)
    return launch_loadgen(deployment.directory, f"w5-{tag}", spec)


def flaky(deployment: Deployment, control: Control, settings: W5Settings) -> dict[str, Any]:
    modes = [mode.strip() for mode in settings.fail_modes.split(",") if mode.strip()]
    sends = SendLog(deployment.fake)
    sends.skip_existing()
    since_ms = int(time.time() * 1000)
    control.fail_rate(settings.fail_rate, modes, role="sms", seed=settings.fail_seed)
    try:
        loadgen = launch(deployment, "flaky", settings.flaky_rate, settings.flaky_messages)
        generated = loadgen.wait(settings.flaky_messages / settings.flaky_rate + 120)
        accepted = generated["statuses"].get("200", 0)
        statuses, finished_at = wait_finished(
            deployment, since_ms, accepted, time.time() + settings.settle_s
        )
    finally:
        control.fail_rate(0, role="sms")
    sends.fetch()
    save(deployment, "flaky", sends.items)
    messages = by_message(sends.items, "flaky")
    return {
        "offered": settings.flaky_messages,
        "rate": settings.flaky_rate,
        "webhooks": generated["statuses"],
        "instances": _instances(statuses, finished_at, generated),
        **deliveries(messages, accepted),
        "longestFailureRun": longest_failure_run(sends.items),
        "relayflow": relayflow_view(deployment, since_ms, "flaky", messages),
    }


def outage(deployment: Deployment, control: Control, settings: W5Settings) -> dict[str, Any]:
    sends = SendLog(deployment.fake)
    sends.skip_existing()
    since_ms = int(time.time() * 1000)
    count = int(settings.outage_rate * settings.outage_s)
    loadgen = launch(deployment, "outage", settings.outage_rate, count)
    # Webhooks go out at start_at + i / rate: starting the outage half a gap earlier puts the
    # last of them inside it too.
    time.sleep(max(0.0, loadgen.spec["start_at"] - 0.5 / settings.outage_rate - time.time()))
    pids = all_pids(deployment, loadgen)
    sample, machine = ProcSample.take(pids), total_machine_cpu_s()
    before = time.time()
    control.outage("sms", "503", seconds=settings.outage_s)
    start = (before + time.time()) / 2  # the fake starts its timer in between
    end = start + settings.outage_s
    try:
        time.sleep(max(0.0, end - time.time()))  # the generator is not reaped yet: sampled too
        window = Window(sample, ProcSample.take(pids), total_machine_cpu_s() - machine)
        generated = loadgen.wait(120)
        time.sleep(max(0.0, end + 0.5 - time.time()))
    finally:
        with contextlib.suppress(httpx.HTTPError, ControlError):
            control.end_outage()  # over already, unless the run failed before its end
    accepted = generated["statuses"].get("200", 0)
    statuses, finished_at = wait_finished(deployment, since_ms, accepted, end + settings.settle_s)
    sends.fetch()
    save(deployment, "outage", sends.items)
    messages = by_message(sends.items, "outage")
    during = [item for item in sends.items if item[1] == "sms" and start <= item[0] < end]
    firsts = sorted(
        t for attempts in messages.values() if (t := first_accepted(attempts)) is not None
    )
    waiting = [t for t in firsts if t >= end]
    recovered = waiting[0] if waiting else None
    ramp = Counter(int(t - recovered) for t in waiting) if recovered is not None else Counter()
    return {
        "outageS": settings.outage_s,
        "rate": settings.outage_rate,
        "offered": count,
        "webhooks": generated["statuses"],
        "webhooksAfterOutageEnd": sum(
            1 for attempts in messages.values() if stamp(attempts)[1] >= end
        ),
        "instances": _instances(statuses, finished_at, generated, end),
        **deliveries(messages, accepted),
        "duringOutage": {
            "requests": len(during),
            "statuses": dict(Counter(str(item[2]) for item in during)),
            "peakRequestsPerSecond": per_second_peak([item[0] for item in during]),
            "accepted": sum(1 for item in during if item[2] == 200),
            "atS": [round(item[0] - start, 3) for item in during[:50]],
            "cpu": window.as_json(list(deployment.relayflow_pids)),
        },
        "backoffAlone": backoff_alone(messages, start, end),
        "backlog": len(waiting),
        "firstAcceptedAfterEndS": None if recovered is None else recovered - end,
        "drainS": waiting[-1] - end if waiting else None,
        "drainFromFirstAcceptedS": waiting[-1] - recovered if recovered is not None else None,
        "acceptedPerSecondAfterRecovery": [ramp.get(second, 0) for second in range(RAMP_SECONDS)],
        "peakRequestsPerSecondAfterEnd": per_second_peak(
            [item[0] for item in sends.items if item[1] == "sms" and item[0] >= end]
        ),
        "relayflow": relayflow_view(deployment, since_ms, "outage", messages),
    }


def _instances(
    statuses: dict[str, int],
    finished_at: float | None,
    generated: dict[str, Any],
    since: float | None = None,
) -> dict[str, Any]:
    """Started / Complete / Terminated / still running, and when the last one finished (from
    the last webhook's send, or from `since`, the outage's end)."""
    started = sum(statuses.values())
    done = sum(statuses.get(status, 0) for status in FINAL)
    origin = since if since is not None else generated.get("lastSend")
    took = None if finished_at is None or origin is None else finished_at - origin
    return {
        "started": started,
        "complete": statuses.get("Complete", 0),
        "terminated": statuses.get("Terminated", 0),
        "stillRunning": started - done,
        "byStatus": statuses,
        "allFinishedAfterS": took,
    }


def run(deployment: Deployment, settings: W5Settings) -> dict[str, Any]:
    w1.define(deployment)
    control = Control(deployment.fake.urls["control"])
    try:
        result = {"flaky": flaky(deployment, control, settings)}
        result["outage"] = outage(deployment, control, settings)
        result["faultsAtEnd"] = control.faults()
    finally:
        control.close()
    return result
