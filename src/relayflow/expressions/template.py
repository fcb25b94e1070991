"""Split strings into literal text and `{{ expression }}` parts.

8x8's rule: a string that is exactly one `{{expr}}` keeps the JavaScript type of the result;
text around expressions makes a string. Parsing is done once, at save time, so a `{{` without
its `}}` is reported with the definition instead of failing at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

OPEN, CLOSE = "{{", "}}"


class TemplateSyntaxError(ValueError):
    """The string has a malformed `{{ }}` part."""


@dataclass(frozen=True)
class Literal:
    text: str


@dataclass(frozen=True)
class Expression:
    source: str  # the JavaScript between the braces, stripped


Part = Literal | Expression


def has_expression(text: str) -> bool:
    return OPEN in text


def contains_expression(value: object) -> bool:
    """Whether a string anywhere inside `value` (dicts and lists, at any depth) has `{{`.

    An output without one is a declaration, not written (DESIGN.md §5). Iterative, so a deeply
    nested definition cannot exhaust Python's stack.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if OPEN in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_template(text: str) -> list[Part]:
    """Return the literal and expression parts of `text`, in order."""
    parts: list[Part] = []
    position = 0
    while True:
        start = text.find(OPEN, position)
        if start < 0:
            if position < len(text):
                parts.append(Literal(text[position:]))
            return parts
        end = text.find(CLOSE, start + len(OPEN))
        if end < 0:
            raise TemplateSyntaxError(f"'{{{{' at character {start + 1} has no matching '}}}}'.")
        if start > position:
            parts.append(Literal(text[position:start]))
        source = text[start + len(OPEN) : end].strip()
        if not source:
            raise TemplateSyntaxError(f"Empty expression '{{{{}}}}' at character {start + 1}.")
        parts.append(Expression(source))
        position = end + len(CLOSE)


def is_single_expression(parts: list[Part]) -> bool:
    """True when the whole string is one `{{expr}}`: the result keeps its JavaScript type."""
    return len(parts) == 1 and isinstance(parts[0], Expression)
