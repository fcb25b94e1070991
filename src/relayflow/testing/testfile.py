"""`*.flowtest.json` files (issue 11's format, a public contract): find, load, validate.

Authors write these by hand, so a file is checked completely before anything runs and every
problem is reported at once, each with the file and its JSON path
(`survey.flowtest.json: script[3].by: ...`). The result is typed (`FlowTest`); the runner never
looks at raw JSON again, except the document kept for `--update`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relayflow.config import Settings
from relayflow.model.validation import validate_definition_input
from relayflow.services.accounts import ACCOUNT_ID_PATTERN
from relayflow.testing.checks import Checker, describe
from relayflow.testing.environment import (
    DEFAULT_ACCOUNT,
    DEFAULT_START,
    FlowTestError,
    parse_instant,
)
from relayflow.testing.mockspec import MockSpec, check_mocks
from relayflow.testing.script import Action, Expectation, check_expectation_object, check_script

SUFFIX = ".flowtest.json"
TOP_LEVEL_KEYS = ("name", "definition", "account", "start", "mocks", "script", "expect")


class FlowTestFileError(Exception):
    """A test file that cannot be run as written: each problem is (JSON path, message)."""

    def __init__(self, file: str, problems: list[tuple[str, str]]) -> None:
        self.file = file
        self.problems = problems
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(
            f"{self.file}: {path}: {message}" if path else f"{self.file}: {message}"
            for path, message in self.problems
        )


@dataclass(frozen=True)
class FlowTest:
    """One loaded and valid test file."""

    file: Path
    name: str
    definition: dict[str, Any]
    definition_file: Path | None  # set when `definition` names a file
    account: str
    start: str
    mocks: MockSpec
    script: tuple[Action, ...]
    expect: Expectation | None
    document: dict[str, Any] = field(repr=False)  # the file as read, for `--update`


def find_test_files(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and every `*.flowtest.json` under directories (recursively), each
    directory's in sorted order, no file twice. A missing path raises `FlowTestFileError`."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob(f"*{SUFFIX}") if p.is_file())
        elif path.is_file():
            found.append(path)
        else:
            raise FlowTestFileError(str(path), [("", "no such file or directory")])
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def load_test_file(file: Path) -> FlowTest:
    """Read and validate one test file; raises `FlowTestFileError` listing every problem."""
    document = read_json_object(file, str(file))
    checker = Checker()
    checker.only_keys(document, "", TOP_LEVEL_KEYS)
    name = checker.string(document, "name", "", required=False) or file.name
    definition, definition_file = _definition(document, file, checker)
    account = checker.string(document, "account", "", required=False) or DEFAULT_ACCOUNT
    if "account" in document and not ACCOUNT_ID_PATTERN.match(account):
        checker.add(
            "account", "use 1-100 letters, digits, '_', '.', '-', starting with a letter or digit"
        )
    start = _start(document, checker)
    mocks = check_mocks(document.get("mocks"), "mocks", checker)
    script = check_script(document.get("script"), "script", checker)
    expect = None
    if "expect" in document:
        expect = check_expectation_object(document["expect"], "expect", checker)
    if checker.problems:
        raise FlowTestFileError(str(file), checker.problems)
    return FlowTest(
        file=file,
        name=name,
        definition=definition,
        definition_file=definition_file,
        account=account,
        start=start,
        mocks=mocks,
        script=tuple(script),
        expect=expect,
        document=document,
    )


def read_json_object(file: Path, label: str) -> dict[str, Any]:
    """A JSON object from a file; unreadable files and JSON errors name the file and place."""
    try:
        raw = file.read_bytes()
    except OSError as error:
        raise FlowTestFileError(label, [("", f"cannot read: {error.strerror or error}")]) from None
    try:
        document = json.loads(raw, parse_constant=_no_constants)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError too
        raise FlowTestFileError(label, [("", f"not valid JSON: {error}")]) from None
    if not isinstance(document, dict):
        raise FlowTestFileError(label, [("", f"must hold a JSON object, not {describe(document)}")])
    return document


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _definition(
    document: dict[str, Any], file: Path, checker: Checker
) -> tuple[dict[str, Any], Path | None]:
    """The definition body, inline or from a file relative to the test file, validated by the
    same validator as `POST /definitions` (an invalid flow makes the test file invalid)."""
    value = document.get("definition")
    if value is None:
        checker.add("definition", "is required: the body of POST /definitions, or a file path")
        return {}, None
    if isinstance(value, str):
        target = file.parent / value
        try:
            body = read_json_object(target, value)
        except FlowTestFileError as error:
            for _, message in error.problems:
                checker.add("definition", f"{value}: {message}")
            return {}, target
        for where, message in _definition_problems(body):
            checker.add("definition", f"{value}: {where}: {message}")
        return body, target
    if isinstance(value, dict):
        for where, message in _definition_problems(value):
            checker.add(f"definition.{where}" if where else "definition", message)
        return value, None
    checker.add(
        "definition",
        f"must be an object (the body of POST /definitions) or a file path, not {describe(value)}",
    )
    return {}, None


def _definition_problems(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(JSON path inside the body, message) of every problem `POST /definitions` would report,
    under the limits configured for the run (`RELAYFLOW_LIMITS__*`), as `flows validate`."""
    limits = Settings().limits
    return [
        (problem.path, f"{problem.message} (code {int(problem.code)})")
        for problem in validate_definition_input(body, limits).problems
    ]


def _start(document: dict[str, Any], checker: Checker) -> str:
    start = checker.string(document, "start", "", required=False)
    if start is None:
        return DEFAULT_START
    try:
        parse_instant(start)
    except FlowTestError:
        checker.add(
            "start",
            f"{json.dumps(start)} is not an ISO-8601 date and time, e.g. 2026-03-02T09:00:00Z",
        )
    return start
