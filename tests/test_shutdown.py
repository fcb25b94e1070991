"""Graceful stop of a worker, in-process on SQLite and PostgreSQL: once `stop` is set nothing is
claimed or started any more, sprints under way end after the step under way (or are cancelled
when the grace period ends), and every lease the worker held is released at once for another
worker to take over.

A sprint is held mid-step by a real HTTP server on loopback that answers an HttpRequest step
only when the test lets it.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select, update

from relayflow.api.context import AppContext
from relayflow.config import Settings
from relayflow.engine.worker import Worker, WorkerSettings
from relayflow.store.tables import instances, pointers
from tests.support.flows import Flow

OWNER = "shutdown-test-worker"
FOREIGN = "another-host-4242-abcdef"  # a lease of someone else: never released by this worker


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, http_allowlist="127.0.0.0/8")


class HeldSite:
    """An HTTP endpoint that answers only once `answer` is set; `arrived` counts requests."""

    def __init__(self) -> None:
        self.answer = asyncio.Event()
        self.arrived = 0
        self.first_arrival = asyncio.Event()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/slow"
        app = web.Application()
        app.router.add_get("/slow", self._handle)
        self._runner = web.AppRunner(app)

    async def _handle(self, request: web.Request) -> web.Response:
        self.arrived += 1
        self.first_arrival.set()
        await self.answer.wait()
        return web.json_response({"ok": True})

    async def start(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def close(self) -> None:
        self.answer.set()
        await self._runner.cleanup()


@pytest.fixture
async def site() -> AsyncIterator[HeldSite]:
    held = HeldSite()
    await held.start()
    yield held
    await held.close()


async def define_call_then_sms(flow: Flow, site: HeldSite) -> str:
    return await flow.define(
        [
            {
                "id": "call",
                "stepType": "HttpRequest",
                "inputs": {"url": site.url, "method": "GET", "timeoutSeconds": 30},
                "nextStepId": "send",
            },
            {
                "id": "send",
                "stepType": "SMS",
                "inputs": {
                    "subAccountId": "acme_sms",
                    "destination": "+6591234567",
                    "text": "after the call {{data.n}}",
                },
            },
        ],
        trigger="http_request",
    )


async def trigger(flow: Flow, n: int) -> str:
    """Start one instance without running it (the harness's own trigger runs the worker)."""
    result = await flow.call("POST", "/triggers/http_request", json={"n": n})
    [workflow] = result["workflowIds"]
    workflow_id: str = workflow
    return workflow_id


def worker_of(context: AppContext, **settings: Any) -> Worker:
    return Worker(
        context.db, context.runner, context.clock, WorkerSettings(**settings), owner=OWNER
    )


async def leases(context: AppContext) -> dict[str, str | None]:
    async with context.db.read() as conn:
        rows = await conn.execute(select(instances.c.id, instances.c.lease_owner))
        return {row.id: row.lease_owner for row in rows}


async def started_steps(context: AppContext, workflow: str) -> list[tuple[str, str, int]]:
    async with context.db.read() as conn:
        rows = await conn.execute(
            select(pointers.c.step_id, pointers.c.status, pointers.c.attempt)
            .where(pointers.c.instance_id == workflow)
            .order_by(pointers.c.seq)
        )
        return [(row.step_id, row.status, row.attempt) for row in rows]


async def not_done_after(task: asyncio.Task[None], seconds: float) -> bool:
    """True when `task` is still running after `seconds` (it waits for something held)."""
    done, _ = await asyncio.wait({task}, timeout=seconds)
    return not done


async def test_a_stop_lets_the_sprint_finish_and_starts_nothing_claimed(
    flow: Flow, context: AppContext, site: HeldSite
) -> None:
    """Three instances claimed in one batch, one running: the stop waits for that one's step
    (held by the site), does not start the other two, and releases all three leases at once."""
    definition = await define_call_then_sms(flow, site)
    workflows = [await trigger(flow, n) for n in range(3)]
    foreign = await trigger(flow, 99)
    async with context.db.transaction() as conn:
        far = context.clock.now_ms() + 3_600_000
        await conn.execute(
            update(instances)
            .where(instances.c.id == foreign)
            .values(lease_owner=FOREIGN, lease_until_ms=far)
        )
    worker = worker_of(context, batch_size=3, concurrency=1, shutdown_grace_s=600)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stop))
    await asyncio.wait_for(site.first_arrival.wait(), 30)
    held = await leases(context)
    assert sorted(w for w, owner in held.items() if owner == OWNER) == sorted(workflows)

    stop.set()
    assert await not_done_after(task, 0.3), "the stop did not wait for the sprint under way"
    site.answer.set()
    await asyncio.wait_for(task, 30)

    assert site.arrived == 1, "a claimed instance was started after the stop"
    statuses = {i["workflowId"]: i["status"] for i in await flow.instances(definition)}
    assert all(status == "Runnable" for status in statuses.values()), statuses
    steps = {w: await started_steps(context, w) for w in workflows}
    # The sprint under way ended after its step (the call answered and kept), not after the
    # whole flow: the SMS after it is left due for the next worker.
    [ran] = [w for w in workflows if steps[w][0][1] == "Complete"]
    assert steps[ran] == [("call", "Complete", 1), ("send", "Pending", 0)]
    for workflow in workflows:
        if workflow != ran:
            assert steps[workflow] == [("call", "Pending", 0)]
    after = await leases(context)
    assert [w for w, owner in after.items() if owner == OWNER] == []
    assert after[foreign] == FOREIGN, "the worker released a lease it did not hold"
    assert await flow.outbox() == []

    # Another worker takes the rest over at once: no lease to wait out.
    await context.worker.run_until_idle()
    statuses = {i["workflowId"]: i["status"] for i in await flow.instances(definition)}
    assert all(statuses[w] == "Complete" for w in workflows)
    sent = sorted(m["workflowId"] for m in await flow.outbox())
    assert sent == sorted(workflows), "each instance sends exactly once"
    assert site.arrived == 3, "the call the stopped sprint made was not made again"


async def test_a_sprint_still_running_after_the_grace_is_cancelled_and_rerun_elsewhere(
    flow: Flow, context: AppContext, site: HeldSite
) -> None:
    """The site never answers within the grace: the sprint is cancelled, its lease released,
    and the instance (checkpointed before the call) runs the call again on another worker."""
    grace_s = 0.5
    definition = await define_call_then_sms(flow, site)
    workflow = await trigger(flow, 1)
    worker = worker_of(context, shutdown_grace_s=600)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stop, grace_s=grace_s))  # overrides 600
    await asyncio.wait_for(site.first_arrival.wait(), 30)

    stopped_at = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, 30)
    assert time.monotonic() - stopped_at >= grace_s, "cancelled before the grace period ended"

    assert (await leases(context))[workflow] is None
    # The checkpoint before the call stands: attempt 1, the step due again.
    assert await started_steps(context, workflow) == [("call", "Running", 1)]
    assert await flow.outbox() == []

    site.answer.set()
    await context.worker.run_until_idle()
    [instance] = await flow.instances(definition)
    assert instance["status"] == "Complete"
    assert site.arrived == 2  # a GET cut off by the stop is repeated
    assert await started_steps(context, workflow) == [
        ("call", "Complete", 2),
        ("send", "Complete", 1),
    ]
    assert len(await flow.outbox()) == 1


async def test_an_idle_worker_stops_at_once_and_holds_nothing(
    flow: Flow, context: AppContext, site: HeldSite
) -> None:
    worker = worker_of(context, shutdown_grace_s=600)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stop))
    await asyncio.sleep(0.05)
    assert not task.done()
    stop.set()
    # Nothing under way: the grace period (600 s) is not waited for.
    await asyncio.wait_for(task, 30)
    assert worker.stopping
    definition = await define_call_then_sms(flow, site)
    await trigger(flow, 1)
    assert await worker.release_own_leases() == 0
    [instance] = await flow.instances(definition)
    assert instance["status"] == "Runnable"
    assert site.arrived == 0
