"""While the database is unreachable the API answers 503 + Retry-After, not a 500."""

from __future__ import annotations

import socket

import httpx

from relayflow.api.app import create_app
from relayflow.clock import ManualClock
from relayflow.config import Settings
from relayflow.runtime import Runtime
from relayflow.store.database import Database


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_unreachable_database_is_a_503() -> None:
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/gone"
    runtime = Runtime(Settings(database_url=url), Database(url), ManualClock())
    transport = httpx.ASGITransport(app=create_app(runtime), raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://relayflow.test") as http:
            response = await http.get(
                "/api/v1/accounts/acme/definitions", headers={"Authorization": "Bearer rf_abc_def"}
            )
            assert response.status_code == 503
            assert response.json()["code"] == 2001
            assert response.headers["retry-after"] == "1"
            health = await http.get("/healthz")
            assert health.status_code == 503
    finally:
        await runtime.close()
