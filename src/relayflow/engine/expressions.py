"""The runner's view of expressions: inputs, outputs and conditions of one step.

Values without `{{ }}` are handled here in Python, so a step with literal inputs (and a Branch
with only `null` defaults) never pays for a sandbox hop; everything else goes to the QuickJS
evaluator in one batch per group.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from relayflow.engine.runner import SKIP, Evaluated
from relayflow.expressions.evaluate import ExpressionEvaluator, Outcome

_CONSTANTS = {"true": True, "false": False}


def _has_template(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value
    if isinstance(value, dict):
        return any(_has_template(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_template(item) for item in value)
    return False


def _constant_condition(value: Any) -> bool:
    """None (default branch), booleans and "true"/"false" need no sandbox; anything else
    (an expression, or a stray literal the evaluator will reject) does."""
    return (
        value is None
        or isinstance(value, bool)
        or (isinstance(value, str) and value.strip().lower() in _CONSTANTS)
    )


def _constant(value: Any) -> Any:
    return _CONSTANTS[value.strip().lower()] if isinstance(value, str) else value


def _collect(outcomes: Sequence[Outcome], skip_marker: bool = False) -> Evaluated:
    values: list[Any] = []
    warnings: list[str] = []
    for outcome in outcomes:
        if outcome.error is not None:
            return Evaluated([], warnings, outcome.error)
        if outcome.warning:
            warnings.append(outcome.warning)
        values.append(SKIP if skip_marker and outcome.skipped else outcome.value)
    return Evaluated(values, warnings)


class SandboxExpressions:
    def __init__(self, evaluator: ExpressionEvaluator) -> None:
        self._evaluator = evaluator

    async def inputs(
        self, inputs: dict[str, Any], conditions: frozenset[str], data: dict[str, Any]
    ) -> Evaluated:
        if not _has_template(inputs) and all(
            _constant_condition(inputs.get(k)) for k in conditions
        ):
            return Evaluated(
                [_constant(v) if k in conditions else v for k, v in inputs.items()], []
            )
        jobs = [
            (value, "condition" if name in conditions else "input")
            for name, value in inputs.items()
        ]
        return _collect(await self._evaluator.evaluate(jobs, data, None))

    async def outputs(
        self, outputs: dict[str, Any], data: dict[str, Any], step: dict[str, Any]
    ) -> Evaluated:
        if not _has_template(outputs):
            return Evaluated([SKIP] * len(outputs), [])
        jobs = [(value, "output") for value in outputs.values()]
        return _collect(await self._evaluator.evaluate(jobs, data, step), skip_marker=True)

    async def conditions(
        self, conditions: list[Any], data: dict[str, Any], step: dict[str, Any]
    ) -> Evaluated:
        if all(_constant_condition(value) for value in conditions):
            return Evaluated([_constant(value) for value in conditions], [])
        jobs = [(value, "condition") for value in conditions]
        return _collect(await self._evaluator.evaluate(jobs, data, step))
