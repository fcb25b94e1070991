"""Compile a stored definition version into an immutable runtime plan, once.

The engine never looks at the tolerant 8x8 source form: successors are resolved, conditions are
ordered, `If` branches are reduced to their entry steps, and every step knows its scope.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class StepNode:
    id: str
    type: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    next_step_id: str | None
    # (target step id, condition) in definition order; condition None = default branch.
    select_next: tuple[tuple[str, Any], ...]
    # First step of each `do` branch (If only).
    branches: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    definition_id: str
    version: int
    entry: str
    steps: MappingProxyType[str, StepNode] = field(repr=False)

    def step(self, step_id: str) -> StepNode:
        return self.steps[step_id]


def compile_plan(definition_id: str, version: int, steps: list[dict[str, Any]]) -> Plan:
    nodes: dict[str, StepNode] = {}
    _collect(steps, nodes)
    return Plan(definition_id, version, steps[0]["id"], MappingProxyType(nodes))


def _collect(steps: list[dict[str, Any]], nodes: dict[str, StepNode]) -> None:
    for raw in steps:
        branches = raw.get("do") or []
        nodes[raw["id"]] = StepNode(
            id=raw["id"],
            type=raw["stepType"],
            inputs=raw.get("inputs") or {},
            outputs=raw.get("outputs") or {},
            next_step_id=raw.get("nextStepId"),
            select_next=tuple((raw.get("selectNextStep") or {}).items()),
            branches=tuple(branch[0]["id"] for branch in branches if branch),
        )
        for branch in branches:
            _collect(branch, nodes)


class PlanCache:
    """Plans by (definition id, version): versions are immutable, so entries never go stale."""

    def __init__(self, capacity: int = 1024) -> None:
        self._capacity = capacity
        self._plans: OrderedDict[tuple[str, int], Plan] = OrderedDict()

    def get(self, definition_id: str, version: int) -> Plan | None:
        key = (definition_id, version)
        plan = self._plans.get(key)
        if plan is not None:
            self._plans.move_to_end(key)
        return plan

    def put(self, plan: Plan) -> None:
        self._plans[(plan.definition_id, plan.version)] = plan
        while len(self._plans) > self._capacity:
            self._plans.popitem(last=False)
