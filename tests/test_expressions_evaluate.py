"""`evaluate_batch` / `ExpressionEvaluator`: the engine's view of `{{ }}` expressions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relayflow.expressions.evaluate import (
    MAX_EXPRESSION_LENGTH,
    SKIP,
    ExpressionEvaluator,
    Job,
    Outcome,
    evaluate_batch,
)

DATA: dict[str, Any] = {
    "name": "Ann",
    "code": 200,
    "price": "10",
    "umid": "u-1",
    "nested": {"list": [1, 2], "empty": None},
    "from": "+6512345678",
    "triggeredAt": "2021-05-25T03:00:00Z",
    "long": "y" * 10_000,
}
STEP: dict[str, Any] = {"responseCode": 200, "reply": None, "umid": "m-9"}


def one(value: Any, kind: str, data: Any = DATA, step: Any = STEP) -> Outcome:
    (outcome,) = evaluate_batch([(value, kind)], data, step)
    return outcome


def ok(value: Any, kind: str = "input", data: Any = DATA, step: Any = STEP) -> Any:
    outcome = one(value, kind, data, step)
    assert outcome.error is None, outcome.error
    assert outcome.warning is None, outcome.warning
    return outcome.value


# --- inputs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{data.code}}", 200),
        ("{{ data.code == 200 }}", True),
        ("{{data.nested}}", {"list": [1, 2], "empty": None}),
        ("{{data.nested.empty}}", None),
        ("{{data.missing}}", None),
        ("{{ step.responseCode == '200' }}", True),
        ("{{ data.missing == null }}", True),
        ("{{data['nested']['list'][1]}}", 2),
        ("{{ data.nested?.nope?.deeper ?? 'fallback' }}", "fallback"),
        ("{{ `${data.name}!` }}", "Ann!"),
        ("{{'umid: ' + data.umid}}", "umid: u-1"),
        ("umid: {{data.umid}}", "umid: u-1"),
        ("{{data.name}} paid {{data.price}} ({{data.code}})", "Ann paid 10 (200)"),
        ("[{{data.missing}}][{{data.nested.empty}}]", "[][]"),
        ("obj={{data.nested}}", 'obj={"list":[1,2],"empty":null}'),
        ("flag={{data.code > 100}}", "flag=true"),
        ("{{ data.long }}", "y" * 10_000),
        ("{{ data.long + data.long }}", "y" * 20_000),
        ("plain text", "plain text"),
        ("a }} b", "a }} b"),
        ("", ""),
    ],
)
def test_input_templates(template: str, expected: Any) -> None:
    assert ok(template) == expected


def test_inputs_are_evaluated_recursively() -> None:
    value = {
        "text": "Hi {{data.name}}",
        "count": "{{data.nested.list.length}}",
        "list": ["{{data.code}}", 5, None, True, {"deep": ["{{data.umid}}"]}],
        "literal": "no braces",
        "number": 3.5,
    }
    assert ok(value) == {
        "text": "Hi Ann",
        "count": 2,
        "list": [200, 5, None, True, {"deep": ["u-1"]}],
        "literal": "no braces",
        "number": 3.5,
    }
    assert ok(None) is None
    assert ok(42) == 42


def test_an_input_error_fails_the_whole_input() -> None:
    outcome = one({"ok": "{{data.code}}", "bad": "{{ data.x.y }}"}, "input")
    assert outcome.value is None
    assert outcome.error == (
        "Failed to evaluate the expression '{{data.x.y}}': "
        "TypeError: cannot read property 'y' of undefined"
    )


def test_inputs_are_not_tolerant_of_null_reads() -> None:
    outcome = one("{{step.reply.payload.body}}", "input")
    assert outcome.error is not None
    assert "cannot read property 'payload' of null" in outcome.error


def test_deeply_nested_inputs_are_refused() -> None:
    value: Any = "{{1}}"
    for _ in range(100):
        value = [value]
    outcome = one(value, "input")
    assert outcome.error is not None
    assert "nested deeper than" in outcome.error


# --- outputs ----------------------------------------------------------------------------------


def test_outputs_without_braces_are_skipped() -> None:
    for literal in ["variable 0", "", "true", 5, None, {"a": "data.x", "b": ["x", {}]}, []]:
        assert one(literal, "output") == Outcome(SKIP)


def test_outputs_keep_the_javascript_type() -> None:
    assert ok("{{step.umid}}", "output") == "m-9"
    assert ok("{{step.responseCode}}", "output") == 200
    assert ok("{{step.reply}}", "output") is None
    assert ok("{{ {'a': data.code} }}", "output") == {"a": 200}
    assert ok("{{'text'}}", "output") == "text"
    assert ok("umid {{step.umid}}", "output") == "umid m-9"


@pytest.mark.parametrize(
    "template",
    ["{{step.reply.payload.body}}", "Reply: {{step.reply.payload.body}}", "{{data.a.b.c}}"],
)
def test_outputs_tolerate_reading_through_null(template: str) -> None:
    outcome = one(template, "output")
    assert outcome.value is None
    assert outcome.error is None
    assert outcome.warning is not None
    assert "cannot read property" in outcome.warning
    assert outcome.warning.endswith("; the output is null.")


def test_tolerated_reads_are_explained() -> None:
    assert one("{{ step.reply.payload.body }}", "output").warning == (
        "The expression '{{step.reply.payload.body}}' read a property of null or undefined "
        "(TypeError: cannot read property 'payload' of null); the output is null."
    )


def test_other_output_errors_are_errors() -> None:
    outcome = one("{{ nope.x }}", "output")
    assert outcome.error == (
        "Failed to evaluate the expression '{{nope.x}}': ReferenceError: nope is not defined"
    )
    outcome = one("{{ step.umid() }}", "output")
    assert outcome.error is not None
    assert "not a function" in outcome.error


# --- conditions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (None, None),  # the default branch
        (True, True),
        (False, False),
        ("true", True),
        ("FALSE", False),
        (" True ", True),
        ("{{ step.responseCode == '200' }}", True),
        ("{{ step.responseCode == 404 }}", False),
        ("{{ step.reply != null }}", False),
        ("{{ step.reply == null }}", True),
        ("{{ data.missing }}", False),
        ("{{ '' }}", False),
        ("{{ 0 }}", False),
        ("{{ data.nested }}", True),
        ("{{ data.name }}", True),
        ("{{ isCountryCode(data.from, 'SG') }}", True),
        ("{{ !isCountryCode(data.from, 'SG') }}", False),
        ("{{ isDayOfWeek(data.triggeredAt, 'tuesday') }}", True),
        (
            "{{ isTimeOfDayBetween(data.triggeredAt, '9:00', '18:00', 'Singapore Standard Time')}}",
            True,
        ),
        ("{{ stringContains(data.name, 'an', true) }}", True),
        (" {{ data.code == 200 }} ", True),
        ("{{ data.code }} {{ data.name }}", True),  # text around expressions: a non-empty string
        ("{{ data.missing }}{{ data.missing }}", False),  # ... or an empty one
        ("{{ 'false' }}", True),  # a JavaScript string is truthy
        (1, True),
        (0, False),
    ],
)
def test_conditions(condition: Any, expected: bool | None) -> None:
    assert ok(condition, "condition") is expected


def test_conditions_tolerate_reading_through_null() -> None:
    outcome = one("{{ step.reply.payload.body == 'yes' }}", "condition")
    assert outcome.value is False
    assert outcome.error is None
    assert outcome.warning is not None
    assert outcome.warning.endswith("the condition is false.")


@pytest.mark.parametrize("condition", ["maybe", ["{{true}}"], {"a": 1}])
def test_malformed_conditions_are_errors(condition: Any) -> None:
    outcome = one(condition, "condition")
    assert outcome.error is not None
    assert "true, false or null" in outcome.error


# --- checks before running --------------------------------------------------------------------


def test_forbidden_constructs_are_refused_at_run_time() -> None:
    outcome = one("{{ data.code = 1 }}", "input")
    assert outcome.error == (
        "Failed to evaluate the expression '{{data.code = 1}}': assignment is not allowed"
    )
    outcome = one("{{ ''.constructor.constructor('return this')() }}", "condition")
    assert outcome.error is not None
    assert "'constructor' is not allowed" in outcome.error
    outcome = one("{{ (() => { while (true) {} })() }}", "output")
    assert outcome.error is not None
    assert "arrow function is not allowed" in outcome.error


def test_expressions_longer_than_the_limit_are_errors() -> None:
    longest = "1" + "+1" * ((MAX_EXPRESSION_LENGTH - 1) // 2)
    assert len(longest) <= MAX_EXPRESSION_LENGTH
    assert ok("{{" + longest + "}}") == (MAX_EXPRESSION_LENGTH - 1) // 2 + 1
    outcome = one("{{" + longest + "+1+1}}", "input")
    assert outcome.error is not None
    assert f"the limit is {MAX_EXPRESSION_LENGTH}" in outcome.error
    assert len(outcome.error) < 300  # the message shows the start of the expression only


def test_malformed_templates_are_errors() -> None:
    outcome = one("Hello {{ data.name", "input")
    assert outcome.error is not None
    assert "has no matching '}}'" in outcome.error


def test_unknown_job_kinds_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="unknown job kind"):
        evaluate_batch([("{{1}}", "inputs")], {}, None)


# --- limits, isolation, helpers ---------------------------------------------------------------


@pytest.mark.timeout(30)
def test_runaway_and_memory_hungry_expressions_fail_and_the_batch_goes_on() -> None:
    jobs = [
        Job("{{ /(a+)+$/.test('a'.repeat(40) + 'b') }}", "condition"),  # passes the whitelist
        Job("{{ 'x'.repeat(1e9) }}", "output"),
        Job("{{ Array(1e8).fill(1).length }}", "input"),
        Job("{{ data.name }}", "input"),
    ]
    timed_out, exploded, too_big, fine = evaluate_batch(jobs, DATA, STEP)
    assert timed_out.error is not None
    assert "took longer than 500 ms" in timed_out.error
    assert exploded.error is not None
    assert "exceeded 32 MB" in exploded.error or "array elements" in exploded.error
    assert too_big.error is not None
    assert "exceeded 32 MB" in too_big.error or "array elements" in too_big.error
    assert fine == Outcome("Ann")


def test_batches_do_not_share_state() -> None:
    tamper = [
        Job("{{ Object.assign(Object.getPrototypeOf({}), {reply: 'polluted'}) }}", "output"),
        Job("{{ Object.assign(data, {code: 1}).code }}", "output"),
    ]
    first = evaluate_batch(tamper, DATA, STEP)
    assert first[0].error is not None
    assert "not extensible" in first[0].error
    assert first[1] == Outcome(1)  # the batch's own copy of data
    assert DATA["code"] == 200
    second = evaluate_batch(
        [Job("{{ step.reply != null }}", "condition"), Job("{{ data.code }}", "input")],
        DATA,
        {"reply": None},
    )
    assert second == [Outcome(False), Outcome(200)]


def test_each_uuid_is_new() -> None:
    jobs = [
        Job("{{uuid()}}", "output"),
        Job("{{uuid()}}", "output"),
        Job("{{[uuid(), uuid()]}}", "input"),
    ]
    outcomes = evaluate_batch(jobs, {}, None)
    values = [outcomes[0].value, outcomes[1].value, *outcomes[2].value]
    assert len(set(values)) == 4
    assert all(uuid.UUID(value).version == 4 for value in values)


def test_helper_argument_errors_are_expression_errors() -> None:
    outcome = one(
        "{{ isTimeOfDayBetween(data.triggeredAt, '09:00', '18:00', 'Mars') }}", "condition"
    )
    assert outcome.error is not None
    assert outcome.error.startswith("Failed to evaluate the expression '{{isTimeOfDayBetween(")
    assert "isTimeOfDayBetween: unknown time zone id 'Mars'" in outcome.error
    outcome = one("{{ isDayOfWeek(data.missing, 'Monday') }}", "condition")
    assert outcome.error is not None
    assert "timestamp must be a string" in outcome.error


def test_batches_without_expressions_never_start_quickjs(monkeypatch: pytest.MonkeyPatch) -> None:
    from relayflow.expressions import evaluate

    def explode(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a jail was created")

    monkeypatch.setattr(evaluate, "Jail", explode)
    outcomes = evaluate_batch(
        [("text", "input"), ("variable 0", "output"), (None, "condition")], {}, None
    )
    assert outcomes == [Outcome("text"), Outcome(SKIP), Outcome(None)]


def test_data_with_unusual_json() -> None:
    data = {"big": 2**70, "nan": float("nan"), "text": "a\u2028b"}
    assert ok("{{ [data.big > 1e20, data.nan, data.text] }}", data=data) == [True, None, "a\u2028b"]


def test_threads_evaluate_batches_at_once() -> None:
    def work(index: int) -> list[Outcome]:
        return evaluate_batch(
            [
                Job("{{ data.i * 2 }}", "input"),
                Job("{{ isCountryCode(data.from, 'SG') }}", "condition"),
                Job("{{ step.reply.text }}", "output"),
            ],
            {"i": index, "from": "+6591234567"},
            {"reply": None},
        )

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(64)))
    for index, (doubled, condition, output) in enumerate(results):
        assert doubled == Outcome(index * 2)
        assert condition == Outcome(True)
        assert output.value is None
        assert output.warning is not None


# --- asyncio facade ---------------------------------------------------------------------------


@pytest.fixture
def evaluator() -> Iterator[ExpressionEvaluator]:
    evaluator = ExpressionEvaluator(max_workers=2)
    yield evaluator
    evaluator.close()


async def test_async_facade(evaluator: ExpressionEvaluator) -> None:
    jobs = [Job("Hi {{data.name}}", "input"), Job("{{ step.responseCode == '200' }}", "condition")]
    assert await evaluator.evaluate(jobs, DATA, STEP) == [Outcome("Hi Ann"), Outcome(True)]


@pytest.mark.timeout(30)
async def test_async_facade_survives_hostile_batches(evaluator: ExpressionEvaluator) -> None:
    hostile = [
        Job("{{ JSON.parse('['.repeat(1e5) + ']'.repeat(1e5)) }}", "input"),  # stack overflow
        Job("{{ 'x'.repeat(1e9) }}", "input"),
        Job("{{ /(a+)+$/.test('a'.repeat(40) + 'b') }}", "condition"),
    ]
    overflow, memory, runaway = await evaluator.evaluate(hostile, DATA, STEP)
    assert overflow.error is not None
    assert "stack overflow" in overflow.error
    assert memory.error is not None
    assert "exceeded 32 MB" in memory.error or "array elements" in memory.error
    assert runaway.error is not None
    assert "took longer than 500 ms" in runaway.error
    assert evaluator.pool_batches == 1
    assert await evaluator.evaluate([Job("{{ ({}).reply }}", "output")], DATA, STEP) == [
        Outcome(None)
    ]


async def test_quick_batches_run_on_the_event_loop(
    evaluator: ExpressionEvaluator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The 2 ms budget is wall time: on a loaded machine a preempted thread overruns it. What is
    # tested is that a batch within its budget stays on the loop, so the budget is generous.
    from relayflow.expressions import evaluate

    monkeypatch.setattr(evaluate, "INLINE_BUDGET_SECONDS", 10.0)
    for _ in range(5):
        jobs = [Job("{{ data.name + step.responseCode }}", "input"), Job("{{ uuid() }}", "input")]
        name, made = await evaluator.evaluate(jobs, DATA, STEP)
        assert name == Outcome("Ann200")
        assert uuid.UUID(made.value).version == 4
    assert (evaluator.inline_batches, evaluator.pool_batches) == (5, 0)


@pytest.mark.timeout(30)
async def test_batches_over_the_inline_budget_move_to_the_pool(
    evaluator: ExpressionEvaluator,
) -> None:
    # Backtracks for tens of milliseconds: over the loop's budget, well within the 500 ms limit.
    slow = Job("{{ /(a+)+$/.test('a'.repeat(18) + 'b') }}", "condition")
    outcomes = await evaluator.evaluate([Job("{{ data.code }}", "input"), slow], DATA, STEP)
    assert outcomes == [Outcome(200), Outcome(False)]
    assert (evaluator.inline_batches, evaluator.pool_batches) == (0, 1)
    assert await evaluator.evaluate([Job("{{ data.code }}", "input")], DATA, STEP) == [Outcome(200)]
    assert (evaluator.inline_batches, evaluator.pool_batches) == (1, 1)


async def test_after_a_memory_bomb_the_loop_waits_before_making_a_new_realm(
    evaluator: ExpressionEvaluator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from relayflow.expressions import evaluate

    monkeypatch.setattr(evaluate, "INLINE_REALM_EVERY_SECONDS", 3600)
    quick = [Job("{{ data.code }}", "input")]
    assert await evaluator.evaluate(quick, DATA, STEP) == [Outcome(200)]
    [bomb] = await evaluator.evaluate([Job("{{ 'x'.repeat(1e9) }}", "input")], DATA, STEP)
    assert bomb.error is not None
    assert "exceeded 32 MB" in bomb.error
    # The bomb destroyed the loop's realm; rebuilding it (~5 ms of blocked loop) waits.
    assert await evaluator.evaluate(quick, DATA, STEP) == [Outcome(200)]
    assert (evaluator.inline_batches, evaluator.pool_batches) == (1, 2)
    monkeypatch.setattr(evaluate, "INLINE_REALM_EVERY_SECONDS", 0)
    assert await evaluator.evaluate(quick, DATA, STEP) == [Outcome(200)]
    assert (evaluator.inline_batches, evaluator.pool_batches) == (2, 2)


async def test_inline_evaluation_can_be_turned_off() -> None:
    evaluator = ExpressionEvaluator(max_workers=1, inline=False)
    try:
        assert await evaluator.evaluate([Job("{{ data.code }}", "input")], DATA, STEP) == [
            Outcome(200)
        ]
        assert (evaluator.inline_batches, evaluator.pool_batches) == (0, 1)
    finally:
        evaluator.close()


async def test_async_facade_runs_batches_concurrently(evaluator: ExpressionEvaluator) -> None:
    batches = [
        evaluator.evaluate([Job("{{ data.i }}", "input")], {"i": index}, None)
        for index in range(20)
    ]
    results = await asyncio.gather(*batches)
    assert results == [[Outcome(index)] for index in range(20)]


async def test_async_facade_snapshots_data(evaluator: ExpressionEvaluator) -> None:
    data = {"n": 1}
    pending = asyncio.ensure_future(evaluator.evaluate([Job("{{ data.n }}", "input")], data, None))
    await asyncio.sleep(0)  # the coroutine has serialised `data` and hopped to the pool
    data["n"] = 2
    assert await pending == [Outcome(1)]


# --- never raises -----------------------------------------------------------------------------

template_text = st.lists(
    st.sampled_from([*"{}()[]'\"`.+-*!?:;=,<> abcxyz01", "{{", "}}", "data", "step", "null"]),
    max_size=20,
).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=template_text, kind=st.sampled_from(["input", "output", "condition"]))
def test_any_template_gives_an_outcome(value: str, kind: str) -> None:
    (outcome,) = evaluate_batch([(value, kind)], {"a": 1}, {"b": None})
    assert isinstance(outcome, Outcome)
    assert outcome.error is None or outcome.value is None
