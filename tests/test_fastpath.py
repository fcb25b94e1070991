"""The Python fast path must agree with the JavaScript sandbox whenever it answers at all."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from relayflow.expressions import fastpath
from relayflow.expressions.evaluate import SKIP, evaluate_batch

names = st.sampled_from(["a", "b", "payload", "source", "x_1", "$y", "reply", "length"])
scalars = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=8)
values = st.recursive(
    scalars,
    lambda inner: st.dictionaries(names, inner, max_size=3) | st.lists(inner, max_size=2),
    max_leaves=8,
)
documents = st.dictionaries(names, values, max_size=4)
paths = st.builds(
    lambda root, parts: root + "".join("." + part for part in parts),
    st.sampled_from(["data", "step"]),
    st.lists(names, max_size=3),
)
templates = st.one_of(
    paths.map(lambda p: "{{" + p + "}}"),
    paths.map(lambda p: "{{ " + p + " }}"),
    st.tuples(st.text(alphabet="ab :!", max_size=4), paths).map(lambda t: f"{t[0]}{{{{{t[1]}}}}}!"),
    st.text(alphabet="abc ", max_size=5),
)


@settings(max_examples=300, deadline=None)
@given(template=templates, data=documents, step=documents)
def test_fast_answers_equal_the_sandbox(
    template: str, data: dict[str, Any], step: dict[str, Any]
) -> None:
    fast_output = fastpath.output_value(template, data, step)
    fast_condition = fastpath.condition_value(template, data, step)
    fast_input = fastpath.input_value(template, data)
    slow = evaluate_batch([(template, "output"), (template, "condition")], data, step)
    slow_input = evaluate_batch([(template, "input")], data, None)[0]
    if fast_output is not fastpath.NOT_FAST:
        if fast_output is SKIP:
            assert slow[0].value is SKIP
        else:
            assert slow[0].error is None
            assert slow[0].warning is None
            assert slow[0].value == fast_output
    if fast_condition is not fastpath.NOT_FAST:
        assert slow[1].error is None
        assert slow[1].warning is None
        assert slow[1].value == fast_condition
    if fast_input is not fastpath.NOT_FAST:
        assert slow_input.error is None
        assert slow_input.value == fast_input


def test_typical_paths_take_the_fast_way() -> None:
    data = {"payload": {"source": "+6591234567", "body": "hi", "count": 3}}
    assert fastpath.input_value("{{data.payload.source}}", data) == "+6591234567"
    assert fastpath.input_value({"to": "{{data.payload.source}}", "n": 2}, data) == {
        "to": "+6591234567",
        "n": 2,
    }
    assert (
        fastpath.input_value("You said {{data.payload.body}} x{{data.payload.count}}", data)
        == "You said hi x3"
    )
    assert fastpath.output_value("{{step.umid}}", data, {"umid": "u"}) == "u"
    assert fastpath.output_value("variable 0", data, {}) is SKIP
    assert fastpath.condition_value("{{ step.reply }}", data, {"reply": {}}) is True
    assert fastpath.condition_value(None, data, {}) is None


def test_anything_doubtful_goes_to_the_sandbox() -> None:
    data = {"payload": None, "n": 1.5, "s": "text"}
    for template in (
        "{{data.payload.source}}",
        "{{data.x == 1}}",
        "{{uuid()}}",
        "{{data.s.length}}",
        "n={{data.n}}",
        "{{data.constructor}}",
        "{{data['s']}}",
        "{{data.x",
    ):
        assert fastpath.input_value(template, data) is fastpath.NOT_FAST, template
