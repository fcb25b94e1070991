"""Presentation helpers for the console: pure functions from service results to what templates
show (pretty JSON, diffs, durations, query filters). No I/O here."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any

from relayflow.audit import AuditEvent
from relayflow.clock import iso_from_ms, ms_from_iso
from relayflow.engine.contacts import phone_digits
from relayflow.store.definitions import DefinitionRow

INSTANCE_STATUSES = ("Runnable", "Suspended", "Complete", "Terminated")
FAILURE_EVENTS = (
    AuditEvent.STEP_FAILED,
    AuditEvent.INSTANCE_TERMINATED,
    AuditEvent.STEP_RETRY_SCHEDULED,
    AuditEvent.WARNING,
)
MAX_DIFF_LINES = 4000


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def definition_body(row: DefinitionRow) -> dict[str, Any]:
    """What the editor shows and saves: the create/update body of this version."""
    return {
        "trigger": row.trigger,
        "status": row.status,
        "subAccountId": row.sub_account_id,
        "definition": {"name": row.name, "steps": row.steps},
    }


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "add", "del", "ctx", "hunk"
    text: str


def diff_versions(old: DefinitionRow, new: DefinitionRow) -> list[DiffLine]:
    """A unified diff of two versions' bodies, pretty-printed the same way."""
    before = pretty(definition_body(old)).splitlines()
    after = pretty(definition_body(new)).splitlines()
    lines: list[DiffLine] = []
    for line in difflib.unified_diff(
        before, after, f"version {old.version}", f"version {new.version}", lineterm="", n=3
    ):
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            lines.append(DiffLine("hunk", line))
        elif line.startswith("+"):
            lines.append(DiffLine("add", line))
        elif line.startswith("-"):
            lines.append(DiffLine("del", line))
        else:
            lines.append(DiffLine("ctx", line))
        if len(lines) >= MAX_DIFF_LINES:
            lines.append(DiffLine("hunk", "… (diff cut short)"))
            break
    return lines


def when(ms: int | None) -> str:
    return iso_from_ms(ms) if ms else ""


def duration(start_ms: int | None, end_ms: int | None) -> str:
    if not start_ms or not end_ms:
        return ""
    ms = max(0, end_ms - start_ms)
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    if ms < 3_600_000:
        return f"{ms // 60_000} min {ms % 60_000 // 1000} s"
    return f"{ms // 3_600_000} h {ms % 3_600_000 // 60_000} min"


class FilterError(ValueError):
    """A query-string filter the console cannot use; shown on the page, nothing else fails."""


def parse_time(name: str, value: str | None) -> int | None:
    """An ISO-8601 instant (`2026-03-02T09:00`, with or without offset; no offset = UTC)."""
    if not value:
        return None
    try:
        return ms_from_iso(value)
    except ValueError:
        raise FilterError(f"{name}: '{value[:40]}' is not a date and time.") from None


def parse_int(name: str, value: str | None, *, low: int = 0, high: int = 10**9) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise FilterError(f"{name}: '{value[:40]}' is not a whole number.") from None
    if not low <= number <= high:
        raise FilterError(f"{name} must be between {low} and {high}.")
    return number


def contact_needle(value: str | None) -> str | None:
    """The contact to look up, as instances record them (engine/contacts.py): a phone
    number's digits (spaces, dashes, brackets and a leading + dropped), or a chat user id."""
    if not value or not value.strip():
        return None
    text = value.strip()[:100]
    return phone_digits(text) or text


def parse_cursor(value: str | None) -> tuple[int, str] | None:
    """`before=<started_at_ms>.<workflowId>`: where the previous page of instances ended."""
    if not value:
        return None
    started, _, workflow_id = value.partition(".")
    if not started.isdigit() or len(started) > 16 or not re.fullmatch(r"[0-9a-f]{24}", workflow_id):
        raise FilterError("before must be <startedAt ms>.<workflowId>, as the Older link gives it.")
    return int(started), workflow_id
