"""Which provider sends for an account: the sandbox, or 8x8 with the account's own settings.

Settings are read from the store and cached briefly (a change applies within a few seconds in
every process, and at once in the process that made it); one aiohttp session serves all 8x8
calls of the process.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from relayflow.channels.base import ChannelError, MessagingProvider
from relayflow.channels.breaker import Breakers
from relayflow.channels.eightbyeight.provider import EightByEightConfig, EightByEightProvider
from relayflow.channels.eightbyeight.regions import DEFAULT_REGION, REGIONS, Hosts
from relayflow.channels.metered import MeteredProvider
from relayflow.channels.sandbox import SandboxProvider
from relayflow.secretbox import SecretBox, SecretKeyError
from relayflow.store import providers as provider_store
from relayflow.store.database import Database
from relayflow.store.providers import ProviderRow

CACHE_SECONDS = 5.0


def voice_callback_path(account_id: str) -> str:
    return f"/webhooks/{account_id}/voice"


def voice_signature_message(account_id: str) -> str:
    return f"voice-callback:{account_id}"


def hosts_for(row: ProviderRow) -> Hosts:
    region = REGIONS[row.region or DEFAULT_REGION]
    return Hosts(
        sms=(row.sms_url or region.sms).rstrip("/"),
        chatapps=(row.chatapps_url or region.chatapps).rstrip("/"),
        voice=(row.voice_url or region.voice).rstrip("/"),
    )


class AccountProviders:
    def __init__(
        self, db: Database, box: SecretBox | None, public_url: str | None, breakers: Breakers
    ) -> None:
        self._db = db
        self._breakers = breakers
        self._box = box
        self._public_url = public_url.rstrip("/") if public_url else None
        self.sandbox = SandboxProvider(db)
        self._metered_sandbox = MeteredProvider(self.sandbox, "sandbox")
        self._cache: dict[str, tuple[float, MessagingProvider]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()

    async def _client(self) -> aiohttp.ClientSession:
        async with self._lock:
            if self._session is None or self._session.closed:
                self._session = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=200, limit_per_host=100)
                )
            return self._session

    def invalidate(self, account_id: str) -> None:
        self._cache.pop(account_id, None)

    async def for_account(self, account_id: str) -> MessagingProvider:
        cached = self._cache.get(account_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        async with self._db.read() as conn:
            row = await provider_store.get_settings(conn, account_id)
        provider = await self._build(account_id, row)
        self._cache[account_id] = (time.monotonic() + CACHE_SECONDS, provider)
        return provider

    async def _build(self, account_id: str, row: ProviderRow | None) -> MessagingProvider:
        if row is None or row.provider == "sandbox":
            return self._metered_sandbox
        if self._box is None:
            raise ChannelError(
                "RELAYFLOW_SECRET_KEY is not set, so the 8x8 API key cannot be read."
            )
        try:
            api_key = self._box.decrypt(row.api_key_encrypted or "")
        except SecretKeyError as error:
            raise ChannelError(str(error)) from None
        callback = None
        if self._public_url:
            signature = self._box.sign(voice_signature_message(account_id))
            callback = f"{self._public_url}{voice_callback_path(account_id)}?sig={signature}"
        config = EightByEightConfig(
            api_key=api_key, hosts=hosts_for(row), dtmf_callback_url=callback
        )
        provider = EightByEightProvider(config, await self._client(), self._db, self._breakers)
        return MeteredProvider(provider, "8x8")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
