"""Small checks for hand-written JSON that collect problems with their JSON paths instead of
stopping at the first one: an author should see every mistake of a file in one run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from relayflow.testing.matching import child_path


def describe(value: Any) -> str:
    """What a JSON value is, in words ("a string", "an array", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


class Checker:
    """Collects (JSON path, message) problems."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append((path, message))

    def only_keys(self, obj: dict[str, Any], path: str, allowed: Sequence[str]) -> None:
        """Unknown keys are problems: a misspelt key would otherwise be silently ignored."""
        for key in obj:
            if key not in allowed:
                self.add(
                    child_path(path, key), f"unknown key; expected one of: {', '.join(allowed)}"
                )

    def object(self, value: Any, path: str) -> dict[str, Any] | None:
        if isinstance(value, dict):
            return value
        self.add(path, f"must be an object, not {describe(value)}")
        return None

    def array(self, value: Any, path: str) -> list[Any] | None:
        if isinstance(value, list):
            return value
        self.add(path, f"must be an array, not {describe(value)}")
        return None

    def string(
        self,
        obj: dict[str, Any],
        key: str,
        path: str,
        *,
        required: bool,
        nullable: bool = False,
    ) -> str | None:
        """`obj[key]` as a non-empty string; None when absent (a problem if required)."""
        where = child_path(path, key)
        if key not in obj:
            if required:
                self.add(where, "is required")
            return None
        value = obj[key]
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            kind = "a string or null" if nullable else "a string"
            self.add(where, f"must be {kind}, not {describe(value)}")
            return None
        if not value.strip():
            self.add(where, "must not be empty")
            return None
        return value

    def true(self, obj: dict[str, Any], key: str, path: str) -> None:
        """Flags like `{"timeout": true}` exist only as `true`."""
        if obj.get(key) is not True:
            self.add(child_path(path, key), f"must be true, not {describe(obj.get(key))}")
