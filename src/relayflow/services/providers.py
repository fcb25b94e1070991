"""Per-account provider settings: the sandbox (default) or 8x8 with the account's API key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from relayflow.channels.eightbyeight.regions import DEFAULT_REGION, REGIONS
from relayflow.channels.providers import AccountProviders, hosts_for
from relayflow.clock import Clock
from relayflow.secretbox import SecretBox
from relayflow.services.accounts import AccountError
from relayflow.store import accounts as account_store
from relayflow.store import providers as provider_store
from relayflow.store.database import Database
from relayflow.store.providers import ProviderRow

MAX_API_KEY_LENGTH = 500


@dataclass(frozen=True)
class ProviderView:
    """What may be shown about the settings: never the API key itself."""

    provider: str
    region: str | None
    sms_url: str | None
    chatapps_url: str | None
    voice_url: str | None
    api_key_set: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "region": self.region,
            "smsUrl": self.sms_url,
            "chatappsUrl": self.chatapps_url,
            "voiceUrl": self.voice_url,
            "apiKeySet": self.api_key_set,
        }


def _check_url(name: str, url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise AccountError(
            f"{name} must be an absolute http(s) URL without query, e.g. https://sms.8x8.com."
        )
    return url.rstrip("/")


class ProviderService:
    def __init__(
        self, db: Database, clock: Clock, box: SecretBox | None, providers: AccountProviders
    ) -> None:
        self._db = db
        self._clock = clock
        self._box = box
        self._providers = providers

    async def get(self, account_id: str) -> ProviderView:
        async with self._db.read() as conn:
            if not await account_store.account_exists(conn, account_id):
                raise AccountError(f"Account '{account_id}' does not exist.")
            row = await provider_store.get_settings(conn, account_id)
        if row is None:
            return ProviderView("sandbox", None, None, None, None, False)
        hosts = hosts_for(row)
        return ProviderView(
            row.provider,
            row.region,
            hosts.sms,
            hosts.chatapps,
            hosts.voice,
            bool(row.api_key_encrypted),
        )

    async def use_sandbox(self, account_id: str) -> ProviderView:
        await self._put(
            ProviderRow(account_id, "sandbox", None, None, None, None, None, self._clock.now_ms())
        )
        return await self.get(account_id)

    async def use_8x8(
        self,
        account_id: str,
        api_key: str,
        *,
        region: str | None = None,
        base_url: str | None = None,
        sms_url: str | None = None,
        chatapps_url: str | None = None,
        voice_url: str | None = None,
    ) -> ProviderView:
        """Store 8x8 settings. Explicit URLs (a proxy, a test server) are for operators: the
        REST API accepts only a region, so an account cannot point sends at internal hosts."""
        if self._box is None:
            raise AccountError("Set RELAYFLOW_SECRET_KEY first: 8x8 API keys are stored encrypted.")
        api_key = api_key.strip()
        if not api_key or len(api_key) > MAX_API_KEY_LENGTH or any(c.isspace() for c in api_key):
            raise AccountError("The 8x8 API key must be 1-500 characters without spaces.")
        if region is not None and region.lower() not in REGIONS:
            raise AccountError(f"Unknown region '{region}'; use one of: {', '.join(REGIONS)}.")
        base = _check_url("--base-url", base_url)
        row = ProviderRow(
            account_id=account_id,
            provider="8x8",
            api_key_encrypted=self._box.encrypt(api_key),
            region=(region or DEFAULT_REGION).lower(),
            sms_url=_check_url("--sms-url", sms_url) or base,
            chatapps_url=_check_url("--chatapps-url", chatapps_url) or base,
            voice_url=_check_url("--voice-url", voice_url) or base,
            updated_at_ms=self._clock.now_ms(),
        )
        await self._put(row)
        return await self.get(account_id)

    async def _put(self, row: ProviderRow) -> None:
        async with self._db.transaction() as conn:
            if not await account_store.account_exists(conn, row.account_id):
                raise AccountError(f"Account '{row.account_id}' does not exist.")
            await provider_store.put_settings(conn, row)
        self._providers.invalidate(row.account_id)
