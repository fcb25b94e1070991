"""The sprint: advance one leased instance until every path is blocked (sleeping, waiting for
an event, or ended), applying each step's decision (DESIGN.md §5 execution semantics).

Pure steps run in memory; before a step with a side effect the state so far is checkpointed
(the attempt is recorded before the call), and the sprint's end is written in one transaction.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from relayflow.audit import AuditEvent
from relayflow.channels.base import ChannelSet
from relayflow.clock import Clock, iso_from_ms
from relayflow.engine.decisions import (
    Complete,
    Decision,
    Fault,
    Retry,
    Sleep,
    StartBranches,
    WaitForEvent,
)
from relayflow.engine.plan import Plan, StepNode
from relayflow.engine.retry import RetryPolicy
from relayflow.engine.steps import STEP_TYPES
from relayflow.engine.steps.base import Resume, StepContext, StepError
from relayflow.expressions.evaluate import SKIP
from relayflow.instance_state import InstanceState, InstanceStatus, PointerState, PointerStatus
from relayflow.telemetry import metrics, tracing


@dataclass(frozen=True)
class EngineLimits:
    max_executions_per_instance: int = 1000
    max_data_bytes: int = 256 * 1024


@dataclass
class Evaluated:
    """Result of evaluating a group of expressions: values, or the first error."""

    values: list[Any]
    warnings: list[str]
    error: str | None = None


class Expressions(Protocol):
    """`now_ms`: the step's clock reading, what `Date.now()` returns in its expressions."""

    async def inputs(
        self,
        inputs: dict[str, Any],
        conditions: frozenset[str],
        data: dict[str, Any],
        *,
        now_ms: int | None = None,
    ) -> Evaluated: ...

    async def outputs(
        self,
        outputs: dict[str, Any],
        data: dict[str, Any],
        step: dict[str, Any],
        *,
        now_ms: int | None = None,
    ) -> Evaluated: ...

    async def conditions(
        self,
        conditions: list[Any],
        data: dict[str, Any],
        step: dict[str, Any],
        *,
        now_ms: int | None = None,
    ) -> Evaluated: ...


def successor_id(predecessor_id: str, step_id: str, index: int) -> str:
    """A step execution's id, derived from the one that started it.

    If a sprint's final write fails after a send (database restart, lost lease), the rerun
    creates the same successors with the same ids, so providers recognise sends already made
    for them (one per step execution) and `clientMessageId`s stay the same.
    """
    # Exactly `str(uuid.uuid5(uuid.UUID(predecessor_id), name))`, without building UUID
    # objects (a few µs per step execution; tests/test_engine_recovery.py checks the equality).
    try:
        namespace = bytes.fromhex(predecessor_id.replace("-", ""))
    except ValueError:
        namespace = b""
    if len(namespace) != 16:
        raise ValueError(f"not a UUID: {predecessor_id!r}")
    name = namespace + f"{index}:{step_id}".encode()
    digest = bytearray(hashlib.sha1(name, usedforsecurity=False).digest()[:16])  # RFC 4122 §4.3
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


Checkpoint = Callable[[InstanceState], Awaitable[None]]

# A step execution's `status` label: what the step decided.
DECIDED: dict[type[Decision], str] = {
    Complete: "completed",
    Sleep: "sleeping",
    WaitForEvent: "waiting",
    StartBranches: "branched",
    Fault: "failed",
    Retry: "retrying",
}


def _retry_over(pointer: PointerState) -> None:
    """The step ended: its retry log keeps the attempts and last error, not what was pending."""
    retry = pointer.state.get("retry")
    if retry is not None:
        retry.pop("nextAttemptAt", None)
        retry.pop("final", None)


class Runner:
    def __init__(
        self,
        expressions: Expressions,
        channels: ChannelSet,
        clock: Clock,
        limits: EngineLimits | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._expressions = expressions
        self._channels = channels
        self._clock = clock
        self._limits = limits or EngineLimits()
        self._retry = retry or RetryPolicy()

    async def advance(
        self,
        state: InstanceState,
        plan: Plan,
        checkpoint: Checkpoint,
        pause: Callable[[], bool] = lambda: False,
    ) -> None:
        """Run every due pointer, repeatedly, until nothing more is due now, or until `pause()`
        says to stop between two steps (a worker shutting down): what is left stays due, and
        the caller's save hands it to the next sprint."""
        while state.status == InstanceStatus.RUNNABLE:
            now = self._clock.now_ms()
            due = [(p, r) for p in state.active_pointers() if (r := self._resume_of(state, p, now))]
            if not due:
                break
            for pointer, resume in due:
                if state.status != InstanceStatus.RUNNABLE or pause():
                    return
                await self._run_pointer(state, plan, pointer, resume, checkpoint)
        if state.status == InstanceStatus.RUNNABLE and not state.active_pointers():
            state.status = InstanceStatus.COMPLETE
            state.completed_at_ms = self._clock.now_ms()
            state.record(AuditEvent.INSTANCE_COMPLETED, None, state.completed_at_ms)

    def _resume_of(self, state: InstanceState, pointer: PointerState, now: int) -> Resume | None:
        if pointer.status == PointerStatus.PENDING:
            return Resume.START
        if pointer.status == PointerStatus.SLEEPING and (pointer.wake_at_ms or 0) <= now:
            return Resume.TIMER
        if pointer.status == PointerStatus.WAITING_FOR_EVENT:
            if pointer.has_event:
                return Resume.EVENT
            # Only a wait that stopped listening when loaded may time out (`loaded_at_ms`):
            # one still subscribed could get a reply the timeout would then throw away.
            listened_until = now if state.loaded_at_ms is None else min(now, state.loaded_at_ms)
            if (pointer.wake_at_ms or 0) <= listened_until:
                return Resume.TIMEOUT
            return None
        if pointer.status == PointerStatus.RUNNING:
            if pointer.state.get("container"):
                return None if state.children_active(pointer.id) else Resume.CHILDREN_DONE
            # A retry waiting for its backoff, or a call interrupted by a crash (its
            # checkpoint made it due at once): run again with the same inputs.
            return Resume.START if (pointer.wake_at_ms or 0) <= now else None
        return None

    async def _run_pointer(
        self,
        state: InstanceState,
        plan: Plan,
        pointer: PointerState,
        resume: Resume,
        checkpoint: Checkpoint,
    ) -> None:
        node = plan.step(pointer.step_id)
        step = STEP_TYPES[node.type]
        now = self._clock.now_ms()
        pointer.dirty = True
        if resume is Resume.TIMER or resume is Resume.TIMEOUT:
            metrics.timer_lateness.observe(max(now - (pointer.wake_at_ms or now), 0) / 1000)
        if resume is Resume.START and "inputs" not in pointer.state:
            state.executions += 1
            if state.executions > self._limits.max_executions_per_instance:
                self._fault(
                    state,
                    node.type,
                    pointer,
                    f"Step execution limit of {self._limits.max_executions_per_instance} "
                    "reached (a loop?).",
                )
                return
            pointer.status = PointerStatus.RUNNING
            pointer.started_at_ms = now
            state.record(AuditEvent.STEP_STARTED, node.id, now, {"worker": state.worker})
            evaluated = await self._expressions.inputs(
                node.inputs, step.condition_inputs, state.data, now_ms=now
            )
            if evaluated.error:
                self._fault(state, node.type, pointer, evaluated.error)
                return
            pointer.state["inputs"] = dict(zip(node.inputs, evaluated.values, strict=True))
        inputs: dict[str, Any] = pointer.state.get("inputs", {})
        if resume is Resume.START and step.side_effect:
            pointer.attempt += 1
            if step.checkpoint_before_run:
                pointer.wake_at_ms = now  # if this worker dies mid-call, the step is due again
                await checkpoint(state)
        context = StepContext(
            node=node,
            inputs=inputs,
            resume=resume,
            event=pointer.event,
            now_ms=now,
            account_id=state.account_id,
            instance_id=state.id,
            pointer_id=pointer.id,
            attempt=pointer.attempt,
            channels=self._channels,
            last_error=pointer.state.get("retry", {}).get("lastError"),
        )
        began = time.perf_counter()
        try:
            with tracing.span(f"step {node.type}", {"relayflow.step_id": node.id}):
                decision: Decision = await step.run(context)
        except StepError as error:
            decision = Fault(str(error))
        metrics.step_duration.labels(node.type).observe(time.perf_counter() - began)
        if not isinstance(decision, Fault):  # a fault is counted where every fault goes
            metrics.step_executions.labels(node.type, DECIDED[type(decision)]).inc()
        await self._apply(state, plan, node, pointer, inputs, decision)

    async def _apply(
        self,
        state: InstanceState,
        plan: Plan,
        node: StepNode,
        pointer: PointerState,
        inputs: dict[str, Any],
        decision: Decision,
    ) -> None:
        now = self._clock.now_ms()
        pointer.dirty = True  # a checkpoint may have cleaned it since the step started
        match decision:
            case Complete(result=result, log_status=log_status):
                if result:  # kept for the step log (console, debugging), not for the engine
                    pointer.state["result"] = result
                await self._complete(state, plan, node, pointer, {**inputs, **result}, log_status)
            case Sleep(until_ms=until):
                pointer.status, pointer.wake_at_ms = PointerStatus.SLEEPING, until
                state.record(AuditEvent.WAIT_STARTED, node.id, now, {"until": until})
            case WaitForEvent(key=key, timeout_at_ms=timeout):
                pointer.status, pointer.wake_at_ms, pointer.event_key = (
                    PointerStatus.WAITING_FOR_EVENT,
                    timeout,
                    key,
                )
                state.subscribe.append((pointer.id, key))
                state.record(
                    AuditEvent.EVENT_WAIT_STARTED, node.id, now, {"key": key, "timeout": timeout}
                )
            case StartBranches(step_ids=step_ids):
                pointer.status, pointer.wake_at_ms = PointerStatus.RUNNING, None
                pointer.state["container"] = True
                for index, step_id in enumerate(step_ids):
                    state.add_pointer(
                        successor_id(pointer.id, f"do:{step_id}", index), step_id, pointer.id
                    )
                state.record(AuditEvent.BRANCHES_STARTED, node.id, now, {"steps": list(step_ids)})
            case Fault(message=message):
                self._fault(state, node.type, pointer, message)
            case Retry() as retry:
                if not retry.deferred:
                    metrics.send_retries.labels(metrics.STEP_CHANNELS.get(node.type, "other")).inc()
                await self._schedule_retry(state, plan, node, pointer, inputs, retry)

    async def _schedule_retry(
        self,
        state: InstanceState,
        plan: Plan,
        node: StepNode,
        pointer: PointerState,
        inputs: dict[str, Any],
        retry: Retry,
    ) -> None:
        """Try the step again under the retry policy, or end it once the window is spent."""
        now = self._clock.now_ms()
        info: dict[str, Any] = pointer.state.setdefault("retry", {})
        first = pointer.started_at_ms if pointer.started_at_ms is not None else now
        if retry.deferred:
            pointer.attempt -= 1  # nothing was sent: the attempt does not count
            next_at = self._retry.deferred_until_ms(
                now_ms=now, first_attempt_ms=first, wait_s=retry.retry_after_s or 1.0
            )
        else:
            info["lastError"] = retry.message
            # The answer to complete with if no attempt is left (kept: a deferral has none).
            if retry.final is not None:
                info["final"] = retry.final
            else:
                info.pop("final", None)
            next_at = self._retry.next_attempt_ms(
                now_ms=now,
                first_attempt_ms=first,
                attempt=pointer.attempt,
                seed=pointer.id,
                retry_after_s=retry.retry_after_s,
            )
            if next_at is not None and retry.resume_before_s is not None:
                # The endpoint's circuit is open: come back with the backlog, to be probed or
                # deferred, instead of after a backoff that may outlast the outage.
                next_at = max(min(next_at, now + int(retry.resume_before_s * 1000)), now + 1)
        last_error = info.get("lastError") or retry.message
        attempts = f"(after {pointer.attempt} attempts)"
        if next_at is not None and retry.not_after_ms is not None and next_at >= retry.not_after_ms:
            self._fault(
                state, node.type, pointer, f"{retry.expired}; last error: {last_error} {attempts}"
            )
            return
        if next_at is None:
            final = info.get("final")
            if final is not None:
                pointer.state["result"] = final
                await self._complete(
                    state, plan, node, pointer, {**inputs, **final}, PointerStatus.COMPLETE
                )
            else:
                self._fault(state, node.type, pointer, f"{last_error} {attempts}")
            return
        info["nextAttemptAt"] = next_at
        pointer.status, pointer.wake_at_ms = PointerStatus.RUNNING, next_at
        state.record(
            AuditEvent.STEP_RETRY_SCHEDULED,
            node.id,
            now,
            {
                "attempt": pointer.attempt,
                "message": retry.message,
                "deferred": retry.deferred,
                "circuitOpen": retry.deferred or retry.resume_before_s is not None,
                "delayMs": next_at - now,
                "nextAttemptAt": iso_from_ms(next_at),
            },
        )

    async def _complete(
        self,
        state: InstanceState,
        plan: Plan,
        node: StepNode,
        pointer: PointerState,
        step_scope: dict[str, Any],
        log_status: PointerStatus,
    ) -> None:
        now = self._clock.now_ms()
        if node.outputs:
            written = await self._expressions.outputs(
                node.outputs, state.data, step_scope, now_ms=now
            )
            if written.error:
                self._fault(state, node.type, pointer, written.error)
                return
            for key, value in zip(node.outputs, written.values, strict=True):
                if value is not SKIP:
                    state.data[key] = value
            for warning in written.warnings:
                state.record(AuditEvent.WARNING, node.id, now, {"message": warning})
            if len(orjson.dumps(state.data)) > self._limits.max_data_bytes:
                self._fault(
                    state,
                    node.type,
                    pointer,
                    f"Workflow data is larger than {self._limits.max_data_bytes} bytes.",
                )
                return
        targets = [node.next_step_id] if node.next_step_id else []
        if node.select_next:
            conditions = [condition for _, condition in node.select_next]
            decided = await self._expressions.conditions(
                conditions, state.data, step_scope, now_ms=now
            )
            if decided.error:
                self._fault(state, node.type, pointer, decided.error)
                return
            for warning in decided.warnings:
                state.record(AuditEvent.WARNING, node.id, now, {"message": warning})
            chosen = [
                target
                for (target, cond), value in zip(node.select_next, decided.values, strict=True)
                if cond is not None and value
            ]
            if not chosen:  # null conditions are the default: only when nothing else matched
                chosen = [target for target, cond in node.select_next if cond is None]
            targets += chosen
        cancelled = log_status == PointerStatus.CANCELLED
        pointer.status = PointerStatus.CANCELLED if cancelled else PointerStatus.COMPLETE
        pointer.completed_at_ms = now
        pointer.wake_at_ms = None
        pointer.state.pop("container", None)
        _retry_over(pointer)
        state.record(
            AuditEvent.STEP_COMPLETED, node.id, now, {"status": pointer.status, "next": targets}
        )
        for index, target in enumerate(targets):
            state.add_pointer(successor_id(pointer.id, target, index), target, pointer.parent_id)

    def _fault(
        self, state: InstanceState, step_type: str, pointer: PointerState, message: str
    ) -> None:
        """A fault fails the step and terminates the instance, cancelling everything else."""
        now = self._clock.now_ms()
        metrics.step_executions.labels(step_type, "failed").inc()
        pointer.status, pointer.completed_at_ms, pointer.dirty = PointerStatus.FAILED, now, True
        pointer.wake_at_ms = None
        _retry_over(pointer)
        state.errors.append((pointer.step_id, message, now))
        state.record(AuditEvent.STEP_FAILED, pointer.step_id, now, {"message": message})
        for other in state.active_pointers():
            other.status, other.completed_at_ms, other.dirty = PointerStatus.CANCELLED, now, True
            other.wake_at_ms = None
            if other.event_key:
                state.unsubscribe.add(other.id)
        state.status = InstanceStatus.TERMINATED
        state.record(AuditEvent.INSTANCE_TERMINATED, pointer.step_id, now, {"reason": message})
