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
    depth, has_nul = scan(document)
    if depth > MAX_NESTING:
        raise JsonBodyError(f"{what} is nested {depth} levels deep; the limit is {MAX_NESTING}.")
    if has_nul:
        # PostgreSQL cannot store NUL in text; refuse it up front on both databases alike.
        raise JsonBodyError(f"{what} contains a NUL character (\\u0000), which is not allowed.")
    return document


def scan(document: Any) -> tuple[int, bool]:
    """(nesting depth, whether any key or string holds NUL), without recursion: hostile input
    is deep."""
    deepest = 0
    has_nul = False
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            deepest = max(deepest, depth)
            has_nul = has_nul or any("\x00" in key for key in node)
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in node)
        elif isinstance(node, str) and "\x00" in node:
            has_nul = True
    return deepest, has_nul


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
