"""The matching rules of `*.flowtest.json` expectations (issue 11, a public contract).

- An expected object matches when every key it names matches, recursively (partial objects:
  authors name only what they care about).
- An expected list matches a list of the same length, element by element.
- Scalars compare as JSON values: `1` equals `1.0`, but `1` is not `"1"` and `true` is not `1`.
- `outbox`, `instances` and `httpCalls` must list exactly as many entries as happened; a key the
  expectation leaves out is not checked.

Differences come back as readable lines with a JSON path, e.g.
`outbox[1].text: expected "Thanks!", got "Thanks"`, so a failing test says which message or
instance, which key, and both values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

EXPECT_KEYS = ("outbox", "instances", "httpCalls")
MAX_SHOWN = 200  # characters of a value shown in a difference
_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")


def child_path(path: str, key: str) -> str:
    """`path.key`, or `path["odd key"]` when the key is not an identifier."""
    if _IDENTIFIER.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def show(value: Any) -> str:
    """A value as JSON text, shortened so one difference stays one readable line."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=False, default=str)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def entries(count: int) -> str:
    return f"{count} entry" if count == 1 else f"{count} entries"


def json_equal(expected: Any, actual: Any) -> bool:
    """Equality of two JSON scalars: numbers by value, booleans only with booleans."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return expected == actual
    return type(expected) is type(actual) and expected == actual


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Every way `actual` fails to match `expected`, one line each (empty when it matches)."""
    where = path or "(value)"
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return [f"{where}: expected an object, got {show(actual)}"]
        found: list[str] = []
        for key, value in expected.items():
            inner = child_path(path, key)
            if key not in actual:
                found.append(f"{inner}: expected {show(value)}, but there is no {show(key)}")
            else:
                found += differences(value, actual[key], inner)
        return found
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{where}: expected a list, got {show(actual)}"]
        return _list_differences(expected, actual, path)
    if isinstance(actual, Mapping | list) or not json_equal(expected, actual):
        return [f"{where}: expected {show(expected)}, got {show(actual)}"]
    return []


def _list_differences(expected: list[Any], actual: list[Any], path: str) -> list[str]:
    """Same length, element by element; on a length mismatch the common part is still compared
    and each missing or unexpected entry is named, so the author sees what to add or remove."""
    found: list[str] = []
    if len(expected) != len(actual):
        found.append(f"{path or '(value)'}: expected {entries(len(expected))}, got {len(actual)}")
    for index, (want, got) in enumerate(zip(expected, actual, strict=False)):
        found += differences(want, got, f"{path}[{index}]")
    for index in range(len(actual), len(expected)):
        found.append(f"{path}[{index}]: expected {show(expected[index])}, but it did not happen")
    for index in range(len(expected), len(actual)):
        found.append(f"{path}[{index}]: not expected: {show(_summary(actual[index]))}")
    return found


def _summary(entry: Any) -> Any:
    """An unexpected entry without its bulkiest parts (the raw 8x8 request, HTTP headers)."""
    if isinstance(entry, Mapping):
        return {k: v for k, v in entry.items() if k not in ("request", "headers", "workflowId")}
    return entry


def check_expectation(expect: Mapping[str, Any], state: Mapping[str, list[Any]]) -> list[str]:
    """An `expect` object against what happened (`outbox`, `instances`, `httpCalls` lists)."""
    found: list[str] = []
    for key in EXPECT_KEYS:
        if key in expect and expect[key] is not None:
            found += differences(expect[key], state.get(key, []), key)
    return found
