"""The retry policy's schedule (engine/retry.py): backoff, jitter, window, Retry-After."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from relayflow.engine.retry import RetryPolicy

POLICY = RetryPolicy(initial_interval_s=1.0, max_interval_s=300.0, window_s=3600.0)
T0 = 1_700_000_000_000


def test_intervals_double_from_one_second_up_to_the_cap() -> None:
    assert [POLICY.interval_ms(n) for n in range(1, 12)] == [
        1_000,
        2_000,
        4_000,
        8_000,
        16_000,
        32_000,
        64_000,
        128_000,
        256_000,
        300_000,
        300_000,
    ]
    assert POLICY.interval_ms(10_000) == 300_000  # no overflow far out


@given(attempt=st.integers(1, 200), seed=st.text(max_size=40))
def test_equal_jitter_stays_within_half_and_all_of_the_interval(attempt: int, seed: str) -> None:
    interval = POLICY.interval_ms(attempt)
    delay = POLICY.backoff_ms(attempt, seed)
    assert interval / 2 <= delay <= interval
    assert POLICY.backoff_ms(attempt, seed) == delay  # the same step execution: the same time


def test_jitter_spreads_different_step_executions() -> None:
    delays = {POLICY.backoff_ms(10, f"pointer-{n}") for n in range(50)}
    assert len(delays) > 40
    assert min(delays) < 200_000 < max(delays)


def test_retry_after_is_honoured_never_sooner() -> None:
    soon = POLICY.next_attempt_ms(
        now_ms=T0, first_attempt_ms=T0, attempt=1, seed="p", retry_after_s=30
    )
    assert soon == T0 + 30_000
    # A Retry-After shorter than the backoff does not make the attempt earlier.
    later = POLICY.next_attempt_ms(
        now_ms=T0, first_attempt_ms=T0, attempt=9, seed="p", retry_after_s=1
    )
    assert later == T0 + POLICY.backoff_ms(9, "p")


def test_retry_after_never_goes_beyond_the_window() -> None:
    now = T0 + 3_590_000
    assert (
        POLICY.next_attempt_ms(
            now_ms=now, first_attempt_ms=T0, attempt=3, seed="p", retry_after_s=86_400
        )
        == T0 + 3_600_000
    )


def test_the_last_attempt_is_at_the_window_end_then_none() -> None:
    """Following the schedule from the first attempt: attempts until the window's end, the
    last one exactly at it, and then no more."""
    policy = RetryPolicy(initial_interval_s=1, max_interval_s=60, window_s=600)
    now, attempt, times = T0, 1, [T0]
    while True:
        following = policy.next_attempt_ms(
            now_ms=now, first_attempt_ms=T0, attempt=attempt, seed="x"
        )
        if following is None:
            break
        gap = following - now
        if following < T0 + 600_000:
            assert policy.interval_ms(attempt) / 2 <= gap <= policy.interval_ms(attempt)
        times.append(following)
        now, attempt = following, attempt + 1
    assert times[-1] == T0 + 600_000
    assert times == sorted(set(times))
    assert 12 <= len(times) <= 25  # 1+2+4+...+32 s, then a minute at most each


def test_a_zero_window_means_one_attempt() -> None:
    policy = RetryPolicy(window_s=0)
    assert policy.next_attempt_ms(now_ms=T0, first_attempt_ms=T0, attempt=1, seed="p") is None


def test_deferred_steps_come_back_when_told_within_the_window() -> None:
    assert POLICY.deferred_until_ms(now_ms=T0, first_attempt_ms=T0, wait_s=12.5) == T0 + 12_500
    end = T0 + 3_600_000
    assert POLICY.deferred_until_ms(now_ms=end - 5, first_attempt_ms=T0, wait_s=60) == end
    assert POLICY.deferred_until_ms(now_ms=end, first_attempt_ms=T0, wait_s=1) is None
