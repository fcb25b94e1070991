"""The engine's process purges by age on its own (issue 12): `Runtime.run_worker` runs the
retention loop beside the worker, and stops it with the worker."""

from __future__ import annotations

import asyncio

import httpx

from relayflow.api.context import AppContext
from tests.support.flows import Flow
from tests.support.tenants import Tenant

DAY_MS = 86_400_000


async def test_the_worker_process_purges_old_ended_instances(
    client: httpx.AsyncClient, tenant: Tenant, context: AppContext
) -> None:
    flow = Flow(client, tenant, context)
    definition = await flow.define(
        [{"id": "done", "stepType": "Wait", "inputs": {"duration": "00:00:01"}}],
        trigger="http_request",
    )
    [old] = await flow.http_trigger({})
    await flow.advance(2000)
    flow.clock.advance(31 * DAY_MS)  # the default retention is 30 days
    [young] = await flow.http_trigger({})  # still waiting: never purged, whatever its age
    stop = asyncio.Event()
    engine = asyncio.create_task(context.run_worker(stop))
    path = f"{tenant.base}/definitions/{definition}/workflows/{old}"
    for _ in range(400):
        if (await client.get(path, headers=tenant.headers)).status_code == 404:
            break
        await asyncio.sleep(0.025)
    stop.set()
    await asyncio.wait_for(engine, timeout=30)
    assert (await client.get(path, headers=tenant.headers)).status_code == 404
    assert (await flow.instance(definition, young))["status"] == "Runnable"
