"""What a step decides; the runner turns each decision into pointer, timer and subscription
changes (Workflow Core's ExecutionResult). Steps never touch the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Complete:
    """The step is done; `result` becomes `step.*` for its outputs and conditions."""

    result: dict[str, Any] = field(default_factory=dict)
    log_status: str = "Complete"  # "Cancelled" for a wait that timed out


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
    """A transient failure (timeout, 429, 5xx, dropped connection): try again later, durably.
    After the engine's attempt limit it becomes a fault with `message`."""

    message: str
    retry_after_s: float | None = None  # the server's Retry-After, when it sent one


Decision = Complete | Sleep | WaitForEvent | StartBranches | Fault | Retry
