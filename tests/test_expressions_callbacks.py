"""Beyond 8x8: arrow-function callbacks of map/filter/some/every/find/reduce and `Date` from the
engine's clock (issue 14, point 5). The whitelist allows an arrow only as the first argument of
those six methods and `new` only as `new Date(...)`; the jail's `Date` reads the `now_ms` of
the evaluation, and its time and memory limits still stop callbacks that run away."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from relayflow.clock import iso_from_ms, ms_from_iso
from relayflow.expressions.evaluate import ExpressionEvaluator, Job, Outcome, evaluate_batch
from relayflow.expressions.jail import Jail
from relayflow.expressions.whitelist import ARROW_PLACEMENT, forbidden_construct
from tests.support.flowtest import PHONE, definition, run_document, sms, wait

NOW = ms_from_iso("2026-03-02T09:00:00.250Z")
DATA = {
    "items": [
        {"sku": "A-1", "qty": 2, "price": 5},
        {"sku": "B-2", "qty": 0, "price": 7},
        {"sku": "C-3", "qty": 1, "price": 11},
    ],
    "xs": [1, 2, 3, 4],
    "when": "2026-03-01T00:00:00Z",
    "later": "2026-04-01T00:00:00Z",
}


def value(source: str, now_ms: int = NOW) -> Any:
    [outcome] = evaluate_batch([(source, "input")], DATA, None, now_ms=now_ms)
    assert outcome.error is None, outcome.error
    return outcome.value


def error(source: str) -> str:
    [outcome] = evaluate_batch([(source, "input")], DATA, None, now_ms=NOW)
    assert outcome.error is not None, outcome.value
    return outcome.error


# --- callbacks that run -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ data.items.filter(i => i.qty > 0).map(i => i.sku) }}", ["A-1", "C-3"]),
        ("{{ data.xs.reduce((a, b) => a + b, 0) }}", 10),
        ("{{ data.items.reduce((total, i) => total + i.qty * i.price, 0) }}", 21),
        ("{{ data.items.some(i => i.qty === 0) }}", True),
        ("{{ data.items.every(i => i.price > 5) }}", False),
        ("{{ data.items.find(i => i.sku.startsWith('C')).price }}", 11),
        ("{{ data.items.find(i => i.qty > 9) }}", None),
        ("{{ data.xs.map((x, index) => x * index) }}", [0, 2, 6, 12]),
        ("{{ data.xs.map(x => ({double: x * 2})).at(-1) }}", {"double": 8}),
        ("{{ data.xs?.filter(x => x % 2).length }}", 2),
        # callbacks nest (each one is still the first argument of one of the six methods)
        ("{{ data.xs.map(x => data.xs.filter(y => y < x).length) }}", [0, 1, 2, 3]),
        ("Skus: {{ data.items.map(i => i.sku).join(', ') }}", "Skus: A-1, B-2, C-3"),
        # an arrow has no `arguments` of its own; the expression's own are data and step
        ("{{ data.xs.map(x => arguments.length).length }}", 4),
    ],
)
def test_callbacks_run(source: str, expected: Any) -> None:
    assert value(source) == expected


def test_callbacks_in_a_condition_and_an_output() -> None:
    step = {"reply": {"payload": {"body": "b-2"}}}
    jobs = [
        (
            "{{ data.items.some(i => i.sku.toLowerCase() === step.reply.payload.body) }}",
            "condition",
        ),
        ("{{ data.items.map(i => i.sku + '@' + step.reply.payload.body) }}", "output"),
    ]
    condition, output = evaluate_batch(jobs, DATA, step, now_ms=NOW)
    assert condition == Outcome(True)
    assert output == Outcome(["A-1@b-2", "B-2@b-2", "C-3@b-2"])


# --- what stays forbidden, and what the messages say --------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("(i => i)(1)", ARROW_PLACEMENT),  # called directly
        ("({f: i => i})", ARROW_PLACEMENT),  # stored in an object
        ("[i => i]", ARROW_PLACEMENT),
        ("data.xs.map(i => j => j)", ARROW_PLACEMENT),  # returned
        ("data.xs.map((i => i))", ARROW_PLACEMENT),  # not a direct argument
        ("data.xs.map(...[i => i])", ARROW_PLACEMENT),
        ("data.xs.reduce((f, x) => f(f), f => f(f))", ARROW_PLACEMENT),  # not the first argument
        ("data.xs.map(i => i, i => i)", ARROW_PLACEMENT),
        ("data.xs.forEach(i => i)", ARROW_PLACEMENT),  # not one of the six methods
        ("data.xs.flatMap(i => i)", ARROW_PLACEMENT),
        ("data.xs.sort((a, b) => a - b)", ARROW_PLACEMENT),
        ("data.xs['map'](i => i)", ARROW_PLACEMENT),  # only `.map`, written with a dot
        ("map(i => i)", ARROW_PLACEMENT),
        ("data.xs.map(i => { return i })", "body must be an expression, not a { } block"),
        ("data.xs.map(async i => i)", "'async' arrow function is not allowed"),
        ("data.xs.map((i = 1) => i)", "parameters must be plain names"),
        ("data.xs.map(({a}) => a)", "parameters must be plain names"),
        ("data.xs.map(([a]) => a)", "parameters must be plain names"),
        ("data.xs.map((...a) => a)", "parameters must be plain names"),
        ("data.xs.reduce((a, b, c, d, e) => a, 0)", "at most 4 parameters"),
        ("data.xs.map(Date => new Date(1))", "'Date' may not be an arrow function parameter"),
        ("data.xs.map(constructor => 1)", "'constructor' may not be an arrow function"),
        ("data.xs.map(i => i.constructor)", "'constructor' is not allowed"),
        ("data.xs.map(i => i = 1)", "assignment is not allowed"),
        ("data.xs.map(i => (i, 1))", "sequence expression (a, b) is not allowed"),
        ("data.xs.map(i => function () {})", "function is not allowed"),
        ("new Map()", "'new' is not allowed (only new Date(...) is)"),
        ("new Array(3)", "'new' is not allowed (only new Date(...) is)"),
        ("new (Date)()", "'new' is not allowed (only new Date(...) is)"),
        ("new Date.UTC(2020)", "'new' is not allowed (only new Date(...) is)"),
        ("new Date(1, 2, 3, 4, 5, 6, 7, 8)", "new Date(...) takes 0 to 7 arguments"),
        ("new Date(...data.xs)", "new Date(...) takes 0 to 7 arguments"),
    ],
)
def test_forbidden_callbacks_and_constructors(source: str, message: str) -> None:
    problem = forbidden_construct(source)
    assert problem is not None
    assert message in problem
    assert message in error("{{" + source + "}}")  # the evaluator refuses it the same way


def test_a_misplaced_arrow_says_where_arrows_are_allowed() -> None:
    assert forbidden_construct("data.xs.forEach(i => i)") == (
        "an arrow function is not allowed here: it may only be the first argument of "
        ".map, .filter, .some, .every, .find or .reduce (e.g. data.items.map(i => i.sku))"
    )


@pytest.mark.parametrize(
    "source",
    [
        "data.xs.map(i => i * 2)",
        "data.xs.map((i) => i)",
        "data.xs.map(/* doubled */ i => i * 2)",
        "data.xs.reduce((a, b, index, all) => a + b + index + all.length, 0)",
        "new Date",
        "new Date()",
        "new Date(2026, 2, 2, 9, 0, 0, 250)",
        "new Date(data.when).getTime() < Date.now()",
    ],
)
def test_allowed_forms(source: str) -> None:
    assert forbidden_construct(source) is None


def test_an_arrow_cannot_reach_itself() -> None:
    # Strict mode: no `arguments.callee`; and an arrow is never a value an expression holds.
    assert "TypeError" in error("{{ data.xs.map(x => arguments.callee) }}")


# --- the limits still hold ----------------------------------------------------------------------


def test_a_map_callback_over_a_huge_array_hits_the_memory_limit() -> None:
    assert error("{{ Array(1e6).fill(0).map(i => 'x'.repeat(1000)).length }}").endswith(
        ": exceeded 32 MB of memory"
    )


def test_a_slow_callback_hits_the_time_limit() -> None:
    source = "{{ Array(1e6).fill(0).map(i => Array(1000).fill(i).reduce((a, b) => a + b, 0)) }}"
    assert error(source).endswith(": took longer than 500 ms and was stopped")


def test_reduce_building_a_huge_string_is_stopped_with_a_clear_error() -> None:
    message = error("{{ Array(1e6).fill('x').reduce((a, b) => a + b.repeat(100), '').length }}")
    assert message.endswith(
        (": took longer than 500 ms and was stopped", ": exceeded 32 MB of memory")
    )
    doubling = error("{{ Array(100).fill(0).reduce((a, b) => a + a, 'x').length }}")
    assert doubling.endswith(": InternalError: string too long")


def test_arrays_past_the_element_cap_are_refused_before_any_callback_runs() -> None:
    assert "exceeded the limit of 1000000 array elements" in error(
        "{{ Array(2e6).fill(0).map(i => i) }}"
    )


async def test_the_asyncio_evaluator_moves_a_runaway_callback_to_the_pool() -> None:
    evaluator = ExpressionEvaluator(max_workers=1)
    try:
        bomb = Job("{{ Array(1e6).fill(0).map(i => 'x'.repeat(1000)).length }}", "input")
        quick = Job("{{ data.xs.map(x => x + 1) }}", "input")
        [exploded, fine] = await evaluator.evaluate([bomb, quick], DATA, None, now_ms=NOW)
        assert exploded.error is not None
        assert exploded.error.endswith(": exceeded 32 MB of memory")
        assert fine == Outcome([2, 3, 4, 5])
    finally:
        evaluator.close()


# --- Date reads the engine's clock --------------------------------------------------------------


def test_date_reads_the_evaluation_s_now() -> None:
    assert value("{{ Date.now() }}") == NOW
    assert value("{{ new Date().toISOString() }}") == "2026-03-02T09:00:00.250Z"
    assert value("{{ new Date }}") == "2026-03-02T09:00:00.250Z"
    assert value("{{ new Date().getTime() === Date.now() }}") is True
    assert value("{{ Date() }}").startswith("Mon Mar 02 2026")
    assert value("{{ new Date(data.when).getTime() < Date.now() }}") is True
    assert value("{{ new Date(data.later).getTime() < Date.now() }}") is False
    assert value("{{ new Date(0).toISOString() }}") == "1970-01-01T00:00:00.000Z"
    assert value("{{ new Date(Date.UTC(2026, 2, 2)).toISOString() }}") == (
        "2026-03-02T00:00:00.000Z"
    )
    assert value("{{ new Date() instanceof Date }}") is True


def test_no_path_leads_back_to_the_host_s_clock() -> None:
    assert value("{{ Reflect.construct(Date, []).getTime() }}") == NOW
    assert value("{{ Object.isFrozen(Date) && Object.isFrozen(Object.getPrototypeOf(new Date)) }}")
    # Below the whitelist (which refuses `constructor`), the realm itself holds no native Date.
    with Jail({}, None, now_ms=NOW) as jail:
        assert jail.run("Object.getPrototypeOf(new Date()).constructor.now()") == NOW
        assert jail.run("new Date().constructor === Date") is True
        assert jail.run("typeof performance") == "undefined"  # performance.now(): host time
    assert value("{{ typeof performance }}") == "undefined"


def test_each_evaluation_gets_its_own_now_in_the_shared_realm() -> None:
    later = NOW + 2 * 86_400_000
    assert value("{{ Date.now() }}", NOW) == NOW
    assert value("{{ Date.now() }}", later) == later
    assert value("{{ new Date().toISOString() }}", later) == iso_from_ms(later)
    # Within one batch every expression sees the batch's now, host helpers' re-runs included.
    jobs = [("{{ [uuid().length, Date.now()] }}", "input"), ("{{ Date.now() }}", "input")]
    first, second = evaluate_batch(jobs, DATA, None, now_ms=later)
    assert first == Outcome([36, later])
    assert second == Outcome(later)


@pytest.mark.parametrize("inline", [True, False])
async def test_the_asyncio_evaluator_passes_now_on_inline_and_on_the_pool(inline: bool) -> None:
    evaluator = ExpressionEvaluator(max_workers=1, inline=inline)
    try:
        outcomes = await evaluator.evaluate(
            [Job("{{ Date.now() }}", "input")], {}, None, now_ms=NOW
        )
        assert outcomes == [Outcome(NOW)]
        # Inline is best effort (a batch over its budget moves to the pool); inline=False never is.
        assert evaluator.inline_batches + evaluator.pool_batches == 1
        assert inline or evaluator.pool_batches == 1
    finally:
        evaluator.close()


def test_date_follows_the_virtual_clock_of_a_flow_test(tmp_path: Path) -> None:
    """`relayflow test` runs in virtual time: after a two-day Wait, Date.now() is two days on."""
    steps = [
        sms("before", "Started {{ new Date().toISOString() }}", "pause"),
        {
            **wait("pause", "2.00:00:00", "after"),
            "outputs": {
                "resumed": {"at": "{{ new Date().toISOString() }}", "ms": "{{ Date.now() }}"},
                "waitedDays": "{{ (Date.now() - new Date(data.startedAt).getTime()) / 86400000 }}",
            },
        },
        sms(
            "after",
            "Waited {{ data.waitedDays }} days; "
            "{{ new Date(data.dueAt).getTime() < Date.now() ? 'overdue' : 'on time' }}",
        ),
    ]
    start = "2026-03-02T09:00:00Z"
    result = run_document(
        tmp_path,
        {
            "definition": definition(steps),
            "start": start,
            "script": [
                {
                    "do": "http_trigger",
                    "body": {"phone": PHONE, "startedAt": start, "dueAt": "2026-03-03T09:00:00Z"},
                },
                {"do": "advance", "by": "2.00:00:00"},
            ],
            "expect": {
                "outbox": [
                    {"to": PHONE, "text": "Started 2026-03-02T09:00:00.000Z"},
                    {"to": PHONE, "text": "Waited 2 days; overdue"},
                ],
                "instances": [
                    {
                        "status": "Complete",
                        "data": {
                            "resumed": {
                                "at": "2026-03-04T09:00:00.000Z",
                                "ms": ms_from_iso("2026-03-04T09:00:00Z"),
                            },
                            "waitedDays": 2,
                        },
                    }
                ],
            },
        },
    )
    assert result.failures == []
    assert result.completed
