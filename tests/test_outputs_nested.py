"""Outputs with expressions inside objects and arrays are evaluated recursively and written;
an output without `{{ }}` anywhere inside stays a declaration and is not written (issue 14,
point 4). The Python fast path and the QuickJS evaluator must agree on both."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relayflow.engine.evaluation import StepExpressions
from relayflow.expressions import fastpath
from relayflow.expressions.evaluate import SKIP, ExpressionEvaluator, Outcome, evaluate_batch
from tests.support.flows import Flow

DATA = {"x": 3, "name": "Ann", "payload": {"source": "+6591234567", "body": "hi"}}
STEP = {"umid": "m-1", "responseCode": 200, "reply": None}


def output(value: Any, data: Any = DATA, step: Any = STEP) -> Outcome:
    [outcome] = evaluate_batch([(value, "output")], data, step)
    return outcome


# --- the evaluator ------------------------------------------------------------------------------


def test_nested_expressions_are_evaluated_and_keep_their_types() -> None:
    value = {
        "a": "{{1+1}}",
        "list": ["{{data.x}}", "literal", 4, None, {"deep": ["{{ step.umid + '!' }}"]}],
        "text": "Hi {{data.name}}",
        "kept": {"plain": "variable 0", "flag": True},
    }
    assert output(value) == Outcome(
        {
            "a": 2,
            "list": [3, "literal", 4, None, {"deep": ["m-1!"]}],
            "text": "Hi Ann",
            "kept": {"plain": "variable 0", "flag": True},
        }
    )
    assert output(["{{data.x}}"]) == Outcome([3])


@pytest.mark.parametrize(
    "literal",
    [{"a": "variable 0"}, ["x", {"b": ["y", 1, None]}], {}, [], {"a": {"b": {"c": "1+1"}}}],
)
def test_a_nested_literal_only_output_is_a_declaration(literal: Any) -> None:
    assert output(literal) == Outcome(SKIP)
    assert fastpath.output_value(literal, DATA, STEP) is SKIP


def test_a_tolerant_read_nulls_only_its_own_value_and_warns() -> None:
    outcome = output({"body": "{{step.reply.payload.body}}", "umid": "{{step.umid}}"})
    assert outcome.value == {"body": None, "umid": "m-1"}
    assert outcome.error is None
    assert outcome.warning == (
        "The expression '{{step.reply.payload.body}}' read a property of null or undefined "
        "(TypeError: cannot read property 'payload' of null); its value in the output is null."
    )


def test_any_other_error_inside_fails_the_output() -> None:
    outcome = output({"ok": "{{data.x}}", "bad": ["{{ nope() }}"]})
    assert outcome.error is not None
    assert "nope is not defined" in outcome.error
    forbidden = output({"bad": "{{ data.xs.forEach(i => i) }}"})
    assert forbidden.error is not None
    assert "arrow function is not allowed here" in forbidden.error


def test_deeply_nested_outputs_are_refused() -> None:
    value: Any = "{{1}}"
    for _ in range(100):
        value = [value]
    outcome = output(value)
    assert outcome.error == "The output is nested deeper than 64 levels."
    assert fastpath.output_value(value, DATA, STEP) is fastpath.NOT_FAST


# --- the fast path agrees with the jail --------------------------------------------------------

names = st.sampled_from(["a", "b", "payload", "source", "x", "reply", "umid"])
paths = st.builds(
    lambda root, parts: root + "".join("." + part for part in parts),
    st.sampled_from(["data", "step"]),
    st.lists(names, max_size=2),
)
leaves = st.one_of(
    paths.map(lambda p: "{{" + p + "}}"),
    paths.map(lambda p: "at {{ " + p + " }}!"),
    st.sampled_from(["{{1+1}}", "{{ data.x * 2 }}", "variable 0", "", "x{{", 7, None, True]),
)
outputs = st.recursive(
    leaves,
    lambda inner: st.dictionaries(names, inner, max_size=3) | st.lists(inner, max_size=3),
    max_leaves=8,
)
documents = st.dictionaries(
    names,
    st.recursive(
        st.none() | st.integers(-9, 9) | st.text(max_size=4),
        lambda inner: st.dictionaries(names, inner, max_size=2),
        max_leaves=4,
    ),
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(value=outputs, data=documents, step=documents)
def test_fast_nested_outputs_equal_the_jail(value: Any, data: Any, step: Any) -> None:
    fast = fastpath.output_value(value, data, step)
    slow = output(value, data, step)
    if fast is not fastpath.NOT_FAST:
        assert slow == Outcome(fast)  # both SKIP for a declaration
    if slow.value is SKIP:
        assert fast is SKIP


def test_typical_nested_outputs_take_the_fast_way() -> None:
    value = {"who": {"phone": "{{data.payload.source}}"}, "ids": ["{{step.umid}}", "lit"]}
    expected = {"who": {"phone": "+6591234567"}, "ids": ["m-1", "lit"]}
    assert fastpath.output_value(value, DATA, STEP) == expected
    assert output(value) == Outcome(expected)
    assert fastpath.output_value({"sum": "{{1+1}}"}, DATA, STEP) is fastpath.NOT_FAST


async def test_the_engine_s_view_writes_nested_and_skips_declarations() -> None:
    """StepExpressions: all-fast groups and groups sent to QuickJS give the same values."""
    evaluator = ExpressionEvaluator(max_workers=1)
    expressions = StepExpressions(evaluator)
    declared = {"a": "variable 0", "b": ["x"]}
    fast_group = {"who": {"phone": "{{data.payload.source}}"}, "declared": declared}
    slow_group = {**fast_group, "sum": {"n": "{{ data.x + 1 }}"}}  # not fast: all to QuickJS
    try:
        fast = await expressions.outputs(fast_group, DATA, STEP)
        slow = await expressions.outputs(slow_group, DATA, STEP)
    finally:
        evaluator.close()
    assert fast.values == [{"phone": "+6591234567"}, SKIP]
    assert slow.values == [{"phone": "+6591234567"}, SKIP, {"n": 4}]
    assert fast.error is None
    assert slow.error is None


# --- a flow ---------------------------------------------------------------------------------------


async def test_a_flow_writes_nested_outputs_and_not_nested_declarations(flow: Flow) -> None:
    definition = await flow.define(
        [
            {
                "id": "reply",
                "stepType": "SMS",
                "inputs": {
                    "subAccountId": "acme_sms",
                    "destination": "{{data.payload.source}}",
                    "text": "Thanks",
                },
                "outputs": {
                    "sent": {"umid": "{{step.umid}}", "to": ["{{data.payload.source}}"]},
                    "computed": {"a": "{{1+1}}", "words": "{{ data.payload.body.split(' ') }}"},
                    "mixed": ["{{ data.payload.body.length }}", "literal", {"n": 1}],
                    "declared": {"name": "variable 0", "list": ["a", "b"]},
                    "declaredList": ["variable 1"],
                },
                "nextStepId": "echo",
            },
            {
                "id": "echo",
                "stepType": "SMS",
                "inputs": {
                    "subAccountId": "acme_sms",
                    "destination": "{{data.payload.source}}",
                    "text": "{{ data.computed.words.join('+') }} {{ data.mixed[0] }}",
                },
            },
        ]
    )
    [workflow] = (await flow.sms("+6591234567", "hello there"))["started"]
    instance = await flow.instance(definition, workflow)
    assert instance["status"] == "Complete"
    data = instance["data"]
    first, second = await flow.outbox()
    assert data["sent"] == {"umid": first["umid"], "to": ["+6591234567"]}
    assert data["computed"] == {"a": 2, "words": ["hello", "there"]}
    assert data["mixed"] == [11, "literal", {"n": 1}]
    assert "declared" not in data
    assert "declaredList" not in data
    assert second["request"]["text"] == "hello+there 11"


def test_an_expression_nested_in_an_output_is_checked_when_the_definition_is_saved() -> None:
    from relayflow.config import Limits
    from relayflow.model.validation import validate_definition_input

    body = {
        "trigger": "http_request",
        "status": "enabled",
        "definition": {
            "name": "n",
            "steps": [
                {
                    "id": "s",
                    "stepType": "Wait",
                    "inputs": {"duration": "00:00:01"},
                    "outputs": {"order": {"lines": ["ok", "{{data.x = 1}}"]}},
                }
            ],
        },
    }
    problems = validate_definition_input(body, Limits()).problems
    assert [(p.code, p.path) for p in problems] == [
        (5014, "definition.steps[0].outputs.order.lines[1]")
    ]
