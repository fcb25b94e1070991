"""The syntax whitelist: one side-effect-free expression, nothing else."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relayflow.expressions.whitelist import forbidden_construct

ALLOWED = [
    "data.reply != null",
    "step.reply.payload.body",
    "data['test']['key']",
    "data.errors[0]",
    "data.a?.b?.[0]?.c ?? 'none'",
    "data.f?.()",
    "step.responseCode == '200'",
    "!data.x && (data.y || data.z)",
    "data.n > 1 ? 'many' : 'one'",
    "`umid: ${data.umid}`",
    "'umid: ' + data.umid",
    "[1, 'two', null, true, undefined, ...data.list]",
    "({a: 1, 'b': 2, [data.k]: 3, data, ...data.o})",
    "{a: 1}",
    "typeof data.x === 'undefined'",
    "void 0",
    "-data.n + +data.m * 2 ** 3 % 5",
    "~data.bits | 1 & 2 ^ 3 << 1 >> 1 >>> 0",
    "'k' in data",
    "data.list instanceof Array",
    "/^hi\\b/i.test(data.text)",
    "data.text.toLowerCase().includes('stop')",
    "isCountryCode(data.from, 'SG')",
    "stringContains(data.text, 'yes', true)",
    "isTimeOfDayBetween(data.t, '09:00:00', '18:00:00', 'Singapore Standard Time')",
    "isDayOfWeek('2021-05-25', 'Tuesday')",
    "uuid()",
    "Math.max(1, 2)",
    "JSON.stringify(data)",
    "String.raw`a\\nb`",
    "'x' /* a comment */ + 1 // and a line comment",
    "0x1f + 1n + 1e3 + .5",
    "data.prototypeName + data.constructorId",
]


@pytest.mark.parametrize("source", ALLOWED)
def test_allowed(source: str) -> None:
    assert forbidden_construct(source) is None


FORBIDDEN = [
    ("x = 1", "assignment is not allowed"),
    ("data.x = 1", "assignment is not allowed"),
    ("x += 1", "assignment is not allowed"),
    ("a ||= b", "assignment is not allowed"),
    ("x++", "increment/decrement"),
    ("--x", "increment/decrement"),
    ("delete data.x", "'delete' is not allowed"),
    ("new Map()", "'new' is not allowed"),
    ("function () { return 1 }", "function is not allowed"),
    ("x => x", "arrow function is not allowed"),
    ("async () => 1", "arrow function is not allowed"),
    ("(() => { while (true) {} })()", "arrow function is not allowed"),
    ("data.list.forEach(x => x * 2)", "arrow function is not allowed"),
    ("({ get a() { return 1 } })", "method definition is not allowed"),
    ("class {}", "class is not allowed"),
    ("yield x", "'yield' is not allowed"),
    ("await x", "'await' is not allowed"),
    ("a, b", "sequence expression"),
    ("a; b", "statements are not allowed"),
    ("a;", "statements are not allowed"),
    ("if (a) b", "statements are not allowed"),
    ("throw 1", "statements are not allowed"),
    ("try { a } catch (e) {}", "statements are not allowed"),
    ("while (true) {}", "loop is not allowed"),
    ("for (;;) {}", "loop is not allowed"),
    ("do {} while (1)", "loop is not allowed"),
    ("var x = 1", "declaration is not allowed"),
    ("let x = 1", "declaration is not allowed"),
    ("import('os')", "import is not allowed"),
    ("import.meta", "import.meta"),
    ("this", "'this' is not allowed"),
    ("super.x", "'super' is not allowed"),
    ("eval('1')", "'eval' is not allowed"),
    ("Function('return 1')()", "'Function' is not allowed"),
    ("''.constructor.constructor('return this')()", "'constructor' is not allowed"),
    ("data.__proto__", "'__proto__' is not allowed"),
    ("Object.prototype", "'prototype' is not allowed"),
    ("data['constructor']", "'constructor' is not allowed"),
    ("data['con\\x73tructor']", "'constructor' is not allowed"),
    ("data['\\u{5f}_proto__']", "'__proto__' is not allowed"),
    ("data[`prototype`]", "'prototype' is not allowed"),
    ("({'__proto__': null})", "'__proto__' is not allowed"),
    ("({['constructor']: 1})", "'constructor' is not allowed"),
    ("({}).__defineGetter__", "'__defineGetter__' is not allowed"),
    ("1\n); globalThis.x = (2", "statements are not allowed"),
    ("1) + (2", None),  # balanced after wrapping: harmless and allowed
]


@pytest.mark.parametrize(("source", "message"), FORBIDDEN)
def test_forbidden(source: str, message: str | None) -> None:
    problem = forbidden_construct(source)
    if message is None:
        assert problem is None
    else:
        assert problem is not None
        assert message in problem


@pytest.mark.parametrize("source", ["a +", "(a", "a)", "{", "'open", "a b", "1 +* 2"])
def test_syntax_errors_are_reported(source: str) -> None:
    problem = forbidden_construct(source)
    assert problem is not None
    assert problem.startswith("invalid JavaScript")


def test_unpaired_surrogates_are_invalid() -> None:
    assert forbidden_construct("'\ud800'") == (
        "invalid JavaScript: the expression contains an unpaired surrogate"
    )


@pytest.mark.parametrize("source", ["", "   ", "\n"])
def test_empty_expression(source: str) -> None:
    assert forbidden_construct(source) == "empty expression"


def test_long_sources_are_checked_without_caching() -> None:
    long_allowed = " + ".join(["data.x"] * 1000)
    assert forbidden_construct(long_allowed) is None
    assert forbidden_construct(long_allowed + " + (y = 1)") == "assignment is not allowed"


def test_threads_can_check_at_once() -> None:
    # Distinct sources so the cache does not hide the parser: each thread parses for real.
    sources = [f"data.v{i} == {i}" if i % 2 else f"data.v{i} = {i}" for i in range(400)]
    expected = [None if i % 2 else "assignment is not allowed" for i in range(400)]
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(forbidden_construct, sources)) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_gets_an_answer(source: str) -> None:
    problem = forbidden_construct(source)
    assert problem is None or (isinstance(problem, str) and problem)
