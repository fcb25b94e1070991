"""Run one flow test on the real engine (`FlowEnvironment`) and say how it went.

The script runs in order; each `{"expect": ...}` checkpoint is checked against everything so far
and the script goes on after a failed one (the final state is still needed for `--update`, and
one run shows every difference). An action the environment refuses ends the script: what follows
would test something else. HTTP calls no mock answered fail the test, naming the action that led
to them.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from relayflow.testing.environment import FlowEnvironment, FlowTestError, Mocks
from relayflow.testing.matching import check_expectation
from relayflow.testing.script import (
    Action,
    Advance,
    Checkpoint,
    Dtmf,
    HttpTrigger,
    InboundChat,
    InboundSms,
)
from relayflow.testing.testfile import FlowTest

SEED = 0  # every run of a file gets the same ids


@dataclass
class FlowTestResult:
    """What happened: failures as readable lines, and the final state (`--update` writes it)."""

    test: FlowTest
    failures: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    completed: bool = False  # the whole script ran (no refused action, no crash)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    instances: list[dict[str, Any]] = field(default_factory=list)
    http_calls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.test.name

    @property
    def passed(self) -> bool:
        return not self.failures

    def state(self) -> dict[str, list[dict[str, Any]]]:
        """The actual lists, under the keys `expect` uses."""
        return {"outbox": self.outbox, "instances": self.instances, "httpCalls": self.http_calls}


async def run_flow_test(test: FlowTest, *, check_final: bool = True) -> FlowTestResult:
    """Run `test`; `check_final=False` skips the final `expect` (`--update` replaces it)."""
    result = FlowTestResult(test)
    began = time.perf_counter()
    try:
        await _run(test, result, check_final=check_final)
    except Exception as error:  # an engine bug must not hide the other tests' results
        last = traceback.extract_tb(error.__traceback__)[-1:]
        where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
        result.failures.append(f"internal error: {type(error).__name__}: {error}{where}")
        result.completed = False
    result.duration_s = time.perf_counter() - began
    return result


async def _run(test: FlowTest, result: FlowTestResult, *, check_final: bool) -> None:
    environment = FlowEnvironment(
        test.definition,
        mocks=Mocks.from_json(test.mocks.as_json()),
        account=test.account,
        start=test.start,
        seed=SEED,
    )
    try:
        async with environment as env:
            await _script(env, test, result)
    except FlowTestError as error:  # from starting the environment: actions catch their own
        result.failures.append(f"definition: {error}")
        return
    if result.completed and check_final and test.expect is not None:
        result.failures += _prefixed(
            "expect.", check_expectation(test.expect.as_json(), result.state())
        )


async def _script(env: FlowEnvironment, test: FlowTest, result: FlowTestResult) -> None:
    unmatched_seen = 0
    for index, action in enumerate(test.script):
        where = f"script[{index}]"
        if isinstance(action, Checkpoint):
            differences = check_expectation(action.expect.as_json(), _state(env))
            result.failures += _prefixed(f"{where}.expect.", differences)
            continue
        try:
            await perform(env, action)
        except FlowTestError as error:
            result.failures.append(f"{where} ({action.do}): {error}")
            _record(env, result)
            return
        unmatched = env.unmatched_http_calls
        result.failures += [
            f"{where} ({action.do}): no HTTP mock matches {call}"
            for call in unmatched[unmatched_seen:]
        ]
        unmatched_seen = len(unmatched)
    _record(env, result)
    result.completed = True


async def perform(env: FlowEnvironment, action: Action) -> None:
    """One script action, as the same event would arrive in production."""
    if isinstance(action, InboundSms):
        if action.to is None:
            await env.inbound_sms(action.sender, action.text, sub_account_id=action.sub_account_id)
        else:
            await env.inbound_sms(
                action.sender, action.text, to=action.to, sub_account_id=action.sub_account_id
            )
    elif isinstance(action, InboundChat):
        await env.inbound_chat(
            action.channel,
            action.sender,
            text=action.text,
            payload=action.payload,
            sub_account_id=action.sub_account_id,
        )
    elif isinstance(action, HttpTrigger):
        await env.http_trigger(action.body, sub_account_id=action.sub_account_id)
    elif isinstance(action, Dtmf):
        await env.dtmf(action.digits, to=action.to)
    elif isinstance(action, Advance):
        await env.advance(action.by)


def _state(env: FlowEnvironment) -> dict[str, list[dict[str, Any]]]:
    return {"outbox": env.outbox, "instances": env.instances, "httpCalls": env.http_calls}


def _record(env: FlowEnvironment, result: FlowTestResult) -> None:
    result.outbox = list(env.outbox)
    result.instances = list(env.instances)
    result.http_calls = list(env.http_calls)


def _prefixed(prefix: str, lines: list[str]) -> list[str]:
    """Differences located in the file: `expect.outbox[1].text: ...`."""
    return [prefix + line for line in lines]
