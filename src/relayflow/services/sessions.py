"""Console sign-in: an API key is exchanged for a session, whose token lives only in an
HttpOnly cookie (never in a URL or browser storage). Each session has its own CSRF token."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from relayflow.clock import Clock
from relayflow.services.accounts import AccountService
from relayflow.services.secrets import hash_secret, key_id_of
from relayflow.store import console_sessions as session_store
from relayflow.store.console_sessions import SessionRow
from relayflow.store.database import Database

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class Session:
    token: str  # the cookie's value: shown to the browser once, stored hashed
    account_id: str
    csrf_token: str
    expires_at_ms: int

    def csrf_ok(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented, self.csrf_token)


class SignInError(ValueError):
    """The key is unknown, malformed or revoked (one message for all: no oracle)."""


class SessionService:
    def __init__(
        self, db: Database, clock: Clock, accounts: AccountService, lifetime_s: float
    ) -> None:
        self._db = db
        self._clock = clock
        self._accounts = accounts
        self._lifetime_ms = int(lifetime_s * 1000)

    async def sign_in(self, api_key: str) -> Session:
        api_key = api_key.strip()
        key_id = key_id_of(api_key) if len(api_key) <= MAX_KEY_LENGTH else None
        owner = await self._accounts.identify(api_key) if key_id else None
        if owner is None or key_id is None:
            raise SignInError("That API key is not valid (unknown, mistyped or revoked).")
        token = secrets.token_urlsafe(32)
        now = self._clock.now_ms()
        row = SessionRow(
            owner.account_id, key_id, secrets.token_urlsafe(32), now + self._lifetime_ms
        )
        async with self._db.transaction() as conn:
            await session_store.delete_expired(conn, now)
            await session_store.insert_session(conn, hash_secret(token), row, now)
        return Session(token, row.account_id, row.csrf_token, row.expires_at_ms)

    async def resolve(self, token: str | None) -> Session | None:
        """The live session of a cookie value, or None (absent, expired, signed out, revoked)."""
        if not token or len(token) > 100:
            return None
        async with self._db.read() as conn:
            row = await session_store.live_session(conn, hash_secret(token), self._clock.now_ms())
        if row is None:
            return None
        return Session(token, row.account_id, row.csrf_token, row.expires_at_ms)

    async def sign_out(self, token: str) -> None:
        async with self._db.transaction() as conn:
            await session_store.delete_session(conn, hash_secret(token))
