"""A client of the `acme` account on a live `relayflow serve` (with the fake 8x8 behind it),
for the suites that drive both as real processes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.processes import wait_for


@dataclass
class Relayflow:
    url: str
    api_key: str
    webhook_token: str
    http: httpx.Client

    @property
    def base(self) -> str:
        return f"{self.url}/api/v1/accounts/acme"

    def webhook(self, kind: str, token: str | None = None) -> str:
        return f"{self.url}/webhooks/acme/{kind}?token={token or self.webhook_token}"

    def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = self.http.request(method, f"{self.base}{path}", **kwargs)
        assert response.status_code == expect, response.text
        return response.json() if response.content else None

    def define(
        self, steps: list[dict[str, Any]], trigger: str, sub_account: str | None = None
    ) -> str:
        body = {
            "trigger": trigger,
            "status": "enabled",
            "subAccountId": sub_account,
            "definition": {"name": "e2e", "steps": steps},
        }
        definition_id: str = self.call("POST", "/definitions", expect=201, json=body)["id"]
        return definition_id

    def instances(self, definition_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.call("GET", f"/definitions/{definition_id}/workflows")
        return found

    def settled(self, definition_id: str, count: int = 1) -> list[dict[str, Any]]:
        """Wait until `count` instances exist and none is still running."""

        def done() -> list[dict[str, Any]] | None:
            found = self.instances(definition_id)
            if len(found) == count and all(
                i["status"] in ("Complete", "Terminated") for i in found
            ):
                return found
            return None

        settled: list[dict[str, Any]] = wait_for(done, f"{count} finished instance(s)")
        return settled
