"""What a step decides; the runner turns each decision into pointer, timer and subscription
changes (Workflow Core's ExecutionResult). Steps never touch the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from relayflow.instance_state import PointerStatus


@dataclass(frozen=True)
class Complete:
    """The step is done; `result` becomes `step.*` for its outputs and conditions."""

    result: dict[str, Any] = field(default_factory=dict)
    log_status: PointerStatus = PointerStatus.COMPLETE  # CANCELLED for a wait that timed out


@dataclass(frozen=True)
class Sleep:
    until_ms: int


@dataclass(frozen=True)
class WaitForEvent:
    key: str
    timeout_at_ms: int


@dataclass(frozen=True)
class StartBranches:
    """Start these steps as children; the step completes when all of them have ended."""

    step_ids: tuple[str, ...]


@dataclass(frozen=True)
class Fault:
    message: str


@dataclass(frozen=True)
class Retry:
    """A transient failure (timeout, 429, 5xx, dropped connection): try again later, durably,
    under the engine's retry policy (engine/retry.py). When the retry window is spent it
    becomes a fault with `message` and the number of attempts, or `final` when the step has a
    result to complete with instead (an HttpRequest's last 5xx answer)."""

    message: str
    retry_after_s: float | None = None  # the server's Retry-After, or the breaker's deferral
    deferred: bool = False  # nothing was attempted (circuit open): not counted as an attempt
    resume_before_s: float | None = None  # the endpoint's circuit is open: come back by then
    not_after_ms: int | None = None  # the step's own deadline (an SMS's `expiry`)
    expired: str | None = None  # the fault's message when `not_after_ms` comes first
    final: dict[str, Any] | None = None  # the result to complete with instead of failing


Decision = Complete | Sleep | WaitForEvent | StartBranches | Fault | Retry
