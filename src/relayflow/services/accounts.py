"""Accounts and their API keys: creation, authentication, revocation."""

from __future__ import annotations

import hmac
import re
import time
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.exc import IntegrityError

from relayflow.clock import Clock
from relayflow.services.secrets import (
    generate_api_key,
    generate_webhook_token,
    hash_secret,
    key_id_of,
)
from relayflow.store import accounts as account_store
from relayflow.store.database import Database

ACCOUNT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
DEMO_ACCOUNT_ID = "demo"
PROVIDERS = ("sandbox", "8x8")


class AccountError(ValueError):
    """A user-facing problem with an account command (bad id, duplicate, unknown)."""


@dataclass(frozen=True)
class NewAccount:
    """Shown once: only hashes of `api_key` and `webhook_token` are stored."""

    account_id: str
    key_id: str
    api_key: str
    webhook_token: str

    def as_json(self) -> dict[str, str]:
        return {
            "accountId": self.account_id,
            "apiKey": self.api_key,
            "webhookToken": self.webhook_token,
        }


@dataclass(frozen=True)
class KeyOwner:
    account_id: str
    is_admin: bool


@dataclass(frozen=True)
class NewKey:
    account_id: str
    key_id: str
    api_key: str

    def as_json(self) -> dict[str, str]:
        return {"accountId": self.account_id, "keyId": self.key_id, "apiKey": self.api_key}


CREDENTIAL_CACHE_S = 2.0
MAX_CACHED = 10_000
T = TypeVar("T")


def _remember(cache: dict[str, tuple[float, T]], key: str, value: T) -> None:
    if len(cache) >= MAX_CACHED:
        cache.clear()  # bounded: guessed keys must not grow memory
    cache[key] = (time.monotonic() + CREDENTIAL_CACHE_S, value)


class AccountService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        # Every request authenticates: remember lookups briefly (by hash, never the secret).
        # Revocation applies at once in this process and within CREDENTIAL_CACHE_S elsewhere.
        self._keys: dict[str, tuple[float, KeyOwner | None]] = {}
        self._tokens: dict[str, tuple[float, str | None]] = {}

    async def create(self, account_id: str, provider: str = "sandbox") -> NewAccount:
        if not ACCOUNT_ID_PATTERN.match(account_id):
            raise AccountError(
                f"Invalid account id '{account_id}': use 1-100 letters, digits, '_', '.', '-', "
                "starting with a letter or digit."
            )
        if provider not in PROVIDERS:
            raise AccountError(
                f"Unknown provider '{provider}'; use one of: {', '.join(PROVIDERS)}."
            )
        key = generate_api_key()
        token = generate_webhook_token()
        now = self._clock.now_ms()
        try:
            async with self._db.transaction() as conn:
                await account_store.insert_account(
                    conn, account_id, hash_secret(token), provider, now
                )
                await account_store.insert_api_key(
                    conn,
                    key.key_id,
                    account_id,
                    hash_secret(key.api_key),
                    "initial",
                    now,
                    is_admin=True,
                )
        except IntegrityError:
            raise AccountError(f"Account '{account_id}' already exists.") from None
        return NewAccount(account_id, key.key_id, key.api_key, token)

    async def create_demo_if_empty(self) -> NewAccount | None:
        """First start on an empty database: a ready-to-use sandbox account."""
        async with self._db.read() as conn:
            if await account_store.count_accounts(conn):
                return None
        try:
            return await self.create(DEMO_ACCOUNT_ID)
        except AccountError:
            return None  # another process created it first

    async def list_all(self) -> list[account_store.AccountRow]:
        async with self._db.read() as conn:
            return await account_store.list_accounts(conn)

    async def create_key(
        self, account_id: str, name: str | None = None, *, admin: bool = False
    ) -> NewKey:
        key = generate_api_key()
        async with self._db.transaction() as conn:
            if not await account_store.account_exists(conn, account_id):
                raise AccountError(f"Account '{account_id}' does not exist.")
            await account_store.insert_api_key(
                conn,
                key.key_id,
                account_id,
                hash_secret(key.api_key),
                name,
                self._clock.now_ms(),
                is_admin=admin,
            )
        return NewKey(account_id, key.key_id, key.api_key)

    async def require(self, account_id: str) -> None:
        async with self._db.read() as conn:
            if not await account_store.account_exists(conn, account_id):
                raise AccountError(f"Account '{account_id}' does not exist.")

    async def list_keys(self, account_id: str) -> list[account_store.ApiKeyRow]:
        async with self._db.read() as conn:
            if not await account_store.account_exists(conn, account_id):
                raise AccountError(f"Account '{account_id}' does not exist.")
            return await account_store.list_api_keys(conn, account_id)

    async def revoke_key(self, key_id: str) -> None:
        async with self._db.transaction() as conn:
            if not await account_store.revoke_api_key(conn, key_id, self._clock.now_ms()):
                raise AccountError(f"No active API key with id '{key_id}'.")
        self._keys.clear()

    async def identify(self, api_key: str) -> KeyOwner | None:
        """Who an API key belongs to; None for unknown, malformed or revoked keys."""
        if key_id_of(api_key) is None:
            return None
        digest = hash_secret(api_key)
        cached = self._keys.get(digest)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        async with self._db.read() as conn:
            found = await account_store.key_owner(conn, digest)
        owner = KeyOwner(*found) if found else None
        _remember(self._keys, digest, owner)
        return owner

    async def check_webhook_token(self, account_id: str, token: str) -> bool:
        """Constant-time check of a webhook token against the account's stored hash."""
        cached = self._tokens.get(account_id)
        if cached is not None and cached[0] > time.monotonic():
            stored = cached[1]
        else:
            async with self._db.read() as conn:
                stored = await account_store.webhook_token_hash(conn, account_id)
            _remember(self._tokens, account_id, stored)
        return stored is not None and hmac.compare_digest(stored, hash_secret(token))

    async def authenticate(self, api_key: str) -> str | None:
        """The account an API key belongs to; None for unknown, malformed or revoked keys."""
        owner = await self.identify(api_key)
        return owner.account_id if owner else None
