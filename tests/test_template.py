import pytest

from relayflow.expressions.template import (
    Expression,
    Literal,
    TemplateSyntaxError,
    is_single_expression,
    parse_template,
)


def test_plain_text_is_one_literal() -> None:
    assert parse_template("Hello, world!") == [Literal("Hello, world!")]
    assert parse_template("") == []


def test_single_expression_keeps_its_type() -> None:
    parts = parse_template("{{ step.reply != null }}")
    assert parts == [Expression("step.reply != null")]
    assert is_single_expression(parts)


def test_interpolation_mixes_text_and_expressions() -> None:
    parts = parse_template("umid: {{data.umid}} at {{data.t}}!")
    assert parts == [
        Literal("umid: "),
        Expression("data.umid"),
        Literal(" at "),
        Expression("data.t"),
        Literal("!"),
    ]
    assert not is_single_expression(parts)


def test_stray_closing_braces_are_text() -> None:
    assert parse_template("a }} b") == [Literal("a }} b")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{data.x", "no matching"),
        ("ok {{ a }} then {{ b", "no matching"),
        ("{{}}", "Empty expression"),
        ("{{   }}", "Empty expression"),
    ],
)
def test_malformed_templates(text: str, message: str) -> None:
    with pytest.raises(TemplateSyntaxError, match=message):
        parse_template(text)
