"""Field types of step inputs: a literal of the documented type, or a `{{ }}` expression.

Every input "can be dynamically computed using JavaScript expressions", so each typed field also
accepts an expression string; literals are checked at save time, expressions at run time. The
validators raise `PydanticCustomError`s whose *type* names the relayflow error code
(`model.validation` maps them), so pydantic reports every problem in one pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any

from pydantic import PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from relayflow.expressions.template import has_expression
from relayflow.model.timespan import TimespanError, parse_positive_timespan

EXPRESSION_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": r"\{\{.*\}\}",
    "description": "A `{{ JavaScript }}` expression evaluated when the step runs.",
}


def invalid_type(expected: str) -> PydanticCustomError:
    return PydanticCustomError("invalid_type", "must be {expected}", {"expected": expected})


def _text(value: Any) -> str:
    # 8x8's .NET backend converts JSON numbers to strings for string inputs; so do we.
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise invalid_type("a string")


def _integer_or_expression(value: Any) -> int | str:
    if isinstance(value, bool):
        raise invalid_type("an integer or an expression")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        if has_expression(value):
            return value
        stripped = value.strip()
        if stripped.lstrip("-").isdigit():
            return int(stripped)
    raise invalid_type("an integer or an expression")


def _object_or_expression(value: Any) -> dict[str, Any] | str:
    if isinstance(value, dict) or (isinstance(value, str) and has_expression(value)):
        return value
    raise invalid_type("an object or an expression")


def _timespan_or_expression(value: Any) -> str:
    text = _text(value)
    if has_expression(text):
        return text
    try:
        parse_positive_timespan(text)
    except TimespanError as error:
        raise PydanticCustomError("invalid_timespan", str(error)) from None
    return text.strip()


def enum_or_expression(values: Iterable[str]) -> Callable[[Any], str]:
    """Accept one of `values` (any letter case; returned canonical) or an expression."""
    canonical = {value.lower(): value for value in values}
    allowed = ", ".join(canonical.values())

    def validate(value: Any) -> str:
        text = _text(value)
        if has_expression(text):
            return text
        found = canonical.get(text.strip().lower())
        if found is None:
            raise PydanticCustomError(
                "invalid_enum",
                "'{value}' is not one of: {allowed}",
                {"value": text, "allowed": allowed},
            )
        return found

    return validate


def enum_schema(values: Iterable[str], description: str) -> dict[str, Any]:
    return {
        "anyOf": [{"type": "string", "enum": list(values)}, EXPRESSION_SCHEMA],
        "description": description,
    }


Text = Annotated[str, PlainValidator(_text), WithJsonSchema({"type": "string"})]
IntegerOrExpression = Annotated[
    int | str,
    PlainValidator(_integer_or_expression),
    WithJsonSchema({"anyOf": [{"type": "integer"}, EXPRESSION_SCHEMA]}),
]
ObjectOrExpression = Annotated[
    dict[str, Any] | str,
    PlainValidator(_object_or_expression),
    WithJsonSchema({"anyOf": [{"type": "object"}, EXPRESSION_SCHEMA]}),
]
Timespan = Annotated[
    str,
    PlainValidator(_timespan_or_expression),
    WithJsonSchema(
        {
            "type": "string",
            "description": "Timespan `[d.]hh:mm:ss` (e.g. `1.06:30:15`), a whole number of days "
            "(`2`), or an expression.",
            "examples": ["00:05:00", "1.00:00:00", "2"],
        }
    ),
]
