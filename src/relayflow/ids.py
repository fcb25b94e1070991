"""Identifier formats of the 8x8 API, generated in one place so tests can seed them."""

from __future__ import annotations

import re
import secrets
import uuid

_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


def new_definition_id() -> str:
    return str(uuid.uuid4())


def new_error_id() -> str:
    return str(uuid.uuid4())


def new_workflow_id() -> str:
    """24 lower-case hex characters, the shape of 8x8's (MongoDB ObjectId-like) workflow ids."""
    return secrets.token_hex(12)


def is_uuid(value: str) -> bool:
    return bool(_UUID_RE.match(value))


def normalise_uuid(value: str) -> str:
    """Canonical lower-case form, so `ABC...` and `abc...` name the same definition."""
    return value.lower()
