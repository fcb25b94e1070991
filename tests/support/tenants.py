"""Accounts as the tests see them: a tenant of the API under test, and how to create one."""

from __future__ import annotations

from dataclasses import dataclass

from relayflow.api.context import AppContext


@dataclass(frozen=True)
class Tenant:
    """An account as a client sees it: its id, key, and the URL prefix of its resources."""

    account_id: str
    api_key: str
    webhook_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    @property
    def base(self) -> str:
        return f"/api/v1/accounts/{self.account_id}"


async def make_tenant(context: AppContext, account_id: str) -> Tenant:
    created = await context.accounts.create(account_id)
    return Tenant(created.account_id, created.api_key, created.webhook_token)
