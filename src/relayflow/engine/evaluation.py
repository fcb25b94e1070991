"""The runner's view of expressions: inputs, outputs and conditions of one step.

Literals, constant conditions and plain property paths are evaluated in Python
(`expressions/fastpath.py`); a group with anything else goes to the QuickJS evaluator in one
batch, so both give the same results. `now_ms` is the runner's clock reading for the step: what
`Date.now()` and `new Date()` return (virtual time in flow tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from relayflow.engine.runner import Evaluated
from relayflow.expressions import fastpath
from relayflow.expressions.evaluate import ExpressionEvaluator, Outcome
from relayflow.expressions.template import contains_expression
from relayflow.telemetry import metrics

_OK, _WARNING, _ERROR = (
    metrics.expression_evaluations.labels(o) for o in ("ok", "warning", "error")
)


def _count_fast(values: Iterable[Any]) -> None:
    """Expressions the Python fast path evaluated (literals are not expressions)."""
    count = sum(1 for value in values if contains_expression(value))
    if count:
        _OK.inc(count)


def _collect(outcomes: Sequence[Outcome]) -> Evaluated:
    values: list[Any] = []
    warnings: list[str] = []
    for outcome in outcomes:
        if outcome.error is not None:
            _ERROR.inc()
            return Evaluated([], warnings, outcome.error)
        if outcome.warning:
            _WARNING.inc()
            warnings.append(outcome.warning)
        else:
            _OK.inc()
        values.append(outcome.value)  # a declared output's value is SKIP
    return Evaluated(values, warnings)


class StepExpressions:
    """What the runner evaluates a step with: the fast path first, QuickJS only when needed."""

    def __init__(self, evaluator: ExpressionEvaluator) -> None:
        self._evaluator = evaluator

    async def inputs(
        self,
        inputs: dict[str, Any],
        conditions: frozenset[str],
        data: dict[str, Any],
        *,
        now_ms: int | None = None,
    ) -> Evaluated:
        fast = [
            fastpath.condition_value(value, data, None)
            if name in conditions
            else fastpath.input_value(value, data)
            for name, value in inputs.items()
        ]
        if not any(value is fastpath.NOT_FAST for value in fast):
            _count_fast(inputs.values())
            return Evaluated(fast, [])
        jobs = [
            (value, "condition" if name in conditions else "input")
            for name, value in inputs.items()
        ]
        return _collect(await self._evaluator.evaluate(jobs, data, None, now_ms=now_ms))

    async def outputs(
        self,
        outputs: dict[str, Any],
        data: dict[str, Any],
        step: dict[str, Any],
        *,
        now_ms: int | None = None,
    ) -> Evaluated:
        fast = [fastpath.output_value(value, data, step) for value in outputs.values()]
        if not any(value is fastpath.NOT_FAST for value in fast):
            _count_fast(outputs.values())
            return Evaluated(fast, [])  # a declared output's value is SKIP
        jobs = [(value, "output") for value in outputs.values()]
        return _collect(await self._evaluator.evaluate(jobs, data, step, now_ms=now_ms))

    async def conditions(
        self,
        conditions: list[Any],
        data: dict[str, Any],
        step: dict[str, Any],
        *,
        now_ms: int | None = None,
    ) -> Evaluated:
        fast = [fastpath.condition_value(value, data, step) for value in conditions]
        if not any(value is fastpath.NOT_FAST for value in fast):
            _count_fast(conditions)
            return Evaluated(fast, [])
        jobs = [(value, "condition") for value in conditions]
        return _collect(await self._evaluator.evaluate(jobs, data, step, now_ms=now_ms))
