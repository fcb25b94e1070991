"""Where a validation problem is in the text the user typed: JSON paths to line numbers.

The validator reports paths on the canonical form (`definition.steps[0].inputs.text`), while
the editor holds the user's own text, formatted and spelled their way (8x8 accepts keys in any
case). This scanner walks the text once and records the line each path starts on; keys are
compared case-insensitively. It never raises: text that is not JSON yields what it could read.
"""

from __future__ import annotations

import contextlib
import json
import re

_WHITESPACE = re.compile(r"[ \t\r\n]*")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_SCALAR = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null")
MAX_DEPTH = 200


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0
        self.lines: dict[str, int] = {}

    def line(self) -> int:
        return self.text.count("\n", 0, self.at) + 1

    def skip(self) -> None:
        match = _WHITESPACE.match(self.text, self.at)
        if match:
            self.at = match.end()

    def value(self, path: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ValueError("too deep")
        self.skip()
        self.lines.setdefault(path, self.line())
        char = self.text[self.at : self.at + 1]
        if char == "{":
            self.object(path, depth)
        elif char == "[":
            self.array(path, depth)
        elif char == '"':
            self.string()
        else:
            match = _SCALAR.match(self.text, self.at)
            if not match:
                raise ValueError("not JSON")
            self.at = match.end()

    def string(self) -> str:
        match = _STRING.match(self.text, self.at)
        if not match:
            raise ValueError("unterminated string")
        self.at = match.end()
        decoded: str = json.loads(match.group(0))
        return decoded

    def object(self, path: str, depth: int) -> None:
        self.at += 1
        self.skip()
        if self.text.startswith("}", self.at):
            self.at += 1
            return
        while True:
            self.skip()
            key_line = self.line()
            key = self.string().lower()
            child = f"{path}.{key}" if path else key
            self.lines.setdefault(child, key_line)
            self.skip()
            if not self.text.startswith(":", self.at):
                raise ValueError("expected ':'")
            self.at += 1
            self.value(child, depth + 1)
            self.skip()
            if self.text.startswith(",", self.at):
                self.at += 1
                continue
            if self.text.startswith("}", self.at):
                self.at += 1
                return
            raise ValueError("expected ',' or '}'")

    def array(self, path: str, depth: int) -> None:
        self.at += 1
        self.skip()
        if self.text.startswith("]", self.at):
            self.at += 1
            return
        index = 0
        while True:
            self.value(f"{path}[{index}]", depth + 1)
            index += 1
            self.skip()
            if self.text.startswith(",", self.at):
                self.at += 1
                continue
            if self.text.startswith("]", self.at):
                self.at += 1
                return
            raise ValueError("expected ',' or ']'")


def path_lines(text: str) -> dict[str, int]:
    """Lower-cased JSON path (`definition.steps[0].inputs.text`) → 1-based line number."""
    scanner = _Scanner(text)
    with contextlib.suppress(ValueError, IndexError, RecursionError):
        scanner.value("", 0)
    return scanner.lines


def line_of(lines: dict[str, int], path: str) -> int | None:
    """The line of `path`, or of its nearest ancestor the text has (a missing key is
    reported at the object that lacks it)."""
    candidate = path.lower()
    while candidate:
        if candidate in lines:
            return lines[candidate]
        cut = max(candidate.rfind("."), candidate.rfind("["))
        candidate = candidate[:cut] if cut > 0 else ""
    return lines.get("")
