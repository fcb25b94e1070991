"""A client of one account's API on a real relayflow process, for process-level tests."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import httpx


class Api:
    """A client of one account's API, through whichever server is up now."""

    def __init__(self, base_url: str, account_id: str, api_key: str) -> None:
        self.account_id = account_id
        self.api_key = api_key
        self.prefix = f"/api/v1/accounts/{account_id}"
        self.http = httpx.Client(base_url=base_url, headers=self.headers, timeout=15.0)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def rebase(self, base_url: str) -> None:
        self.http.close()
        self.http = httpx.Client(base_url=base_url, headers=self.headers, timeout=15.0)

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = self.http.request(method, f"{self.prefix}{path}", **kwargs)
        assert response.status_code == expect, f"{method} {path}: {response.text}"
        return response.json() if response.content else None

    def define(self, body: dict[str, Any]) -> str:
        definition_id: str = self.call("POST", "/definitions", expect=201, json=body)["id"]
        return definition_id

    def inbound_sms(self, sender: str, text: str) -> dict[str, Any]:
        body = {"from": sender, "to": "+6580000000", "text": text}
        routed: dict[str, Any] = self.call("POST", "/sandbox/inbound/sms", json=body)
        return routed

    def trigger(self, body: dict[str, Any]) -> list[str]:
        started: list[str] = self.call("POST", "/triggers/http_request", json=body)["workflowIds"]
        return started

    def instance(self, definition_id: str, workflow_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.call(
            "GET",
            f"/definitions/{definition_id}/workflows/{workflow_id}",
            params={"includeLogs": "true"},
        )
        return found

    def logs(self, definition_id: str, workflow_id: str) -> list[tuple[str, str]]:
        logs = self.instance(definition_id, workflow_id)["logs"]
        return [(log["stepName"], log["status"]) for log in logs]

    def instances(self, definition_id: str) -> list[dict[str, Any]]:
        """Every instance of the definition (all pages)."""
        found: list[dict[str, Any]] = []
        while True:
            page = self.call(
                "GET",
                f"/definitions/{definition_id}/workflows",
                params={"limit": 500, "offset": len(found)},
            )
            found += page
            if len(page) < 500:
                return found

    def outbox(self) -> list[dict[str, Any]]:
        """Every message the account's workflows sent, oldest first (all pages)."""
        found: list[dict[str, Any]] = []
        while True:
            page = self.call("GET", "/sandbox/outbox", params={"limit": 500, "offset": len(found)})
            found += page
            if len(page) < 500:
                return list(reversed(found))

    def sent_by_instance(self) -> dict[str, list[tuple[str, str]]]:
        """workflowId -> [(destination, text)], in send order."""
        sent: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for message in self.outbox():
            request = message["request"]
            sent[message["workflowId"]].append((request["destination"], request["text"]))
        return sent


def all_complete(api: Api, definition_ids: list[str], expected: int) -> bool:
    """True once the definitions have `expected` instances and all of them are Complete."""
    listed = [i for d in definition_ids for i in api.instances(d)]
    bad = [i for i in listed if i["status"] not in ("Runnable", "Complete")]
    assert not bad, f"instances ended badly: {bad}"
    return len(listed) >= expected and all(i["status"] == "Complete" for i in listed)
