"""The fake's memory: API keys, allowed subaccounts, recorded requests, faults, webhooks sent."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from fake8x8.faults import FaultPlan
from fake8x8.shapes import iso_now

SUBACCOUNT_IN_PATH = re.compile(r"^/api/v1/subaccounts/([^/]+)/")


class FakeState:
    """Everything the fake knows: keys, allowed subaccounts, recorded requests, faults."""

    def __init__(self, api_keys: Iterable[str] = (), subaccounts: Iterable[str] = ()) -> None:
        self._startup_keys = frozenset(api_keys)
        self._startup_subaccounts = frozenset(subaccounts)
        self.faults = FaultPlan()
        self.api_keys: set[str] = set()
        self.subaccounts: set[str] = set()
        self.requests: list[dict[str, Any]] = []
        self.webhooks: list[dict[str, Any]] = []
        # Requests received per role since the last reset; unlike `requests` never trimmed
        # (the bench keeps only the latest), so the crm site can number its answers.
        self.received: Counter[str] = Counter()
        self.reset()

    def reset(self) -> None:
        """Back to the state the process started in (command-line keys and subaccounts)."""
        self.api_keys = set(self._startup_keys)
        self.subaccounts = set(self._startup_subaccounts)
        self.requests = []
        self.webhooks = []
        self.received = Counter()
        self.faults.clear()
        self._ids = itertools.count(1)

    def authorised(self, header: str | None) -> bool:
        """8x8's `Authorization: Bearer <key>`; with no key configured any bearer token passes."""
        scheme, _, token = (header or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return False
        return not self.api_keys or token in self.api_keys

    def known_subaccount(self, sub_account_id: str) -> bool:
        return not self.subaccounts or sub_account_id in self.subaccounts

    def record(self, role: str, request: web.Request, raw: bytes) -> dict[str, Any]:
        self.received[role] += 1
        match = None if role == "crm" else SUBACCOUNT_IN_PATH.match(request.path)
        entry: dict[str, Any] = {
            "id": next(self._ids),
            "receivedAt": iso_now(3),
            "role": role,
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "subAccountId": match.group(1) if match else None,
            "headers": _redacted(request.headers.items()),
            "body": decoded(raw),
            "status": None,
            "answer": None,
            "fault": None,
        }
        self.requests.append(entry)
        return entry

    def find_sent(
        self, role: str, accept: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any] | None:
        """The latest accepted (200) request of `role` that `accept` picks."""
        for entry in self.requests[::-1]:
            if entry["role"] == role and entry["status"] == 200 and accept(entry):
                return entry
        return None


def _redacted(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Request headers with `Authorization` cut to its last 4 characters."""
    result = {}
    for name, value in headers:
        result[name] = "***" + value[-4:] if name.lower() == "authorization" else value
    return result


def decoded(raw: bytes) -> Any:
    """A body as JSON if it parses, else as text; None when empty."""
    if not raw:
        return None
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


STATE = web.AppKey("state", FakeState)
