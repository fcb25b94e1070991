"""The load generator: a separate process that posts webhooks or triggers on loopback.

Why a process of its own: the generator must not share relayflow's interpreter, and the
orchestrator must stay free to sample /proc while load runs. It reads a JSON spec, sends, and
writes a JSON result; it does not compute end-to-end latency: each SMS it sends carries its send
time (`time.time()`) in its text, the workflow echoes it, and the fake 8x8 stamps the arrival of
the reply with the same clock, so the orchestrator computes latency from the fake's log alone.

Modes:
- `closed`: at most `concurrency` items outstanding. An item is outstanding until its
  completion is seen: the fake 8x8 received the message carrying its tag (`completion.kind =
  fake`, polled from the fake's timing log), or the database counts it as complete (`db`), or
  just until relayflow answered the POST (no completion).
- `open`: item i is sent at `start_at + i / rate`, whatever the answers (no coordinated
  omission); the lag behind that schedule is reported so a slow generator is visible.

Run: `python -m bench.loadgen SPEC.json` (writes `spec["out"]`).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import sqlite3
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from bench.stats import run_fast, summary

TAGGED = re.compile(r"([a-z0-9]+):(\d+):(\d+\.\d+)")
POLL_S = 0.02
OUTSTANDING_TIMEOUT_S = 60.0
RETRIED = (429, 503)  # answers that ask to come back later (Retry-After)
MAX_ATTEMPTS = 5


def timespan(seconds: float) -> str:
    """A .NET timespan `hh:mm:ss.fff` (what Wait durations are)."""
    seconds = max(0.0, seconds)
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def iso_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def _seconds(retry_after: str | None) -> float:
    """Retry-After in seconds (relayflow sends whole seconds); 1 when absent or unreadable."""
    try:
        return max(0.0, float(retry_after)) if retry_after else 1.0
    except ValueError:
        return 1.0


class Generator:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.tag: str = spec.get("tag", "lg")
        self.statuses: Counter[str] = Counter()
        self.retried: Counter[str] = Counter()  # answers sent again after their Retry-After
        self.retry_reasons: list[str] = []
        self.errors: list[str] = []
        self.post_ms: list[float] = []
        self.lag_ms: list[float] = []
        self.sent = 0
        self.completed = 0
        self.timed_out = 0
        self.first_send: float | None = None
        self.last_send: float | None = None
        self.outstanding: dict[int, float] = {}
        self.slots = asyncio.Semaphore(int(spec.get("concurrency", 64)))
        self.done_sending = False
        self.timer: dict[str, Any] | None = (spec.get("http") or {}).get("timer")
        seed = self.timer["seed"] if self.timer else None
        self.rng = random.Random(seed)  # noqa: S311 - reproducible due times, not crypto
        self.due_base: float | None = None
        self.calibration_start: float | None = None

    # -- what to send

    def request(self, seq: int) -> tuple[str, bytes]:
        """URL and body of item `seq`; the send time is taken as late as possible."""
        spec = self.spec
        now = time.time()
        body: dict[str, Any]
        if spec["target"] == "sms":
            sms = spec["sms"]
            numbers = sms.get("numbers")
            source = numbers[seq] if numbers else str(int(sms["number_base"]) + seq)
            body = {
                "namespace": "SMS",
                "eventType": "inbound_message_received",
                "description": "SMS inbound message",
                "payload": {
                    "umid": str(uuid.uuid4()),
                    "subAccountId": sms["sub_account"],
                    "timestamp": iso_now(),
                    "source": "+" + source.lstrip("+"),
                    "destination": sms["to"],
                    "body": f"{self.tag}:{seq}:{now:.6f}",
                    "encoding": "GSM7",
                    "smsCount": 1,
                    "price": {"total": 0.0125, "perSms": 0.0125, "currency": "USD"},
                },
            }
        else:
            body = dict(spec["http"].get("body") or {})
            body["seq"] = seq
            if self.timer:
                body["d"] = timespan(self._due(seq, now) - now)
        return spec["url"], json.dumps(body).encode()

    def _due(self, seq: int, now: float) -> float:
        """W3's due times. The first `calibrate` items are parked (due in `park_s`) and only
        time the engine: from their rate the window's start is placed where the remaining
        burst will be over (`margin_factor` x the expected time, at least `min_margin_s`), so
        timers fire while the engine does nothing else. Every later item is due at a uniform
        random point of the window."""
        timer = self.timer
        assert timer is not None
        calibrate = int(timer["calibrate"])
        steady_from = int(self.spec.get("concurrency", 64))  # the first window goes out at once
        if seq == steady_from:
            self.calibration_start = now
        if seq < calibrate:
            return now + float(timer["park_s"])
        if self.due_base is None:
            start = self.calibration_start
            rate = (
                (calibrate - steady_from) / max(now - start, 1e-3)
                if start is not None and calibrate > steady_from
                else float(timer["assumed_rate"])
            )
            remaining = int(self.spec["count"]) - calibrate
            margin = max(float(timer["min_margin_s"]), remaining / rate * timer["margin_factor"])
            self.due_base = now + margin
        return self.due_base + float(timer["spread_s"]) * self.rng.random()

    # -- sending

    async def post(self, session: aiohttp.ClientSession, seq: int) -> bool:
        """Send item `seq`; a 429 or 503 is sent again after its Retry-After, as 8x8 retries a
        webhook that failed (the same body: its umid makes a repeat a duplicate, and its send
        time stays the first one, so latency, and `postMs`, include the wait)."""
        url, body = self.request(seq)
        started = time.time()
        self.first_send = self.first_send or started
        self.last_send = started
        self.sent += 1
        for attempt in range(MAX_ATTEMPTS):
            try:
                async with session.post(
                    url, data=body, headers={"Content-Type": "application/json", **self.headers}
                ) as response:
                    answer = await response.read()
                    status = response.status
                    retry_after = response.headers.get("Retry-After")
            except (aiohttp.ClientError, TimeoutError) as error:
                self.statuses["error"] += 1
                if len(self.errors) < 10:
                    self.errors.append(f"{type(error).__name__}: {error}")
                return False
            if status in RETRIED and attempt + 1 < MAX_ATTEMPTS:
                self.retried[str(status)] += 1
                if len(self.retry_reasons) < 10:
                    said = answer[:200].decode(errors="replace")
                    self.retry_reasons.append(f"HTTP {status}: {said}")
                await asyncio.sleep(_seconds(retry_after))
                continue
            break
        self.post_ms.append((time.time() - started) * 1000)
        self.statuses[str(status)] += 1
        if status != 200 and len(self.errors) < 10:
            self.errors.append(f"HTTP {status}: {answer[:200].decode(errors='replace')}")
        return status == 200

    @property
    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = self.spec.get("headers") or {}
        return headers

    async def closed(self, session: aiohttp.ClientSession) -> None:
        completion = self.spec.get("completion")
        tasks: set[asyncio.Task[None]] = set()

        async def one(seq: int) -> None:
            if not completion:
                await self.post(session, seq)
                self.slots.release()
                return
            # Outstanding before the POST: the reply may reach the fake before the 200 reaches us.
            self.outstanding[seq] = time.monotonic()
            if not await self.post(session, seq) and self.outstanding.pop(seq, None) is not None:
                self.slots.release()  # never started: nothing will complete it

        for seq in self.items():
            await self.slots.acquire()
            if self.past_end():
                self.slots.release()
                break
            task = asyncio.create_task(one(seq))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        self.done_sending = True
        if tasks:
            await asyncio.gather(*tasks)

    async def open(self, session: aiohttp.ClientSession) -> None:
        rate = float(self.spec["rate"])
        start = float(self.spec["start_at"])
        tasks: set[asyncio.Task[bool]] = set()
        for seq in self.items():
            scheduled = start + seq / rate
            delay = scheduled - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.past_end():
                break
            self.lag_ms.append(max(0.0, (time.time() - scheduled) * 1000))
            task = asyncio.create_task(self.post(session, seq))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        self.done_sending = True
        if tasks:
            await asyncio.gather(*tasks)

    def items(self) -> range:
        count = self.spec.get("count")
        return range(int(count) if count is not None else sys.maxsize)

    def past_end(self) -> bool:
        duration = self.spec.get("duration_s")
        return duration is not None and time.time() >= self.spec["start_at"] + float(duration)

    # -- completions (closed mode)

    async def poll_completions(self) -> None:
        completion = self.spec.get("completion")
        if not completion:
            return
        if completion["kind"] == "fake":
            await self._poll_fake(completion["url"])
        else:
            await self._poll_db(completion)

    async def _poll_fake(self, url: str) -> None:
        since = int(self.spec["completion"].get("since", 0))
        async with aiohttp.ClientSession() as session:
            while not (self.done_sending and not self.outstanding):
                async with session.get(f"{url}/bench/received", params={"since": since}) as answer:
                    body = await answer.json()
                since = body["next"]
                for _, _, status, text, _ in body["items"]:
                    match = TAGGED.search(text or "")
                    if (
                        match
                        and match.group(1) == self.tag
                        and status == 200
                        and self.outstanding.pop(int(match.group(2)), None) is not None
                    ):
                        self.completed += 1
                        self.slots.release()
                self._expire()
                await asyncio.sleep(POLL_S)

    async def _poll_db(self, completion: dict[str, Any]) -> None:
        """Completions counted by the database (W4 has no I/O to observe): the oldest
        outstanding items are released as the count grows."""
        counter = await Counter_.open(completion["url"], completion["sql"])
        counted = 0
        try:
            while not (self.done_sending and not self.outstanding):
                count = await counter.count()
                for _ in range(max(0, count - counted)):
                    if not self.outstanding:
                        break
                    self.outstanding.pop(next(iter(self.outstanding)))
                    self.completed += 1
                    self.slots.release()
                counted = max(counted, count)
                self._expire()
                await asyncio.sleep(0.05)
        finally:
            await counter.close()

    def _expire(self) -> None:
        now = time.monotonic()
        for seq, since in list(self.outstanding.items()):
            if now - since > OUTSTANDING_TIMEOUT_S:
                del self.outstanding[seq]
                self.timed_out += 1
                self.slots.release()

    async def run(self) -> dict[str, Any]:
        delay = float(self.spec["start_at"]) - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        limit = int(self.spec.get("connections", self.spec.get("concurrency", 64)))
        connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit)
        timeout = aiohttp.ClientTimeout(total=float(self.spec.get("timeout_s", 60)))
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            poller = asyncio.create_task(self.poll_completions())
            if self.spec["mode"] == "open":
                await self.open(session)
            else:
                await self.closed(session)
            self.done_sending = True
            await poller
        span = (self.last_send or 0) - (self.first_send or 0)
        return {
            "sent": self.sent,
            "statuses": dict(self.statuses),
            "retried": dict(self.retried),
            "retryReasons": self.retry_reasons,
            "errors": self.errors,
            "completed": self.completed,
            "timedOut": self.timed_out,
            "firstSend": self.first_send,
            "lastSend": self.last_send,
            "sendRate": (self.sent - 1) / span if span > 0 else None,
            "postMs": summary(self.post_ms),
            "lagMs": summary(self.lag_ms) if self.lag_ms else None,
            "dueBase": self.due_base,
        }


class Counter_:
    """One read-only connection, kept open for the whole run: a new connection per poll would
    load PostgreSQL with session start-ups during the measurement."""

    def __init__(self, sql: str, sqlite: sqlite3.Connection | None, pg: Any) -> None:
        self._sql, self._sqlite, self._pg = sql, sqlite, pg

    @staticmethod
    async def open(url: str, sql: str) -> Counter_:
        if url.startswith("sqlite:///"):
            path = url[len("sqlite:///") :]
            connection = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, timeout=30, check_same_thread=False
            )
            return Counter_(sql, connection, None)
        import asyncpg  # relayflow's own driver

        return Counter_(sql, None, await asyncpg.connect(url, timeout=10))

    async def count(self) -> int:
        if self._sqlite is not None:
            connection = self._sqlite
            # fetchall: a half-read statement would keep its snapshot and stall WAL checkpoints
            rows = await asyncio.to_thread(lambda: connection.execute(self._sql).fetchall())
            return int(rows[0][0])
        return int(await self._pg.fetchval(self._sql))

    async def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            await self._pg.close()


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    result = run_fast(Generator(spec).run())
    Path(spec["out"]).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
