"""Circuit breakers per remote endpoint (an 8x8 API host and channel, or an HttpRequest host).

Without them, every instance that waits for an endpoint that is down retries on its own
schedule, and when the endpoint comes back the whole backlog hits it at once. A breaker counts
consecutive transient failures of its endpoint; at `failure_threshold` it opens:
- sends to the endpoint are *deferred* (`CircuitOpen`, nothing is sent, no attempt counted) to
  a time the breaker hands out, and one request at a time probes the endpoint, at growing
  intervals (`probe_initial_s` doubling to `probe_max_s`, jittered, never before a Retry-After);
- when a request succeeds the breaker closes and, if it deferred sends, *drains*: admissions
  are paced by a token bucket whose rate starts at `drain_rate` per second and doubles every
  second, until it passes `drain_max_rate`. Deferred sends are handed slots on that same ramp,
  so the backlog comes back spread out instead of all at the probe's time. (A circuit that
  closes before it deferred anything, e.g. on a success already in flight, has no backlog and
  does not throttle.)

State is per process (derived, not shared): with N worker processes at most N probes are in
flight at once and the backlog drains at most N times the rate, which costs no database round
trip on the hot path. Only endpoints that are failing, open or draining are kept.
"""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from relayflow.channels.base import ChannelError
from relayflow.clock import Clock, iso_from_ms

MAX_TRACKED = 10_000  # endpoints remembered at once; healthy ones are forgotten first
PROBE_SETTLE_MS = 200  # a deferred send returns this long after its probe's time


@dataclass(frozen=True)
class BreakerPolicy:
    failure_threshold: int = 5
    probe_initial_s: float = 1.0
    probe_max_s: float = 30.0
    drain_rate: float = 10.0
    drain_max_rate: float = 1000.0


class CircuitOpen(ChannelError):
    """Not sent: the endpoint's circuit is open or its backlog is draining. Retry after
    `retry_after_s`; the attempt does not count."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message, transient=True, retry_after_s=retry_after_s, sent=False)
        self.deferred = True


class Call:
    """One admitted request. A caller that gets an answer it treats as a result, not an error
    (an HttpRequest's 503), marks it with `failed` so the breaker still counts it."""

    def __init__(self, probe: bool) -> None:
        self.probe = probe
        self.made = True
        self.failure: str | None = None
        self.retry_after_s: float | None = None

    def failed(self, message: str, retry_after_s: float | None = None) -> None:
        self.failure, self.retry_after_s = message, retry_after_s

    def not_made(self) -> None:
        """No request was needed after all (an answer recorded before a crash): no outcome."""
        self.made = False


class Breaker:
    """The state of one endpoint. Times are the injected clock's epoch milliseconds."""

    def __init__(self, endpoint: str, policy: BreakerPolicy, rng: random.Random) -> None:
        self.endpoint = endpoint
        self._policy = policy
        self._rng = rng
        self.failures = 0  # consecutive transient failures
        self.open = False
        self.opens = 0  # failed probes since it opened: the probe interval doubles with each
        self.probe_at_ms = 0
        self.probing = False
        self.last_error = ""
        self.drain_started_ms: int | None = None
        self._tokens = 0.0
        self._tokens_at_ms = 0
        self._slots = 0  # deferrals handed a slot since the last probe was scheduled
        self._deferred = 0  # sends deferred since the circuit opened (is there a backlog?)

    @property
    def healthy(self) -> bool:
        return not self.open and self.failures == 0 and self.drain_started_ms is None

    # -- admission ----------------------------------------------------------------------------

    def admit(self, now_ms: int) -> Call:
        if self.open:
            if now_ms >= self.probe_at_ms and not self.probing:
                self.probing = True
                return Call(probe=True)
            return self._defer(now_ms, self.probe_at_ms + PROBE_SETTLE_MS, "open")
        if self.drain_started_ms is not None and not self._take_token(now_ms):
            return self._defer(now_ms, self.drain_started_ms, "draining")
        return Call(probe=False)

    def _rate(self, now_ms: int) -> float:
        assert self.drain_started_ms is not None
        seconds = max(0, now_ms - self.drain_started_ms) / 1000
        return self._policy.drain_rate * 2 ** min(seconds, 60)

    def _take_token(self, now_ms: int) -> bool:
        rate = self._rate(now_ms)
        if rate >= self._policy.drain_max_rate:
            self.drain_started_ms = None  # the ramp is over: back to normal
            return True
        elapsed = max(0, now_ms - self._tokens_at_ms) / 1000
        self._tokens = min(max(1.0, rate), self._tokens + elapsed * rate)
        self._tokens_at_ms = now_ms
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    def _slot_ms(self, index: int) -> int:
        """When the `index`-th deferred send gets a token on the ramp after recovery: the
        ramp has handed out r0 * (2^t - 1) / ln 2 tokens t seconds in."""
        r0 = self._policy.drain_rate
        return int(1000 * math.log2(index * math.log(2) / r0 + 1))

    def slot_after_probe_ms(self, now_ms: int) -> int:
        return self._next_slot_ms(now_ms, self.probe_at_ms + PROBE_SETTLE_MS)

    def _next_slot_ms(self, now_ms: int, base_ms: int) -> int:
        self._slots += 1
        at = max(base_ms + self._slot_ms(self._slots), now_ms + 1)
        return at + int(self._rng.random() * 100)  # separate sends handed the same slot

    def _defer(self, now_ms: int, base_ms: int, why: str) -> Call:
        self._deferred += 1
        at = self._next_slot_ms(now_ms, base_ms)
        if why == "open":
            detail = (
                f"the circuit is open after {self._policy.failure_threshold} consecutive "
                f"failures (last: {self.last_error}); next probe at {iso_from_ms(self.probe_at_ms)}"
            )
        else:
            detail = "its backlog is draining after an outage"
        raise CircuitOpen(
            f"{self.endpoint} is unavailable: {detail}; not sent, deferred to {iso_from_ms(at)}",
            retry_after_s=(at - now_ms) / 1000,
        )

    # -- outcomes -----------------------------------------------------------------------------

    def succeeded(self, call: Call, now_ms: int) -> None:
        if call.probe:
            self.probing = False
        self.failures = 0
        if self.open:
            self.open, self.opens = False, 0
            if self._deferred:  # a backlog waits: let it back in on the ramp
                self.drain_started_ms = self._tokens_at_ms = now_ms
                self._tokens = 0.0
            self._deferred = 0

    def failed(self, call: Call, now_ms: int, message: str, retry_after_s: float | None) -> None:
        self.last_error = message
        self.failures += 1
        if call.probe:
            self.probing = False
            self.opens += 1
            self._schedule_probe(now_ms, retry_after_s)
        elif not self.open and self.failures >= self._policy.failure_threshold:
            self.open, self.opens, self.drain_started_ms = True, 0, None
            self._deferred = 0
            self._schedule_probe(now_ms, retry_after_s)

    def released(self, call: Call) -> None:
        """The request ended without an answer either way (cancelled): free the probe slot."""
        if call.probe:
            self.probing = False

    def _schedule_probe(self, now_ms: int, retry_after_s: float | None) -> None:
        policy = self._policy
        interval = min(policy.probe_initial_s * 2**self.opens, policy.probe_max_s)
        wait_ms = int(interval * 1000 * (0.5 + self._rng.random() / 2))
        if retry_after_s is not None and retry_after_s > 0:
            wait_ms = max(wait_ms, int(retry_after_s * 1000))
        self.probe_at_ms = now_ms + wait_ms
        self._slots = 0


class Breakers:
    """The breakers of a process, by endpoint; shared by the 8x8 connector and HttpRequest."""

    def __init__(
        self, clock: Clock, policy: BreakerPolicy | None = None, rng: random.Random | None = None
    ) -> None:
        self._clock = clock
        self.policy = policy or BreakerPolicy()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not crypto
        self._breakers: dict[str, Breaker] = {}

    def get(self, endpoint: str) -> Breaker | None:
        return self._breakers.get(endpoint)

    @asynccontextmanager
    async def guard(self, endpoint: str) -> AsyncIterator[Call]:
        """Admit one request to `endpoint` (or raise `CircuitOpen`) and record its outcome:
        a transient `ChannelError` or `Call.failed` counts as a failure, anything answered
        as a success, a cancellation as neither. A healthy endpoint has no state at all: one
        is made at its first failure."""
        breaker = self._breakers.get(endpoint)
        call = breaker.admit(self._clock.now_ms()) if breaker is not None else Call(probe=False)
        try:
            yield call
        except ChannelError as error:
            if error.transient and not error.deferred:
                self._failed(endpoint, call, error.message, error.retry_after_s)
                error.resume_before_s = self.resume_before_s(endpoint)
            elif not error.transient:
                self._succeeded(endpoint, call)
            raise
        except BaseException:
            self._released(endpoint, call)
            raise
        if not call.made:
            self._released(endpoint, call)
        elif call.failure is not None:
            self._failed(endpoint, call, call.failure, call.retry_after_s)
        else:
            self._succeeded(endpoint, call)

    def _failed(self, endpoint: str, call: Call, message: str, retry_after_s: float | None) -> None:
        breaker = self._breakers.get(endpoint) or self._track(endpoint)
        breaker.failed(call, self._clock.now_ms(), message, retry_after_s)

    def _released(self, endpoint: str, call: Call) -> None:
        breaker = self._breakers.get(endpoint)
        if breaker is not None:
            breaker.released(call)

    def resume_before_s(self, endpoint: str) -> float | None:
        """For a failure that left `endpoint`'s circuit open: a slot among the deferred sends,
        so that the failed step comes back with the backlog when the endpoint recovers instead
        of after its own (possibly minutes-long) backoff. None while the circuit is closed."""
        breaker = self._breakers.get(endpoint)
        if breaker is None or not breaker.open:
            return None
        now = self._clock.now_ms()
        return (breaker.slot_after_probe_ms(now) - now) / 1000

    def _succeeded(self, endpoint: str, call: Call) -> None:
        breaker = self._breakers.get(endpoint)
        if breaker is None:
            return
        breaker.succeeded(call, self._clock.now_ms())
        if breaker.healthy and not breaker.probing:
            del self._breakers[endpoint]

    def _track(self, endpoint: str) -> Breaker:
        if len(self._breakers) >= MAX_TRACKED:
            for name in [name for name, b in self._breakers.items() if not b.open]:
                del self._breakers[name]
            if len(self._breakers) >= MAX_TRACKED:  # all open: forget the oldest
                del self._breakers[next(iter(self._breakers))]
        breaker = Breaker(endpoint, self.policy, self._rng)
        self._breakers[endpoint] = breaker
        return breaker
