"""While the database is unreachable or full the API answers 503 + Retry-After, not a 500.

The test clients re-raise whatever escapes the app (httpx's default): an error that escapes
reaches uvicorn, which logs a traceback for every request, even when a response was sent.
"""

from __future__ import annotations

import secrets
import socket

import asyncpg
import httpx
import pytest

from relayflow.api.app import create_app
from relayflow.api.errors import database_unavailable
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
    transport = httpx.ASGITransport(app=create_app(runtime))
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


@pytest.mark.postgres
async def test_a_database_out_of_connections_is_a_503(postgres_url: str) -> None:
    # A role allowed one connection, and someone else holding it: PostgreSQL refuses the API's
    # connection with SQLSTATE 53300 ("too many connections"), as when max_connections is hit.
    role = f"relayflow_limited_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(postgres_url)
    await admin.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 1')
    base, _, database = postgres_url.rpartition("/")
    url = f"postgresql://{role}@{base.rpartition('@')[2]}/{database}"
    holder = await asyncpg.connect(url)
    runtime = Runtime(Settings(database_url=url), Database(url), ManualClock())
    transport = httpx.ASGITransport(app=create_app(runtime))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://relayflow.test") as http:
            response = await http.get(
                "/api/v1/accounts/acme/definitions", headers={"Authorization": "Bearer rf_abc_def"}
            )
            assert response.status_code == 503, response.text
            assert response.json()["code"] == 2001
            assert response.headers["retry-after"] == "1"
    finally:
        await runtime.close()
        await holder.close()
        await admin.execute(f'DROP ROLE "{role}"')
        await admin.close()


@pytest.mark.postgres
async def test_an_exhausted_pool_is_a_quick_503(postgres_url: str) -> None:
    # Every pooled connection busy (overload): the request waits pool_timeout_s, then is told
    # to come back, instead of queueing behind the others without bound.
    database = Database(postgres_url, pool_size=1, max_overflow=0, pool_timeout_s=0.2)
    runtime = Runtime(Settings(database_url=postgres_url), database, ManualClock())
    transport = httpx.ASGITransport(app=create_app(runtime))
    try:
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://relayflow.test") as http,
            database.transaction(),  # holds the only connection
        ):
            response = await http.post(
                "/webhooks/acme/sms?token=whatever", json={"eventType": "x", "payload": {}}
            )
            assert response.status_code == 503, response.text
            assert response.json()["code"] == 2001
            assert response.headers["retry-after"] == "1"
    finally:
        await runtime.close()


@pytest.mark.postgres
async def test_a_webhook_finding_the_direct_pool_busy_is_a_quick_503(postgres_url: str) -> None:
    # The router's one-statement route (store/postgres_starts.py) runs on asyncpg's own pool: its
    # errors reach the API unwrapped by SQLAlchemy and must be told apart from bugs as well.
    database = Database(postgres_url, pool_size=1, max_overflow=0, pool_timeout_s=0.2)
    runtime = Runtime(Settings(database_url=postgres_url), database, ManualClock())
    transport = httpx.ASGITransport(app=create_app(runtime))
    account = await runtime.accounts.create(f"direct{secrets.token_hex(4)}")
    pool = await database.asyncpg_pool()
    try:
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://relayflow.test") as http,
            pool.acquire(),  # holds the only connection
        ):
            response = await http.post(
                f"/webhooks/{account.account_id}/sms?token={account.webhook_token}",
                json={
                    "eventType": "inbound_message_received",
                    "payload": {"umid": "u-1", "source": "+6590000001", "body": "hi"},
                },
            )
            assert response.status_code == 503, response.text
            assert response.json()["code"] == 2001
    finally:
        await runtime.close()


def test_asyncpg_errors_of_a_lost_connection_are_unavailability() -> None:
    assert database_unavailable(asyncpg.TooManyConnectionsError("too many clients"))
    assert database_unavailable(asyncpg.ConnectionDoesNotExistError("connection was closed"))
    assert database_unavailable(asyncpg.CannotConnectNowError("starting up"))
    assert not database_unavailable(asyncpg.UniqueViolationError("duplicate key"))
    assert not database_unavailable(asyncpg.UndefinedColumnError("column x does not exist"))
