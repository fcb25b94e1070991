"""Who an instance is about: the phone numbers and chat users in its trigger data, recorded
when it starts so "find this customer's instances" is an index lookup, not a search through
every instance's data.

Phone-like strings (a `+`, digits, spaces, dashes, dots, brackets; 7 to 15 digits) are kept as
their digits, so `+65 9123-4567` and `6591234567` are the same contact; chat user ids (keys
`channelUserId`, `lineUserId`, `userId`, `msisdn`) are kept as written; values under
`destination`, `to` and `recipient` are the business's own side and are skipped. Only the start
data is read, a few levels deep and a bounded number of values, whatever the trigger body holds.
"""

from __future__ import annotations

import re
from typing import Any

PHONE = re.compile(r"^\+?[0-9()\-. ]{7,25}$")
USER_KEYS = frozenset({"channelUserId", "lineUserId", "userId", "msisdn"})
# The business's own side of a message (its virtual number), not the customer.
OWN_SIDE_KEYS = frozenset({"destination", "to", "recipient"})
MAX_DEPTH = 4
MAX_VALUES = 200
MAX_CONTACTS = 10
MAX_LENGTH = 100


def phone_digits(text: str) -> str | None:
    """The digits of a phone-like string, or None."""
    if not PHONE.match(text.strip()):
        return None
    digits = "".join(ch for ch in text if ch.isdigit())
    return digits if 7 <= len(digits) <= 15 else None


def contacts_of(data: Any) -> tuple[str, ...]:
    """The contacts found in an instance's start data, in the order found (no duplicates)."""
    found: dict[str, None] = {}
    budget = [MAX_VALUES]

    def visit(value: Any, key: str | None, depth: int) -> None:
        if budget[0] <= 0 or len(found) >= MAX_CONTACTS:
            return
        budget[0] -= 1
        if key in OWN_SIDE_KEYS:
            return
        if isinstance(value, str):
            digits = phone_digits(value)
            if digits is not None:
                found[digits] = None
            elif key in USER_KEYS and 0 < len(value) <= MAX_LENGTH:
                found[value] = None
        elif isinstance(value, dict) and depth < MAX_DEPTH:
            for child_key, child in value.items():
                visit(child, str(child_key), depth + 1)
        elif isinstance(value, list) and depth < MAX_DEPTH:
            for child in value:
                visit(child, key, depth + 1)

    visit(data, None, 0)
    return tuple(found)
