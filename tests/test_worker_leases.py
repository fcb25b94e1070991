"""Lease recovery: a restarted process releases the leases of dead processes of its host."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import select, update

from relayflow.api.context import AppContext
from relayflow.engine.worker import _host_tag
from relayflow.store.tables import instances
from tests.support.flows import Flow


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


async def test_leases_of_dead_local_processes_are_released(
    client, tenant, context: AppContext
) -> None:
    flow = Flow(client, tenant, context)
    await flow.define(
        [{"id": "w", "stepType": "Wait", "inputs": {"duration": "00:00:01"}}],
        trigger="http_request",
    )
    workflows = [(await flow.http_trigger({}))[0] for _ in range(4)]
    owners = {
        workflows[0]: f"{_host_tag()}-{_dead_pid()}-aaaaaa",  # this host, process gone
        workflows[1]: f"{_host_tag()}-{_dead_pid()}-bbbbbb",
        workflows[2]: f"other-host-{_dead_pid()}-cccccc",  # cannot tell: leave it
        workflows[3]: f"{_host_tag()}-1-dddddd",  # pid 1 is alive (init)
    }
    far = context.clock.now_ms() + 3_600_000
    async with context.db.transaction() as conn:
        for workflow, owner in owners.items():
            await conn.execute(
                update(instances)
                .where(instances.c.id == workflow)
                .values(lease_owner=owner, lease_until_ms=far)
            )
    assert await context.worker.release_dead_local_leases() == 2
    async with context.db.read() as conn:
        left = dict((await conn.execute(select(instances.c.id, instances.c.lease_owner))).all())
    assert left[workflows[0]] is None
    assert left[workflows[1]] is None
    assert left[workflows[2]] == owners[workflows[2]]
    assert left[workflows[3]] == owners[workflows[3]]
    await flow.advance(1000)  # the released instances run at once
    statuses = {
        i["workflowId"]: i["status"]
        for i in await flow.instances((await flow.call("GET", "/definitions"))[0]["id"])
    }
    assert statuses[workflows[0]] == statuses[workflows[1]] == "Complete"
    assert statuses[workflows[2]] == statuses[workflows[3]] == "Runnable"
