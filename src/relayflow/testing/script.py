"""The `script` actions and `expect` objects of a flow test, typed and checked.

Checks are strict (unknown keys, wrong types, impossible values are problems) because a test that
silently ignores a misspelt `"txt"` would pass for the wrong reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from relayflow.model.timespan import TimespanError, parse_timespan
from relayflow.testing.checks import Checker, describe
from relayflow.testing.matching import EXPECT_KEYS, child_path

DTMF_KEYS = frozenset("0123456789*#")
STATUSES = ("Runnable", "Suspended", "Complete", "Terminated")
CHANNELS = ("sms", "chatapps", "voice")
# What each expected entry may name (the keys of the actual entries it is matched against).
ENTRY_KEYS = {
    "outbox": ("channel", "to", "text", "subAccountId", "request"),
    "instances": ("status", "data", "version", "errors"),
    "httpCalls": ("method", "url", "headers", "body"),
}


@dataclass(frozen=True)
class InboundSms:
    do: ClassVar[str] = "inbound_sms"
    sender: str
    text: str
    to: str | None = None
    sub_account_id: str | None = None


@dataclass(frozen=True)
class InboundChat:
    do: ClassVar[str] = "inbound_chat"
    channel: str
    sender: str
    text: str | None = None
    payload: str | None = None
    sub_account_id: str | None = None


@dataclass(frozen=True)
class HttpTrigger:
    do: ClassVar[str] = "http_trigger"
    body: dict[str, Any]
    sub_account_id: str | None = None


@dataclass(frozen=True)
class Dtmf:
    do: ClassVar[str] = "dtmf"
    digits: str
    to: str | None = None


@dataclass(frozen=True)
class Advance:
    do: ClassVar[str] = "advance"
    by: str | int


@dataclass(frozen=True)
class Expectation:
    """`expect`: each key None when the expectation leaves it out (then it is not checked)."""

    outbox: list[dict[str, Any]] | None = None
    instances: list[dict[str, Any]] | None = None
    http_calls: list[dict[str, Any]] | None = None

    def as_json(self) -> dict[str, Any]:
        """The keys it names, as in the file (`httpCalls`), for the matcher."""
        named = {"outbox": self.outbox, "instances": self.instances, "httpCalls": self.http_calls}
        return {key: value for key, value in named.items() if value is not None}


@dataclass(frozen=True)
class Checkpoint:
    do: ClassVar[str] = "expect"
    expect: Expectation


Action = InboundSms | InboundChat | HttpTrigger | Dtmf | Advance | Checkpoint
ACTIONS = ("inbound_sms", "inbound_chat", "http_trigger", "dtmf", "advance")


def check_script(value: Any, path: str, checker: Checker) -> list[Action]:
    """`script`: optional, an array of actions and checkpoints."""
    if value is None:
        return []
    items = checker.array(value, path)
    actions: list[Action] = []
    for index, item in enumerate(items or []):
        where = f"{path}[{index}]"
        obj = checker.object(item, where)
        if obj is None:
            continue
        action = _action(obj, where, checker)
        if action is not None:
            actions.append(action)
    return actions


def _action(obj: dict[str, Any], path: str, checker: Checker) -> Action | None:
    if "expect" in obj and "do" not in obj:
        checker.only_keys(obj, path, ("expect",))
        expect = check_expectation_object(obj["expect"], child_path(path, "expect"), checker)
        return Checkpoint(expect) if expect is not None else None
    kind = obj.get("do")
    if kind not in ACTIONS:
        shown = "is required" if "do" not in obj else f"{json.dumps(kind)} is not an action"
        checker.add(
            child_path(path, "do"),
            f'{shown}; expected one of: {", ".join(ACTIONS)} (or an {{"expect": ...}} checkpoint)',
        )
        return None
    return _READERS[kind](obj, path, checker)


def _inbound_sms(obj: dict[str, Any], path: str, checker: Checker) -> Action | None:
    checker.only_keys(obj, path, ("do", "from", "to", "text", "subAccountId"))
    sender = checker.string(obj, "from", path, required=True)
    to = checker.string(obj, "to", path, required=False)
    text = _text(obj, "text", path, checker, required=True)
    sub = checker.string(obj, "subAccountId", path, required=False, nullable=True)
    if sender is None or text is None:
        return None
    return InboundSms(sender, text, to, sub)


def _inbound_chat(obj: dict[str, Any], path: str, checker: Checker) -> Action | None:
    checker.only_keys(obj, path, ("do", "channel", "from", "text", "payload", "subAccountId"))
    channel = checker.string(obj, "channel", path, required=True)
    sender = checker.string(obj, "from", path, required=True)
    text = _text(obj, "text", path, checker, required=False)
    payload = _text(obj, "payload", path, checker, required=False)
    sub = checker.string(obj, "subAccountId", path, required=False, nullable=True)
    if obj.get("text") is None and obj.get("payload") is None:
        checker.add(path, "inbound_chat needs 'text' and/or 'payload'")
        return None
    if channel is None or sender is None:
        return None
    return InboundChat(channel, sender, text, payload, sub)


def _http_trigger(obj: dict[str, Any], path: str, checker: Checker) -> Action | None:
    checker.only_keys(obj, path, ("do", "body", "subAccountId"))
    sub = checker.string(obj, "subAccountId", path, required=False, nullable=True)
    if "body" not in obj:
        checker.add(child_path(path, "body"), "is required (the JSON object posted)")
        return None
    body = checker.object(obj["body"], child_path(path, "body"))
    return HttpTrigger(body, sub) if body is not None else None


def _dtmf(obj: dict[str, Any], path: str, checker: Checker) -> Action | None:
    checker.only_keys(obj, path, ("do", "digits", "to"))
    digits = checker.string(obj, "digits", path, required=True)
    to = checker.string(obj, "to", path, required=False)
    if digits is None:
        return None
    if not set(digits) <= DTMF_KEYS:
        checker.add(child_path(path, "digits"), "may only contain 0-9, * and #")
        return None
    return Dtmf(digits, to)


def _advance(obj: dict[str, Any], path: str, checker: Checker) -> Action | None:
    checker.only_keys(obj, path, ("do", "by"))
    where = child_path(path, "by")
    if "by" not in obj:
        checker.add(where, "is required: a [d.]hh:mm:ss timespan or a number of whole days")
        return None
    by = obj["by"]
    problem = span_problem(by)
    if problem:
        checker.add(where, problem)
        return None
    return Advance(int(by) if isinstance(by, int | float) else by)


def span_problem(by: Any) -> str | None:
    """Why `by` is not a forward span of virtual time, or None when it is one."""
    if isinstance(by, bool) or not isinstance(by, str | int | float):
        return f"must be a [d.]hh:mm:ss timespan or a number of whole days, not {describe(by)}"
    if isinstance(by, int | float):
        if by < 0 or by != int(by):
            return f"{json.dumps(by)} is not a whole number of days >= 0"
        return None
    try:
        span = parse_timespan(by)
    except TimespanError as error:
        return str(error)
    if span < timedelta(0):
        return f"{json.dumps(by)} is negative; virtual time only moves forward"
    return None


def _text(
    obj: dict[str, Any], key: str, path: str, checker: Checker, *, required: bool
) -> str | None:
    """Message texts may be empty or blank (a customer can send a space), but are strings."""
    if key not in obj or (obj[key] is None and not required):
        if required:
            checker.add(child_path(path, key), "is required")
        return None
    if not isinstance(obj[key], str):
        checker.add(child_path(path, key), f"must be a string, not {describe(obj[key])}")
        return None
    return str(obj[key])


_READERS = {
    "inbound_sms": _inbound_sms,
    "inbound_chat": _inbound_chat,
    "http_trigger": _http_trigger,
    "dtmf": _dtmf,
    "advance": _advance,
}


def check_expectation_object(value: Any, path: str, checker: Checker) -> Expectation | None:
    """`expect` (final or checkpoint): optional lists `outbox`, `instances`, `httpCalls` of
    objects naming only keys that the actual entries have."""
    obj = checker.object(value, path)
    if obj is None:
        return None
    checker.only_keys(obj, path, EXPECT_KEYS)
    lists: dict[str, list[dict[str, Any]] | None] = {}
    for key in EXPECT_KEYS:
        lists[key] = _entries(obj, key, child_path(path, key), checker) if key in obj else None
    return Expectation(lists["outbox"], lists["instances"], lists["httpCalls"])


def _entries(
    obj: dict[str, Any], key: str, path: str, checker: Checker
) -> list[dict[str, Any]] | None:
    items = checker.array(obj[key], path)
    if items is None:
        return None
    for index, item in enumerate(items):
        where = f"{path}[{index}]"
        entry = checker.object(item, where)
        if entry is None:
            continue
        checker.only_keys(entry, where, ENTRY_KEYS[key])
        _entry_values(key, entry, where, checker)
    return items


def _entry_values(key: str, entry: dict[str, Any], path: str, checker: Checker) -> None:
    """Values that could never match: a status or channel that does not exist, a wrong type."""
    if key == "outbox" and "channel" in entry and entry["channel"] not in CHANNELS:
        checker.add(
            child_path(path, "channel"),
            f"{json.dumps(entry['channel'])} is not a channel; expected one of: "
            f"{', '.join(CHANNELS)}",
        )
    if key == "instances":
        if "status" in entry and entry["status"] not in STATUSES:
            checker.add(
                child_path(path, "status"),
                f"{json.dumps(entry['status'])} is not a status; expected one of: "
                f"{', '.join(STATUSES)}",
            )
        if "errors" in entry:
            _errors(entry["errors"], child_path(path, "errors"), checker)


def _errors(value: Any, path: str, checker: Checker) -> None:
    for index, item in enumerate(checker.array(value, path) or []):
        where = f"{path}[{index}]"
        error = checker.object(item, where)
        if error is not None:
            checker.only_keys(error, where, ("step", "message"))
