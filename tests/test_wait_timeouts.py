"""A wait may time out only if it stopped listening when its instance was loaded.

The load deletes the subscription of a wait whose timeout has passed, so no reply can reach it
any more. A wait whose timeout passes later, during the sprint, is still subscribed: timing it
out then would leave a subscription behind, and a reply arriving after it would be taken by a
finished step and lost. Such a wait must be left for the next sprint (whose load unsubscribes
it first)."""

from __future__ import annotations

from relayflow.api.context import AppContext
from relayflow.clock import ManualClock
from relayflow.engine.plan import compile_plan
from relayflow.instance_state import InstanceState, InstanceStatus, PointerState, PointerStatus

WAIT = {
    "id": "wait",
    "stepType": "WaitForReply",
    "inputs": {"from": "+6591234567", "channel": "sms", "timeout": "00:05:00"},
}


def waiting(now: int, loaded_at: int | None) -> InstanceState:
    pointer = PointerState(
        id="5f0c6a1e-7c1d-4c59-9d61-2f3a4b5c6d7e",
        seq=0,
        step_id="wait",
        parent_id=None,
        status=PointerStatus.WAITING_FOR_EVENT,
        started_at_ms=now - 300_000,
        wake_at_ms=now - 1,  # the timeout has just passed
        event_key="reply:sms:+6591234567",
    )
    return InstanceState(
        id="a" * 24,
        account_id="acme",
        definition_id="d1",
        version=1,
        sub_account_id=None,
        status=InstanceStatus.RUNNABLE,
        data={},
        started_at_ms=now - 300_000,
        completed_at_ms=None,
        executions=0,
        pointers={pointer.id: pointer},
        next_seq=1,
        loaded_at_ms=loaded_at,
    )


async def no_checkpoint(_state: InstanceState) -> None:
    raise AssertionError("a WaitForReply needs no checkpoint")


async def test_a_wait_still_listening_when_loaded_does_not_time_out(
    context: AppContext, clock: ManualClock
) -> None:
    now = clock.now_ms()
    state = waiting(now, loaded_at=now - 10)  # loaded before its timeout passed
    await context.runner.advance(state, compile_plan("d1", 1, [WAIT]), no_checkpoint)
    [pointer] = state.pointers.values()
    assert pointer.status == PointerStatus.WAITING_FOR_EVENT
    assert state.status == InstanceStatus.RUNNABLE


async def test_a_wait_that_stopped_listening_when_loaded_times_out(
    context: AppContext, clock: ManualClock
) -> None:
    now = clock.now_ms()
    state = waiting(now, loaded_at=now)
    await context.runner.advance(state, compile_plan("d1", 1, [WAIT]), no_checkpoint)
    [pointer] = state.pointers.values()
    assert not pointer.active  # timed out: the step has ended
    assert state.status == InstanceStatus.COMPLETE
