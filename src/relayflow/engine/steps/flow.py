"""Steps that only shape the flow: Branch and If."""

from __future__ import annotations

from relayflow.engine.decisions import Complete, Decision, StartBranches
from relayflow.engine.steps.base import Resume, StepContext, StepType


class Branch(StepType):
    """Its `selectNextStep` does the work (every true condition, else the `null` defaults)."""

    name = "Branch"

    async def run(self, ctx: StepContext) -> Decision:
        return Complete()


class If(StepType):
    """True: run the first step of every `do` branch, complete when they all end. False: go on."""

    name = "If"
    condition_inputs = frozenset({"condition"})

    async def run(self, ctx: StepContext) -> Decision:
        if ctx.resume is Resume.CHILDREN_DONE:
            return Complete()
        if ctx.inputs.get("condition") and ctx.node.branches:
            return StartBranches(ctx.node.branches)
        return Complete()
