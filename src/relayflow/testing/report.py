"""How `relayflow test` reports: pytest-like text for people, JUnit XML for CI systems.

Text: one `PASSED name` / `FAILED name` line per test, then for each failure its file, every
difference (which message or instance, which key, expected and actual) and what actually
happened, and last the line `N passed, M failed`.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from relayflow.testing.runner import FlowTestResult

RULE_WIDTH = 72
MAX_TEXT = 160  # characters of a message text or of `data` shown in the transcript


def status_line(result: FlowTestResult) -> str:
    return f"{'PASSED' if result.passed else 'FAILED'} {result.name}"


def summary_line(results: Sequence[FlowTestResult]) -> str:
    passed = sum(1 for result in results if result.passed)
    return f"{passed} passed, {len(results) - passed} failed"


def failure_account(result: FlowTestResult) -> list[str]:
    """Everything needed to see why a test failed without re-running it."""
    lines = [f" {result.name} ".center(RULE_WIDTH, "_"), str(result.test.file)]
    for failure in result.failures:
        first, *rest = failure.splitlines() or [""]
        lines.append(f"  {first}")
        lines += [f"    {line}" for line in rest]
    lines.append("  what happened:")
    lines += [f"    {line}" for line in transcript(result)]
    return lines


def transcript(result: FlowTestResult) -> list[str]:
    """The actual outbox, instances and HTTP calls, one short line each."""
    lines = [f"outbox: {_count(result.outbox)}"]
    for index, message in enumerate(result.outbox):
        lines.append(
            f"  [{index}] {message.get('channel')} to {message.get('to')}: "
            f"{_short(message.get('text'))}"
        )
    lines.append(f"instances: {_count(result.instances)}")
    for index, instance in enumerate(result.instances):
        errors = "".join(
            f"; error at {error.get('step')}: {error.get('message')}"
            for error in instance.get("errors") or []
        )
        lines.append(
            f"  [{index}] {instance.get('status')}, data {_short(instance.get('data'))}{errors}"
        )
    lines.append(f"httpCalls: {_count(result.http_calls)}")
    for index, call in enumerate(result.http_calls):
        lines.append(f"  [{index}] {call.get('method')} {call.get('url')}")
    return lines


def text_report(results: Sequence[FlowTestResult], *, notes: Sequence[str] = ()) -> list[str]:
    """The whole text output; `notes` (deselected tests, updated files) come before the
    summary, which is always the last line."""
    lines = [status_line(result) for result in results]
    failed = [result for result in results if not result.passed]
    if failed:
        lines += ["", " FAILURES ".center(RULE_WIDTH, "=")]
        for result in failed:
            lines += failure_account(result)
        lines.append("")
    lines += notes
    lines.append(summary_line(results))
    return lines


def junit_xml(results: Sequence[FlowTestResult]) -> bytes:
    """A JUnit XML document (one `testsuite`; each failure's lines in its `failure` element)."""
    failures = sum(1 for result in results if not result.passed)
    total_time = f"{sum(result.duration_s for result in results):.3f}"
    counts = {"tests": str(len(results)), "failures": str(failures), "errors": "0"}
    root = ET.Element("testsuites", {**counts, "time": total_time})
    suite = ET.SubElement(
        root, "testsuite", {"name": "relayflow", **counts, "skipped": "0", "time": total_time}
    )
    for result in results:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": _classname(result.test.file),
                "name": result.name,
                "file": str(result.test.file),
                "time": f"{result.duration_s:.3f}",
            },
        )
        if not result.passed:
            failure = ET.SubElement(
                case, "failure", {"message": result.failures[0].splitlines()[0]}
            )
            failure.text = "\n".join([*result.failures, "", *transcript(result)])
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def _classname(file: Path) -> str:
    """The file as a dotted name, as CI systems group test cases by class."""
    name = file.name.removesuffix(".json").removesuffix(".flowtest")
    parts = [*file.parent.parts, name] if str(file.parent) != "." else [name]
    return ".".join(part for part in parts if part not in ("/", "..", "."))


def _count(items: Sequence[Any]) -> str:
    return "none" if not items else f"{len(items)}"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
