"""The retry policy for transient failures (DESIGN.md §5 "Retries", issue 9).

A transient failure (connection error, timeout, 429, 5xx) is retried durably: the pointer stays
`Running` with its next attempt as its due time, so a retry survives restarts like any timer.
Attempts back off exponentially from `initial_interval_s`, doubling up to `max_interval_s`, with
"equal jitter" (each delay is drawn from [½, 1] × the interval, seeded by the step execution and
attempt so a re-run schedules the same time), and go on until `window_s` has passed since the
step's first attempt; the last attempt is made at the window's end. A server's `Retry-After` is
honoured (never retried sooner), but never beyond the window.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    initial_interval_s: float = 1.0
    max_interval_s: float = 300.0
    window_s: float = 3600.0

    def interval_ms(self, attempt: int) -> int:
        """The un-jittered wait after failed attempt number `attempt` (1-based)."""
        exponent = min(max(attempt - 1, 0), 62)  # 2**62 s is beyond any cap
        return int(min(self.initial_interval_s * 2**exponent, self.max_interval_s) * 1000)

    def backoff_ms(self, attempt: int, seed: str) -> int:
        """Equal jitter: half the interval, plus a seeded random part of the other half."""
        interval = self.interval_ms(attempt)
        fraction = random.Random(f"{seed}:{attempt}").random()  # noqa: S311 - not crypto
        return interval // 2 + int(fraction * (interval - interval // 2))

    def deadline_ms(self, first_attempt_ms: int) -> int:
        return first_attempt_ms + int(self.window_s * 1000)

    def next_attempt_ms(
        self,
        *,
        now_ms: int,
        first_attempt_ms: int,
        attempt: int,
        seed: str,
        retry_after_s: float | None = None,
    ) -> int | None:
        """When to try again after failed attempt `attempt`, or None once the window is spent.

        `retry_after_s` (the server's, or a circuit breaker's) pushes the attempt later, never
        earlier than the backoff and never past the window's end.
        """
        deadline = self.deadline_ms(first_attempt_ms)
        if now_ms >= deadline:
            return None
        delay = self.backoff_ms(attempt, seed)
        if retry_after_s is not None and retry_after_s > 0:
            delay = max(delay, int(retry_after_s * 1000))
        return min(now_ms + delay, deadline)

    def deferred_until_ms(self, *, now_ms: int, first_attempt_ms: int, wait_s: float) -> int | None:
        """A step that was not attempted (its endpoint's circuit is open) comes back when the
        breaker says, within the window; None once the window is spent."""
        deadline = self.deadline_ms(first_attempt_ms)
        if now_ms >= deadline:
            return None
        return min(now_ms + max(int(wait_s * 1000), 1), deadline)
