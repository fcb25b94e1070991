"""Evaluate a step's `{{ }}` templates: the API the engine calls (DESIGN.md §5 "Scope").

A batch is every expression one step needs at one moment (its inputs, or its outputs and
successor conditions). Expressions run in the thread's frozen QuickJS realm on fresh copies of
`data` and `step` (expressions/jail.py), so nothing one expression does can be seen by
another, not even within a step; a batch without expressions never touches QuickJS.

From asyncio, a batch is first tried on the event loop itself with a short time budget (a warm
realm evaluates a typical expression in ~10 µs, far less than a thread-pool hop costs); a
batch that needs more than the budget, or hits any limit, is thrown away and evaluated again
on the expression thread pool with the full limits. Re-running is safe because expressions
have no side effects (the whitelist), and the loop is blocked for little more than the budget.

`Date.now()` and `new Date()` give the batch's `now_ms` (the engine passes its clock's time,
virtual in flow tests); without one, the host's time when the batch starts.

Three kinds of job, because 8x8 treats them differently:
- "input": any JSON; strings are templates, objects/arrays are evaluated recursively. Every
  expression error is an error (the engine faults the step).
- "output": any JSON, evaluated like an input (objects/arrays recursively). One without `{{ }}`
  anywhere inside is a declaration and is not written (value `SKIP`). A tolerant read (an error
  that is only a property read of null/undefined) makes that string's value None, plus a
  warning; the rest of the output is still written.
- "condition": None is the default branch (value None); booleans and "true"/"false" are
  constants; an expression counts by JavaScript truthiness; a tolerant read is False + warning.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import math
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple

from relayflow.config import Limits
from relayflow.expressions.jail import (
    TIME_LIMIT_SECONDS,
    Jail,
    JailError,
    Mode,
    ResourceLimitError,
    ScriptError,
    realm_ready,
    to_json,
    wall_clock_ms,
    warm_realm,
)
from relayflow.expressions.template import (
    Expression,
    Part,
    TemplateSyntaxError,
    contains_expression,
    has_expression,
    is_single_expression,
    parse_template,
)
from relayflow.expressions.whitelist import forbidden_construct

# The default for callers without settings (tests, tools); `Runtime` passes the configured
# `Limits.max_expression_length` to `ExpressionEvaluator`.
MAX_EXPRESSION_LENGTH: int = Limits.model_fields["max_expression_length"].default
MAX_INPUT_DEPTH = 64
_SHOWN_CHARACTERS = 120
# Time a batch may spend on the event loop before it is moved to the thread pool.
INLINE_BUDGET_SECONDS = 0.002
# Making a realm blocks the loop for ~5 ms; after a memory or stack bomb destroyed the loop's
# realm, batches go to the pool until this long has passed, so hostile expressions cannot make
# the loop rebuild its realm over and over.
INLINE_REALM_EVERY_SECONDS = 1.0
_TOLERANT_READ = re.compile(r"^TypeError: cannot read property .* of (null|undefined)$")

Kind = Literal["input", "output", "condition"]


class Job(NamedTuple):
    """One value to evaluate; a plain `(value, kind)` tuple works too."""

    value: Any
    kind: Kind


@dataclass(frozen=True)
class Outcome:
    """The result of one job. `value` is JSON-compatible Python.

    `error` set: the job failed (value None). Value `SKIP`: an output without `{{ }}` anywhere
    inside, which must not be written. For a condition, value None means "the default branch"
    (a null condition).
    """

    value: Any
    error: str | None = None
    warning: str | None = None


class _Skip:
    def __repr__(self) -> str:
        return "SKIP"


# The one "skip this output" marker: an output without {{ }} anywhere inside is a declaration,
# not written (DESIGN.md §5). Both the evaluator and the fast path (expressions/fastpath.py)
# give it as the output's value, and the runner leaves such an output out of `data`.
SKIP: Final = _Skip()
SKIPPED = Outcome(SKIP)


def _shown(source: str) -> str:
    text = source if len(source) <= _SHOWN_CHARACTERS else source[:_SHOWN_CHARACTERS] + "…"
    return "{{" + text + "}}"


class _Failure(Exception):
    """A job failed. `tolerant`: only because an expression read a property of null/undefined."""

    def __init__(
        self, message: str, *, source: str = "", reason: str = "", tolerant: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.reason = reason
        self.tolerant = tolerant

    @classmethod
    def expression(cls, source: str, reason: str, *, tolerant: bool = False) -> _Failure:
        message = f"Failed to evaluate the expression '{_shown(source)}': {reason}"
        return cls(message, source=source, reason=reason, tolerant=tolerant)

    def warning(self, consequence: str) -> str:
        """The step-log warning for a tolerated read."""
        return (
            f"The expression '{_shown(self.source)}' read a property of null or undefined "
            f"({self.reason}); {consequence}."
        )


class _NeedsThread(Exception):
    """An inline batch went over its budget or hit a limit: evaluate it on the thread pool."""


class _Session:
    """One batch: the lazily created jail and the expression checks.

    `inline_budget` set: the batch runs on the event loop; an expression that hits a limit,
    or a batch that takes longer than the budget, raises `_NeedsThread`.
    """

    def __init__(
        self,
        data_json: str,
        step_json: str,
        max_length: int,
        now_ms: int,
        inline_budget: float | None = None,
    ) -> None:
        self._data_json = data_json
        self._now_ms = now_ms
        self._step_json = step_json
        self._max_length = max_length
        self._inline_budget = inline_budget
        self._started = time.perf_counter()
        self._jail: Jail | None = None

    def run(self, source: str, mode: Mode) -> Any:
        if len(source) > self._max_length:
            reason = f"it is {len(source)} characters long; the limit is {self._max_length}"
            raise _Failure.expression(source, reason)
        problem = forbidden_construct(source)
        if problem is not None:
            raise _Failure.expression(source, problem)
        if self._jail is None:
            time_limit = self._inline_budget or TIME_LIMIT_SECONDS
            self._jail = Jail(
                self._data_json,
                self._step_json,
                serialized=True,
                time_limit=time_limit,
                now_ms=self._now_ms,
            )
        try:
            value = self._jail.run(source, mode)
        except ResourceLimitError as error:
            if self._inline_budget is not None:
                raise _NeedsThread from None
            raise _Failure.expression(source, error.message) from None
        except JailError as error:
            tolerant = isinstance(error, ScriptError) and bool(_TOLERANT_READ.match(error.message))
            raise _Failure.expression(source, error.message, tolerant=tolerant) from None
        if (
            self._inline_budget is not None
            and time.perf_counter() - self._started > self._inline_budget
        ):
            raise _NeedsThread
        return value

    def close(self) -> None:
        if self._jail is not None:
            self._jail.close()
            self._jail = None


def _parts(text: str) -> list[Part]:
    try:
        return parse_template(text)
    except TemplateSyntaxError as error:
        raise _Failure(f"Invalid template '{text[:_SHOWN_CHARACTERS]}': {error}") from None


def _single(parts: list[Part]) -> str | None:
    """The source when the string is exactly one `{{expr}}`."""
    first = parts[0] if is_single_expression(parts) else None
    return first.source if isinstance(first, Expression) else None


def _template(session: _Session, text: str) -> Any:
    """A single `{{expr}}` keeps its JavaScript type; text around expressions makes a string."""
    parts = _parts(text)
    single = _single(parts)
    if single is not None:
        return session.run(single, "value")
    return "".join(
        session.run(part.source, "text") if isinstance(part, Expression) else part.text
        for part in parts
    )


def _nested(value: Any, leaf: Callable[[str], Any], what: str, depth: int = 0) -> Any:
    """`value` with every string holding `{{ }}` replaced by `leaf(string)`, at any depth."""
    if depth > MAX_INPUT_DEPTH:
        raise _Failure(f"The {what} is nested deeper than {MAX_INPUT_DEPTH} levels.")
    if isinstance(value, str):
        return leaf(value) if has_expression(value) else value
    if isinstance(value, dict):
        return {key: _nested(item, leaf, what, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [_nested(item, leaf, what, depth + 1) for item in value]
    return value


def _input(session: _Session, value: Any) -> Any:
    return _nested(value, functools.partial(_template, session), "input")


def _output(session: _Session, value: Any) -> Outcome:
    """Evaluated like an input, except that a declaration is skipped and reads are tolerant."""
    if not contains_expression(value):
        return SKIPPED  # 8x8's builder exports literals to declare trigger parameters
    warnings: list[str] = []

    def tolerant(text: str) -> Any:
        try:
            return _template(session, text)
        except _Failure as failure:
            if not failure.tolerant:
                raise
            nested = not isinstance(value, str)
            warnings.append(
                failure.warning(
                    "its value in the output is null" if nested else "the output is null"
                )
            )
            return None

    result = _nested(value, tolerant, "output")
    return Outcome(result, warning=" ".join(warnings) or None)


def _truthy_text(text: str) -> bool:
    constant = text.strip().lower()
    return constant == "true" if constant in ("true", "false") else bool(text)


def _condition(session: _Session, value: Any) -> Outcome:
    if value is None or isinstance(value, bool):
        return Outcome(value)
    if isinstance(value, int | float):
        return Outcome(bool(value) and not math.isnan(value))
    if not isinstance(value, str):
        raise _Failure("A condition must be a {{ expression }}, true, false or null.")
    text = value.strip()
    if not has_expression(text):
        if text.lower() in ("true", "false"):
            return Outcome(text.lower() == "true")
        raise _Failure(
            f"The condition '{text[:_SHOWN_CHARACTERS]}' must be a {{{{ expression }}}}, "
            "true, false or null."
        )
    single = _single(_parts(text))
    try:
        if single is not None:
            return Outcome(session.run(single, "truthy"))
        return Outcome(_truthy_text(_template(session, text)))
    except _Failure as failure:
        if failure.tolerant:
            return Outcome(False, warning=failure.warning("the condition is false"))
        raise


def _evaluate(session: _Session, job: tuple[Any, str]) -> Outcome:
    value, kind = job
    try:
        if kind == "input":
            return Outcome(_input(session, value))
        if kind == "output":
            return _output(session, value)
        if kind == "condition":
            return _condition(session, value)
    except _Failure as failure:
        return Outcome(None, error=failure.message)
    raise ValueError(f"unknown job kind {kind!r}; expected 'input', 'output' or 'condition'")


def evaluate_serialized(
    jobs: Sequence[tuple[Any, str]],
    data_json: str,
    step_json: str,
    *,
    max_expression_length: int = MAX_EXPRESSION_LENGTH,
    now_ms: int | None = None,
) -> list[Outcome]:
    """`evaluate_batch` with `data` and `step` already JSON text (snapshotted by the caller)."""
    now = wall_clock_ms() if now_ms is None else now_ms
    session = _Session(data_json, step_json, max_expression_length, now)
    try:
        return [_evaluate(session, job) for job in jobs]
    finally:
        session.close()


def _evaluate_inline(
    jobs: Sequence[tuple[Any, str]],
    data_json: str,
    step_json: str,
    max_expression_length: int,
    now_ms: int,
) -> list[Outcome] | None:
    """The batch's outcomes, or None when it must go to the thread pool."""
    session = _Session(data_json, step_json, max_expression_length, now_ms, INLINE_BUDGET_SECONDS)
    try:
        return [_evaluate(session, job) for job in jobs]
    except _NeedsThread:
        return None
    finally:
        session.close()


def evaluate_batch(
    jobs: Sequence[tuple[Any, str]],
    data: Any,
    step: Any = None,
    *,
    max_expression_length: int = MAX_EXPRESSION_LENGTH,
    now_ms: int | None = None,
) -> list[Outcome]:
    """Evaluate every job of one step; one Outcome per job, in order.

    Synchronous and CPU-bound (QuickJS releases the GIL): call it from a worker thread, or use
    `ExpressionEvaluator` from asyncio. `data`/`step` must be JSON-compatible. `now_ms`: the
    time `Date` reads (UTC epoch ms); None: the host's.
    """
    return evaluate_serialized(
        jobs,
        to_json(data),
        to_json(step),
        max_expression_length=max_expression_length,
        now_ms=now_ms,
    )


class ExpressionEvaluator:
    """Asyncio facade: a batch runs inline within a small time budget, else on a thread pool.

    A dedicated pool keeps a burst of slow expressions (up to 500 ms each) from starving the
    default executor that other libraries use. `inline=False` sends every batch to the pool.
    """

    def __init__(
        self,
        max_workers: int = 2,
        *,
        max_expression_length: int = MAX_EXPRESSION_LENGTH,
        inline: bool = True,
    ) -> None:
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="relayflow-js")
        self._max_expression_length = max_expression_length
        self._inline = inline
        self.inline_batches = 0
        self.pool_batches = 0
        self._inline_realm_lost_at = -math.inf

    async def evaluate(
        self,
        jobs: Sequence[tuple[Any, str]],
        data: Any,
        step: Any = None,
        *,
        now_ms: int | None = None,
    ) -> list[Outcome]:
        """Evaluate one batch.

        `data` and `step` are serialised here, on the loop thread, so the engine may change its
        dicts as soon as this returns control without racing the worker thread. `now_ms` is
        what `Date.now()` returns (the engine's clock); None: the host's time, read here so an
        inline try and its re-run on the pool agree.
        """
        jobs = list(jobs)
        data_json, step_json = to_json(data), to_json(step)
        now = wall_clock_ms() if now_ms is None else now_ms
        if self._inline and self._inline_realm():
            outcomes = _evaluate_inline(
                jobs, data_json, step_json, self._max_expression_length, now
            )
            if outcomes is not None:
                self.inline_batches += 1
                return outcomes
            if not realm_ready(INLINE_BUDGET_SECONDS):  # out of memory or stack: destroyed
                self._inline_realm_lost_at = time.monotonic()
        self.pool_batches += 1
        call = functools.partial(
            evaluate_serialized,
            jobs,
            data_json,
            step_json,
            max_expression_length=self._max_expression_length,
            now_ms=now,
        )
        # The pool thread runs in this task's context: host helpers such as uuid() follow it
        # (seeded ids in flow tests).
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._executor, context.run, call)

    def _inline_realm(self) -> bool:
        """Whether the loop thread has a realm, making one unless a batch just destroyed it."""
        if realm_ready(INLINE_BUDGET_SECONDS):
            return True
        if time.monotonic() - self._inline_realm_lost_at < INLINE_REALM_EVERY_SECONDS:
            return False
        warm_realm(INLINE_BUDGET_SECONDS)  # outside any batch's budget
        return True

    def close(self) -> None:
        """Wait for running batches, then stop the threads."""
        self._executor.shutdown(wait=True, cancel_futures=True)
