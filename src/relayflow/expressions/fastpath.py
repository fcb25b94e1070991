"""Expressions that need no JavaScript engine: plain property paths (`{{data.payload.source}}`,
`{{step.umid}}`), literals and the constant conditions. They are the large majority in real
definitions; evaluating them in Python saves a QuickJS run (~0.5 ms) per step.

Anything this module is not sure about — an operator, a call, a missing intermediate object
(a TypeError in JavaScript), a number to format — returns `NOT_FAST`, and the caller evaluates
the whole group in the jail, so results never differ from the JavaScript ones.
"""

from __future__ import annotations

import re
from typing import Any, Final

from relayflow.expressions.evaluate import MAX_INPUT_DEPTH, SKIP
from relayflow.expressions.template import (
    Expression,
    Literal,
    TemplateSyntaxError,
    contains_expression,
    parse_template,
)


class _NotFast:
    pass


NOT_FAST: Final = _NotFast()
_PATH = re.compile(r"^(data|step)((?:\.[A-Za-z_$][A-Za-z0-9_$]*)*)$")
_UNSAFE_NAMES = frozenset({"__proto__", "constructor", "prototype"})
_CONSTANTS = {"true": True, "false": False}
_MAX_SAFE_INTEGER = 2**53 - 1


def _lookup(source: str, data: Any, step: Any) -> Any:
    match = _PATH.match(source.strip())
    if match is None:
        return NOT_FAST
    names = match.group(2).split(".")[1:]
    if _UNSAFE_NAMES.intersection(names):
        return NOT_FAST
    current = data if match.group(1) == "data" else step
    for index, name in enumerate(names):
        if not isinstance(current, dict):
            return NOT_FAST  # null/undefined (TypeError) or a string/array property: let JS say
        if name not in current:
            return None if index == len(names) - 1 else NOT_FAST
        current = current[name]
    if (
        isinstance(current, int)
        and not isinstance(current, bool)
        and abs(current) > _MAX_SAFE_INTEGER
    ):
        return NOT_FAST  # JavaScript numbers would round it
    return current


def _interpolated(value: Any) -> str | _NotFast:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    return NOT_FAST  # floats and objects: JavaScript's own formatting


def _template(text: str, data: Any, step: Any) -> Any:
    if "{{" not in text:
        return text
    try:
        parts = parse_template(text)
    except TemplateSyntaxError:
        return NOT_FAST
    if len(parts) == 1 and isinstance(parts[0], Expression):
        return _lookup(parts[0].source, data, step)
    pieces: list[str] = []
    for part in parts:
        if isinstance(part, Literal):
            pieces.append(part.text)
            continue
        value = _lookup(part.source, data, step)
        if value is NOT_FAST:
            return NOT_FAST
        text_value = _interpolated(value)
        if isinstance(text_value, _NotFast):
            return NOT_FAST
        pieces.append(text_value)
    return "".join(pieces)


def _nested(value: Any, data: Any, step: Any, depth: int = 0) -> Any:
    """`value` with its templates evaluated at any depth, or NOT_FAST if any one is not fast
    (or the value is nested too deep: the jail reports that)."""
    if depth > MAX_INPUT_DEPTH:
        return NOT_FAST
    if isinstance(value, str):
        return _template(value, data, step)
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            evaluated = _nested(item, data, step, depth + 1)
            if evaluated is NOT_FAST:
                return NOT_FAST
            result[key] = evaluated
        return result
    if isinstance(value, list):
        items = [_nested(item, data, step, depth + 1) for item in value]
        return NOT_FAST if any(item is NOT_FAST for item in items) else items
    return value


def input_value(value: Any, data: Any) -> Any:
    """An input, evaluated recursively, or NOT_FAST."""
    return _nested(value, data, None)


def output_value(value: Any, data: Any, step: Any) -> Any:
    """An output's value, evaluated recursively like an input; SKIP for a declaration
    (no {{ }} anywhere inside); or NOT_FAST (a tolerant read, among others, is left to the
    jail, which knows how to warn about it)."""
    if not contains_expression(value):
        return SKIP
    return _nested(value, data, step)


def js_truthy(value: Any) -> bool:
    if isinstance(value, dict | list):
        return True  # objects and arrays are truthy in JavaScript, even empty ones
    if isinstance(value, float) and value != value:  # NaN
        return False
    return bool(value)


def condition_value(value: Any, data: Any, step: Any) -> Any:
    """True/False, None for the default branch, or NOT_FAST."""
    if value is None or isinstance(value, bool):
        return value
    if not isinstance(value, str):
        return NOT_FAST
    constant = _CONSTANTS.get(value.strip().lower())
    if constant is not None:
        return constant
    try:
        parts = parse_template(value)
    except TemplateSyntaxError:
        return NOT_FAST
    if len(parts) != 1 or not isinstance(parts[0], Expression):
        return NOT_FAST
    found = _lookup(parts[0].source, data, step)
    return NOT_FAST if found is NOT_FAST else js_truthy(found)
