"""`/readyz` (issue 12): ready when the database answers at the newest schema and, where the
process runs the engine, the worker loop is alive and keeping up; otherwise 503 with reasons.
In-process on both databases, plus real `relayflow worker --metrics-port` and `serve` processes.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from relayflow.api.app import create_app
from relayflow.api.context import AppContext
from relayflow.clock import ManualClock
from relayflow.config import Settings
from relayflow.store.database import Database
from relayflow.store.migrations import head_revision
from tests.support.flows import Flow
from tests.support.processes import Processes, free_port, wait_for


async def readiness(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    """`/readyz`'s status code and JSON body."""
    response = await client.get("/readyz")
    return response.status_code, response.json()


@asynccontextmanager
async def schema_at(db: Database, revision: str) -> AsyncIterator[None]:
    """The database claims to be at `revision` inside the block; back at head after, so the
    next test finds the schema it expects."""
    set_version = text("UPDATE alembic_version SET version_num = :revision")
    async with db.transaction() as conn:
        await conn.execute(set_version, {"revision": revision})
    try:
        yield
    finally:
        async with db.transaction() as conn:
            await conn.execute(set_version, {"revision": head_revision()})


async def a_loop_that_runs() -> None:
    """Stands for the worker loop's task: alive until cancelled."""
    await asyncio.Event().wait()


@pytest.fixture
async def engine_running(context: AppContext) -> AsyncIterator[None]:
    """This process "runs the engine": a live task stands for the worker loop."""
    task = asyncio.create_task(a_loop_that_runs())
    context.engine_task = task
    yield
    task.cancel()
    context.engine_task = None


async def test_an_api_process_is_ready_when_its_database_is(client: httpx.AsyncClient) -> None:
    status, body = await readiness(client)
    assert status == 200
    assert body["status"] == "ready"
    assert body["checks"] == {"database": "ok", "schema": "ok"}  # no engine here


async def test_a_schema_behind_the_code_is_not_ready(
    client: httpx.AsyncClient, context: AppContext
) -> None:
    head = head_revision()
    async with schema_at(context.db, "0001"):
        status, body = await readiness(client)
    assert status == 503
    assert body["checks"]["schema"] == f"at 0001, expected {head}"
    assert "relayflow db upgrade" in str(body["reasons"])


async def test_a_schema_a_newer_release_migrated_stays_ready(
    client: httpx.AsyncClient, context: AppContext
) -> None:
    """A rolling upgrade: `db upgrade` of the next release ran, this older process carries on."""
    head = head_revision()
    async with schema_at(context.db, "9999"):
        status, body = await readiness(client)
    assert status == 200, body
    assert body["checks"]["schema"] == f"at 9999, newer than this release ({head})"


@pytest.mark.usefixtures("engine_running")
async def test_an_engine_that_keeps_up_is_ready_and_one_behind_is_not(flow: Flow) -> None:
    await flow.define(
        [{"id": "pause", "stepType": "Wait", "inputs": {"duration": "00:00:05"}}],
        trigger="http_request",
    )
    await flow.http_trigger({})
    status, body = await readiness(flow.client)
    assert status == 200
    assert body["checks"]["worker"] == "ok"

    flow.clock.advance(5000 + 60_000)  # the timer has been due for a minute; nobody ran it
    status, body = await readiness(flow.client)
    assert status == 503
    assert body["checks"]["worker"] == "behind"
    assert "waited 60 s" in str(body["reasons"])

    await flow.run()  # the worker catches up
    assert (await readiness(flow.client))[0] == 200


async def test_an_engine_whose_loop_ended_is_not_ready(
    client: httpx.AsyncClient, context: AppContext
) -> None:
    async def ended() -> None:
        return None

    context.engine_task = asyncio.create_task(ended())
    await context.engine_task
    status, body = await readiness(client)
    assert status == 503
    assert body["checks"]["worker"] == "stopped"


STALL_AFTER_S = 1.0  # the allowed lag in the stalled test: short, so it waits 1 s, not 30


async def test_an_engine_whose_loop_does_not_come_round_is_stalled(
    database_url: str, db: Database, clock: ManualClock
) -> None:
    """The loop's task is alive but the loop has not come round (nor a sprint ended) for longer
    than the allowed lag: a stuck loop is not ready, though no due work waits."""
    settings = Settings(database_url=database_url, ready_max_lag_seconds=STALL_AFTER_S)
    runtime = AppContext(settings=settings, db=db, clock=clock)
    runtime.engine_task = asyncio.create_task(a_loop_that_runs())
    transport = httpx.ASGITransport(app=create_app(runtime))
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://relayflow.test"
        ) as client:
            await runtime.worker.run_once()  # the loop comes round: its heartbeat is fresh
            status, body = await readiness(client)
            assert status == 200, body

            await asyncio.sleep(STALL_AFTER_S + 0.3)  # then it does not, for longer than allowed
            status, body = await readiness(client)
            assert status == 503, body
            assert body["checks"]["worker"] == "stalled"
            assert "the worker loop has not come round for" in str(body["reasons"])

            await runtime.worker.run_once()  # it comes round again
            status, body = await readiness(client)
            assert status == 200, body
    finally:
        runtime.engine_task.cancel()
        runtime.evaluator.close()
        await runtime.http.close()


async def test_a_database_that_does_not_answer_is_not_ready(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}"
    runtime = AppContext(settings=Settings(database_url=url), db=Database(url))
    try:
        result = await runtime.monitoring.readiness()
    finally:
        await runtime.close()
    assert not result.ready
    assert result.checks == {"database": "unavailable"}
    assert "does not answer" in result.reasons[0]


@pytest.mark.slow
def test_a_worker_serves_metrics_and_readiness_on_its_port(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'worker.db'}"
    port = free_port()
    with Processes(tmp_path) as procs:
        worker = procs.worker(db_url, "worker", metrics_port=str(port))
        worker.wait_started()
        base = f"http://127.0.0.1:{port}"

        def ready() -> httpx.Response | None:
            try:
                response = httpx.get(f"{base}/readyz", timeout=5)
            except httpx.TransportError:
                return None
            return response if response.status_code == 200 else None

        body = wait_for(ready, "the worker's /readyz").json()
        assert body["checks"] == {"database": "ok", "schema": "ok", "worker": "ok"}
        metrics = httpx.get(f"{base}/metrics", timeout=5)
        assert metrics.status_code == 200
        assert "relayflow_work_due 0.0" in metrics.text
        assert 'relayflow_instances{status="Runnable"} 0.0' in metrics.text
        assert httpx.get(f"{base}/healthz", timeout=5).json()["status"] == "ok"
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(timeout=60) == 0


@pytest.mark.slow
def test_a_worker_without_a_metrics_port_listens_nowhere(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'worker.db'}"
    with Processes(tmp_path) as procs:
        worker = procs.worker(db_url, "worker")
        worker.wait_started()
        assert "metrics on" not in worker.stdout
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(timeout=60) == 0


@pytest.mark.slow
def test_serve_reports_its_engine_in_readiness(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'serve.db'}"
    with Processes(tmp_path) as procs:
        server = procs.serve(db_url, "serve")
        server.wait_healthy()
        response = httpx.get(f"{server.base_url}/readyz", timeout=5)
        assert response.status_code == 200, response.text
        assert response.json()["checks"]["worker"] == "ok"
