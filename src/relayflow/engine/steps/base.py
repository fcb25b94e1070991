"""The step interface: each step type is one class that turns evaluated inputs into a decision."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from relayflow.engine.decisions import Decision
from relayflow.engine.plan import StepNode

if TYPE_CHECKING:
    from relayflow.channels.base import ChannelSet


class Resume(StrEnum):
    """Why the step runs now (typed resumes: a timeout is just another kind)."""

    START = "start"
    TIMER = "timer"
    EVENT = "event"
    TIMEOUT = "timeout"
    CHILDREN_DONE = "children_done"


@dataclass
class StepContext:
    node: StepNode
    inputs: dict[str, Any]
    resume: Resume
    event: Any
    now_ms: int
    account_id: str
    instance_id: str
    pointer_id: str
    attempt: int
    channels: ChannelSet
    last_error: str | None = None  # of the previous attempt, when this one is a retry


class StepError(Exception):
    """An input the step cannot use; the step faults with this message."""


class StepType(ABC):
    name: ClassVar[str]
    # The step talks to the world: its attempts are counted and transient failures retried.
    side_effect: ClassVar[bool] = False
    # Write the instance (inputs, attempt) before calling out. Messaging steps need not: their
    # provider records each send, keyed by the step execution, before the call.
    checkpoint_before_run: ClassVar[bool] = False
    # Inputs evaluated as conditions (JavaScript truthiness) instead of values.
    condition_inputs: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    async def run(self, ctx: StepContext) -> Decision: ...


def text_input(ctx: StepContext, name: str, *, required: bool = True) -> str | None:
    """An evaluated input that must be text (numbers are accepted and converted)."""
    value = ctx.inputs.get(name)
    if value is None or value == "":
        if required:
            raise StepError(f"Input '{name}' is empty.")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise StepError(f"Input '{name}' must be text, not {type(value).__name__}.")
    return str(value)
