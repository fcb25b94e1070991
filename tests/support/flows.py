"""Drive flows end to end through the HTTP API and the sandbox, with the worker run by hand
and a manual clock, so timers and timeouts are tested without sleeping."""

from __future__ import annotations

from typing import Any

import httpx

from relayflow.api.context import AppContext
from relayflow.clock import ManualClock
from tests.support.tenants import Tenant


class Flow:
    def __init__(self, client: httpx.AsyncClient, tenant: Tenant, context: AppContext) -> None:
        self.client = client
        self.tenant = tenant
        self.context = context

    @property
    def clock(self) -> ManualClock:
        clock = self.context.clock
        assert isinstance(clock, ManualClock)
        return clock

    async def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = await self.client.request(
            method, f"{self.tenant.base}{path}", headers=self.tenant.headers, **kwargs
        )
        assert response.status_code == expect, response.text
        return response.json() if response.content else None

    async def define(
        self, steps: list[dict[str, Any]], trigger: str = "inbound_sms", **top: Any
    ) -> str:
        body = {
            "trigger": trigger,
            "status": "enabled",
            "definition": {"name": "flow", "steps": steps},
        }
        body.update(top)
        created = await self.call("POST", "/definitions", expect=201, json=body)
        definition_id: str = created["id"]
        return definition_id

    async def update(
        self, definition_id: str, steps: list[dict[str, Any]], trigger: str = "inbound_sms"
    ) -> int:
        body = {
            "trigger": trigger,
            "status": "enabled",
            "definition": {"name": "flow", "steps": steps},
        }
        updated = await self.call("PUT", f"/definitions/{definition_id}", json=body)
        version: int = updated["version"]
        return version

    async def run(self) -> None:
        await self.context.worker.run_until_idle()

    async def advance(self, ms: int) -> None:
        self.clock.advance(ms)
        await self.run()

    async def sms(
        self, sender: str, text: str, to: str = "+6580000000", **extra: Any
    ) -> dict[str, Any]:
        body = {"from": sender, "to": to, "text": text, **extra}
        result: dict[str, Any] = await self.call("POST", "/sandbox/inbound/sms", json=body)
        await self.run()
        return result

    async def chat(self, channel: str, sender: str, **content: Any) -> dict[str, Any]:
        body = {"channel": channel, "from": sender, **content}
        result: dict[str, Any] = await self.call("POST", "/sandbox/inbound/chatapps", json=body)
        await self.run()
        return result

    async def dtmf(self, digits: str, **key: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.call(
            "POST", "/sandbox/dtmf", json={"digits": digits, **key}
        )
        await self.run()
        return result

    async def http_trigger(self, body: dict[str, Any], **params: Any) -> list[str]:
        result = await self.call("POST", "/triggers/http_request", json=body, params=params)
        await self.run()
        started: list[str] = result["workflowIds"]
        return started

    async def start(
        self, definition_id: str, body: dict[str, Any] | None = None, **params: Any
    ) -> str:
        created = await self.call(
            "POST",
            f"/definitions/{definition_id}/workflows",
            expect=201,
            json=body or {},
            params=params,
        )
        await self.run()
        workflow_id: str = created["workflowId"]
        return workflow_id

    async def instance(self, definition_id: str, workflow_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await self.call(
            "GET",
            f"/definitions/{definition_id}/workflows/{workflow_id}",
            params={"includeLogs": "true"},
        )
        return found

    async def instances(self, definition_id: str, **params: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self.call(
            "GET", f"/definitions/{definition_id}/workflows", params=params
        )
        return found

    async def logs(self, definition_id: str, workflow_id: str) -> list[tuple[str, str]]:
        instance = await self.instance(definition_id, workflow_id)
        return [(log["stepName"], log["status"]) for log in instance["logs"]]

    async def errors(self, definition_id: str, workflow_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self.call(
            "GET", f"/definitions/{definition_id}/workflows/{workflow_id}/errors"
        )
        return found

    async def outbox(self, channel: str | None = None) -> list[dict[str, Any]]:
        params = {"limit": 500, **({"channel": channel} if channel else {})}
        messages: list[dict[str, Any]] = await self.call("GET", "/sandbox/outbox", params=params)
        return list(reversed(messages))  # oldest first

    async def texts(self) -> list[str]:
        return [m["request"]["text"] for m in await self.outbox("sms")]
