"""`relayflow test PATH...`: find, validate, run and report flow tests; the exit code for CI.

Exit codes: 0 every selected test passed; 1 a test failed; 2 a path or test file is unreadable
or invalid. Every file is validated before any test runs, and every invalid file is reported:
a broken file means a broken suite, and a partial run's result could not say so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

from relayflow.testing.report import junit_xml, text_report
from relayflow.testing.runner import FlowTestResult, run_flow_test
from relayflow.testing.testfile import (
    SUFFIX,
    FlowTest,
    FlowTestFileError,
    find_test_files,
    load_test_file,
)
from relayflow.testing.update import write_update

PASSED, FAILED, INVALID = 0, 1, 2

Echo = Callable[[str], None]


def run_command(
    paths: Sequence[Path],
    *,
    keyword: str | None,
    junit: Path | None,
    update: bool,
    out: Echo,
    err: Echo,
) -> int:
    """Everything `relayflow test` does; returns the exit code."""
    try:
        files = find_test_files(paths)
    except FlowTestFileError as error:
        err(f"error: {error}")
        return INVALID
    if not files:
        err(f"error: no {SUFFIX} files in {', '.join(str(p) for p in paths)}")
        return INVALID
    tests, invalid = _load(files)
    for problem in invalid:
        err(str(problem))
    if invalid:
        err(f"error: {len(invalid)} invalid test file(s); no test was run")
        return INVALID
    selected = [test for test in tests if selects(keyword, test)]
    results = asyncio.run(_run_all(selected, update=update))
    notes = [f"{len(tests) - len(selected)} deselected by -k"] if keyword is not None else []
    if update:
        notes += [f"updated {r.test.file}" for r in results if r.completed and write_update(r)]
    for line in text_report(results, notes=notes):
        out(line)
    if junit is not None:
        try:
            junit.write_bytes(junit_xml(results))
        except OSError as error:
            err(f"error: cannot write {junit}: {error.strerror or error}")
            return INVALID
    return PASSED if all(result.passed for result in results) else FAILED


def selects(keyword: str | None, test: FlowTest) -> bool:
    """`-k`: a case-insensitive substring of the test's name or of its file's name."""
    if keyword is None:
        return True
    wanted = keyword.casefold()
    return wanted in test.name.casefold() or wanted in test.file.name.casefold()


def _load(files: list[Path]) -> tuple[list[FlowTest], list[FlowTestFileError]]:
    tests: list[FlowTest] = []
    invalid: list[FlowTestFileError] = []
    for file in files:
        try:
            tests.append(load_test_file(file))
        except FlowTestFileError as error:
            invalid.append(error)
    return tests, invalid


async def _run_all(tests: list[FlowTest], *, update: bool) -> list[FlowTestResult]:
    """One after another: each test has its own engine and clock, and output stays in order."""
    return [await run_flow_test(test, check_final=not update) for test in tests]
