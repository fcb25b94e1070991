"""API keys and webhook tokens: generated here, stored only as sha256 hashes.

Keys look like `rf_<keyid>_<secret>`: the key id is public (lists, revocation, logs) and the
secret part is 256 random bits, so a fast hash is enough to make a stolen database useless.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

API_KEY_PREFIX = "rf_"
WEBHOOK_TOKEN_PREFIX = "wh_"  # noqa: S105 - a prefix, not a secret


@dataclass(frozen=True)
class GeneratedKey:
    key_id: str
    api_key: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_api_key() -> GeneratedKey:
    key_id = secrets.token_hex(6)
    return GeneratedKey(key_id, f"{API_KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}")


def generate_webhook_token() -> str:
    return WEBHOOK_TOKEN_PREFIX + secrets.token_urlsafe(32)


def key_id_of(api_key: str) -> str | None:
    """The public id inside a key (safe to log), or None if the key is malformed."""
    if not api_key.startswith(API_KEY_PREFIX):
        return None
    key_id, _, secret = api_key[len(API_KEY_PREFIX) :].partition("_")
    return key_id if key_id and secret else None
