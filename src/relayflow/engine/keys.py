"""Event keys that connect waits to inbound events (DESIGN.md §5 "Replies", "DTMF")."""

from __future__ import annotations

import re
from typing import Any

from relayflow.engine.contacts import MAX_LENGTH, phone_digits
from relayflow.instance_state import REPLY_KEY_PREFIX

_SEPARATORS = re.compile(r"[\s+\-().]")


def normalise_sender(sender: str) -> str:
    """Phone numbers compare as digits (`+65 9123-4567` == `6591234567`); ids case-insensitively."""
    return _SEPARATORS.sub("", sender).lower()


def reply_key(channel: str, sender: str) -> str:
    return f"{REPLY_KEY_PREFIX}{channel.strip().lower()}:{normalise_sender(sender)}"


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


def sender_contacts(event: dict[str, Any]) -> list[str]:
    """The sender of an inbound SMS / chat-apps message as `instance_contacts` records it
    (engine/contacts.py: phone digits, chat user ids as written), to find their instances."""
    payload = event.get("payload")
    if not isinstance(payload, dict):
        return []
    values: list[object] = []
    if str(event.get("namespace", "")).lower() == "sms":
        values.append(payload.get("source"))
    else:
        user = payload.get("user")
        if isinstance(user, dict):
            values += [user.get("channelUserId"), user.get("msisdn")]
    contacts: list[str] = []
    for value in values:
        if not isinstance(value, str) or not value:
            continue
        contact = phone_digits(value) or (value if len(value) <= MAX_LENGTH else None)
        if contact is not None and contact not in contacts:
            contacts.append(contact)
    return contacts


def dtmf_keys_for_callback(callback: dict[str, Any]) -> list[str]:
    """`clientRequestId` first, then `uid` (8x8: "correlationId is chosen based on ...")."""
    keys = []
    for field in ("clientRequestId", "uid"):
        value = callback.get(field)
        if isinstance(value, str) and value.strip():
            keys.append(dtmf_key(value))
    return keys
