"""Parse untrusted JSON documents: bounded nesting, clear messages, never an exception leak."""

from __future__ import annotations

from typing import Any

import orjson

MAX_NESTING = 100


class JsonBodyError(ValueError):
    """The document is not acceptable JSON; the message is safe to show the client."""


def parse_json_object(raw: bytes | str, *, what: str = "Request body") -> dict[str, Any]:
    if not raw or not raw.strip():
        raise JsonBodyError(f"{what} is empty; send a JSON object.")
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise JsonBodyError(f"{what} is not valid JSON: {error}.") from None
    if not isinstance(document, dict):
        raise JsonBodyError(f"{what} must be a JSON object, not {_kind(document)}.")
    depth = nesting_depth(document)
    if depth > MAX_NESTING:
        raise JsonBodyError(f"{what} is nested {depth} levels deep; the limit is {MAX_NESTING}.")
    return document


def nesting_depth(document: Any) -> int:
    """Depth of nested arrays/objects, computed without recursion (hostile input is deep)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in node)
    return deepest


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
