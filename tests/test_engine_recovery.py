"""A sprint cut off after its sends (its final write fails) must not send again when rerun."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relayflow.api.context import AppContext
from relayflow.engine.runner import successor_id
from tests.support.flows import Flow


def sms(step_id: str, text: str, next_step: str | None = None) -> dict[str, Any]:
    step: dict[str, Any] = {
        "id": step_id,
        "stepType": "SMS",
        "inputs": {"subAccountId": "acme_sms", "destination": "+6591234567", "text": text},
    }
    if next_step:
        step["nextStepId"] = next_step
    return step


async def test_rerun_after_a_lost_write_does_not_send_twice(
    client, tenant, context: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = Flow(client, tenant, context)
    definition = await flow.define(
        [sms("a", "first", "b"), sms("b", "second", "c"), sms("c", "third")], trigger="http_request"
    )
    await flow.call("POST", "/triggers/http_request", json={})
    hot_path = context.worker.hot_path
    real_save = hot_path.save
    failed: list[bool] = []

    async def save_failing_once(*args: Any, **kwargs: Any) -> bool:
        if kwargs.get("release") and not failed:
            failed.append(True)
            raise ConnectionError("connection lost (simulated database restart)")
        return await real_save(*args, **kwargs)

    monkeypatch.setattr(hot_path, "save", save_failing_once)
    await context.worker.run_once()  # the sprint sends all three, then its write fails
    assert failed
    assert len(await flow.outbox()) == 3
    flow.clock.advance(120_000)  # the lease expires; the instance runs again from its start
    await flow.run()
    outbox = await flow.outbox()
    assert [m["request"]["text"] for m in outbox] == ["first", "second", "third"]
    [instance] = await flow.instances(definition)
    assert instance["status"] == "Complete"
    logs = await flow.logs(definition, instance["workflowId"])
    assert logs == [("a", "Complete"), ("b", "Complete"), ("c", "Complete")]
    step_log_ids = [
        log["id"] for log in (await flow.instance(definition, instance["workflowId"]))["logs"]
    ]
    assert [m["stepLogId"] for m in outbox] == step_log_ids  # the same step executions


@given(predecessor=st.uuids(), step_id=st.text(max_size=80), index=st.integers(0, 50))
def test_successor_ids_are_uuid5_of_the_predecessor(
    predecessor: uuid.UUID, step_id: str, index: int
) -> None:
    expected = str(uuid.uuid5(predecessor, f"{index}:{step_id}"))
    assert successor_id(str(predecessor), step_id, index) == expected


def test_successor_ids_need_a_uuid() -> None:
    with pytest.raises(ValueError, match="not a UUID"):
        successor_id("not-a-uuid", "a", 0)
    with pytest.raises(ValueError, match="not a UUID"):
        successor_id("abcd", "a", 0)
