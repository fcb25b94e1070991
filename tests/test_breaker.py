"""Circuit breakers per endpoint (channels/breaker.py), on a manual clock."""

from __future__ import annotations

import asyncio
import random

import pytest

from relayflow.channels.base import ChannelError
from relayflow.channels.breaker import Breaker, BreakerPolicy, Breakers, CircuitOpen
from relayflow.clock import ManualClock

ENDPOINT = "8x8 SMS API (https://sms.example)"
POLICY = BreakerPolicy(failure_threshold=5, probe_initial_s=1, probe_max_s=30, drain_rate=10)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def breakers(clock: ManualClock) -> Breakers:
    return Breakers(clock, POLICY, random.Random(7))


async def fail(breakers: Breakers, message: str = "HTTP 503", **kwargs: float) -> None:
    with pytest.raises(ChannelError) as raised:
        async with breakers.guard(ENDPOINT):
            raise ChannelError(message, transient=True, retry_after_s=kwargs.get("retry_after"))
    assert not isinstance(raised.value, CircuitOpen)


async def succeed(breakers: Breakers) -> None:
    async with breakers.guard(ENDPOINT):
        pass


async def deferred(breakers: Breakers) -> CircuitOpen:
    with pytest.raises(CircuitOpen) as raised:
        async with breakers.guard(ENDPOINT):
            raise AssertionError("a deferred request must not run")
    return raised.value


async def open_it(breakers: Breakers) -> None:
    for _ in range(POLICY.failure_threshold):
        await fail(breakers)


async def open_until_probe_time(breakers: Breakers, clock: ManualClock) -> Breaker:
    """Open the circuit, defer a backlog of sends, then move the clock to the first probe."""
    await open_it(breakers)
    breaker = breakers.get(ENDPOINT)
    assert breaker is not None
    for _ in range(20):
        await deferred(breakers)
    clock.advance(breaker.probe_at_ms - clock.now_ms())
    return breaker


async def test_healthy_endpoints_are_not_remembered(breakers: Breakers) -> None:
    await succeed(breakers)
    await fail(breakers)
    await succeed(breakers)  # a success resets the count: the endpoint is healthy again
    assert breakers.get(ENDPOINT) is None


async def test_it_opens_after_consecutive_failures_only(breakers: Breakers) -> None:
    for _ in range(POLICY.failure_threshold - 1):
        await fail(breakers)
    await succeed(breakers)
    for _ in range(POLICY.failure_threshold - 1):
        await fail(breakers)
    await succeed(breakers)  # four, a success, four: still closed
    await open_it(breakers)
    refused = await deferred(breakers)
    assert refused.transient
    assert refused.deferred
    assert not refused.sent
    assert "circuit is open after 5 consecutive failures (last: HTTP 503)" in refused.message
    assert ENDPOINT in refused.message
    assert refused.retry_after_s is not None
    assert 0 < refused.retry_after_s <= 2


async def test_non_transient_answers_count_as_the_endpoint_answering(breakers: Breakers) -> None:
    for _ in range(10):
        with pytest.raises(ChannelError):
            async with breakers.guard(ENDPOINT):
                raise ChannelError("Invalid destination")  # 8x8's 400: the API is up
    await succeed(breakers)


async def test_one_probe_at_a_time_then_growing_intervals(
    breakers: Breakers, clock: ManualClock
) -> None:
    await open_it(breakers)
    breaker = breakers.get(ENDPOINT)
    assert breaker is not None
    gaps = []
    for _ in range(8):
        wait = breaker.probe_at_ms - clock.now_ms()
        gaps.append(wait)
        clock.advance(wait)
        probe = breakers.guard(ENDPOINT)
        await probe.__aenter__()  # the probe is in flight ...
        await deferred(breakers)  # ... so nobody else is let through
        failure = ChannelError("still down", transient=True)
        assert await probe.__aexit__(ChannelError, failure, None) is False  # re-raised
    # Jittered between half and all of 1, 2, 4, ... 30 s.
    for index, gap in enumerate(gaps):
        interval = min(2**index, 30) * 1000
        assert interval / 2 <= gap <= interval, (index, gaps)


async def test_a_probe_waits_for_retry_after(breakers: Breakers, clock: ManualClock) -> None:
    for _ in range(POLICY.failure_threshold - 1):
        await fail(breakers)
    await fail(breakers, retry_after=45)
    breaker = breakers.get(ENDPOINT)
    assert breaker is not None
    assert breaker.probe_at_ms - clock.now_ms() == 45_000


async def test_deferred_sends_get_spread_slots_on_the_ramp(
    breakers: Breakers, clock: ManualClock
) -> None:
    await open_it(breakers)
    breaker = breakers.get(ENDPOINT)
    assert breaker is not None
    waits = [(await deferred(breakers)).retry_after_s or 0 for _ in range(1000)]
    probe_in = (breaker.probe_at_ms - clock.now_ms()) / 1000
    assert all(wait >= probe_in for wait in waits)
    assert waits[-1] > waits[0]
    # The ramp starts at 10/s and doubles every second: 1,000 sends fit in ~6 s, not 100 s.
    assert max(waits) - probe_in < 8


async def test_a_cancelled_probe_frees_the_slot(breakers: Breakers, clock: ManualClock) -> None:
    await open_until_probe_time(breakers, clock)
    with pytest.raises(asyncio.CancelledError):
        async with breakers.guard(ENDPOINT):
            raise asyncio.CancelledError
    async with breakers.guard(ENDPOINT) as call:  # the next one may probe
        assert call.probe


async def test_recovery_drains_at_a_bounded_rising_rate(
    breakers: Breakers, clock: ManualClock
) -> None:
    await open_until_probe_time(breakers, clock)
    await succeed(breakers)  # the probe succeeds: closed, draining
    admitted_per_second = []
    for _second in range(8):
        admitted = 0
        for _tick in range(100):  # 1,000 sends/s offered
            clock.advance(1)
            try:
                await succeed(breakers)
                admitted += 1
            except CircuitOpen:
                pass
        clock.advance(900)
        admitted_per_second.append(admitted)
    # ~10, 20, 40, ... per second: bounded while the ramp lasts, then everything.
    for second, admitted in enumerate(admitted_per_second[:6]):
        assert admitted <= 10 * 2 ** (second + 1) + 1, admitted_per_second
    assert admitted_per_second[0] < 25
    assert admitted_per_second[-1] == 100
    assert breakers.get(ENDPOINT) is None  # healthy again: forgotten


async def test_failures_while_draining_open_it_again(
    breakers: Breakers, clock: ManualClock
) -> None:
    breaker = await open_until_probe_time(breakers, clock)
    await succeed(breakers)
    for _ in range(POLICY.failure_threshold):
        clock.advance(200)
        await fail(breakers)
    assert breaker.open
    await deferred(breakers)


async def test_an_in_flight_success_closes_an_open_circuit(breakers: Breakers) -> None:
    slow = breakers.guard(ENDPOINT)
    await slow.__aenter__()  # admitted while closed
    await open_it(breakers)
    await slow.__aexit__(None, None, None)  # ... and answered: the endpoint is back
    # Nothing was deferred meanwhile, so there is no backlog to pace: healthy, forgotten.
    assert breakers.get(ENDPOINT) is None
    for _ in range(100):
        await succeed(breakers)


async def test_a_success_in_flight_after_deferrals_starts_the_drain(breakers: Breakers) -> None:
    slow = breakers.guard(ENDPOINT)
    await slow.__aenter__()
    await open_it(breakers)
    await deferred(breakers)
    await slow.__aexit__(None, None, None)
    breaker = breakers.get(ENDPOINT)
    assert breaker is not None
    assert not breaker.open
    assert breaker.drain_started_ms is not None


async def test_a_call_not_made_tells_nothing(breakers: Breakers, clock: ManualClock) -> None:
    breaker = await open_until_probe_time(breakers, clock)
    async with breakers.guard(ENDPOINT) as call:
        call.not_made()  # e.g. an answer recorded before a crash: nothing was sent
    assert breaker.open
    assert not breaker.probing


async def test_an_answer_marked_failed_counts(breakers: Breakers) -> None:
    for _ in range(POLICY.failure_threshold):
        async with breakers.guard(ENDPOINT) as call:
            call.failed("answered 503")
    refused = await deferred(breakers)
    assert "last: answered 503" in refused.message


async def test_endpoints_are_independent(breakers: Breakers) -> None:
    await open_it(breakers)
    async with breakers.guard("https://crm.example:443"):
        pass
