"""Event keys that connect waits to inbound events (DESIGN.md §5 "Replies", "DTMF")."""

from __future__ import annotations

import re
from typing import Any

_SEPARATORS = re.compile(r"[\s+\-().]")


def normalise_sender(sender: str) -> str:
    """Phone numbers compare as digits (`+65 9123-4567` == `6591234567`); ids case-insensitively."""
    return _SEPARATORS.sub("", sender).lower()


def reply_key(channel: str, sender: str) -> str:
    return f"reply:{channel.strip().lower()}:{normalise_sender(sender)}"


def dtmf_key(correlation_id: str) -> str:
    return f"dtmf:{correlation_id.strip().lower()}"


def reply_keys_for_event(event: dict[str, Any]) -> list[str]:
    """Keys an inbound SMS / chat-apps webhook object can satisfy (empty for other events)."""
    payload = event.get("payload")
    if not isinstance(payload, dict):
        return []
    namespace = str(event.get("namespace", "")).lower()
    keys: list[str] = []
    if namespace == "sms":
        source = payload.get("source")
        if isinstance(source, str) and source:
            keys.append(reply_key("sms", source))
        return keys
    recipient = payload.get("recipient")
    user = payload.get("user")
    channel = recipient.get("channel") if isinstance(recipient, dict) else None
    if not isinstance(channel, str) or not isinstance(user, dict):
        return keys
    for field in ("channelUserId", "msisdn"):
        value = user.get(field)
        if isinstance(value, str) and value:
            key = reply_key(channel, value)
            if key not in keys:
                keys.append(key)
    return keys


def dtmf_keys_for_callback(callback: dict[str, Any]) -> list[str]:
    """`clientRequestId` first, then `uid` (8x8: "correlationId is chosen based on ...")."""
    keys = []
    for field in ("clientRequestId", "uid"):
        value = callback.get(field)
        if isinstance(value, str) and value.strip():
            keys.append(dtmf_key(value))
    return keys
