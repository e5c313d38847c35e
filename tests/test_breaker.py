"""The circuit breaker's states, driven by explicit time."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from pymonitor.actors.runtime.breaker import BreakerState, CircuitBreaker


def breaker() -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, open_for_ms=1_000, max_open_ms=8_000, rng=random.Random(1))


def test_a_closed_breaker_opens_after_the_threshold_of_failures_in_a_row() -> None:
    b = breaker()
    b.failure(0)
    b.success()  # a success in between resets the count
    b.failure(0)
    b.failure(0)
    assert b.state is BreakerState.CLOSED and b.allow(0)
    b.failure(0)
    assert b.state is BreakerState.OPEN
    assert not b.allow(1)


def test_after_the_wait_one_probe_goes_and_its_success_closes_the_breaker() -> None:
    b = breaker()
    for _ in range(3):
        b.failure(0)
    assert 500 <= b.retry_at_ms <= 1_000
    assert b.allow(b.retry_at_ms)
    assert b.state is BreakerState.HALF_OPEN
    assert not b.allow(b.retry_at_ms)  # only one probe at a time
    b.success()
    assert b.state is BreakerState.CLOSED and b.allow(b.retry_at_ms)


def test_a_failed_probe_reopens_with_a_longer_wait_up_to_the_ceiling() -> None:
    b = breaker()
    for _ in range(3):
        b.failure(0)
    waits = []
    now = 0
    for _ in range(6):
        now = b.retry_at_ms
        assert b.allow(now)
        b.failure(now)
        waits.append(b.retry_at_ms - now)
    ceilings = [2_000, 4_000, 8_000, 8_000, 8_000, 8_000]
    assert all(c / 2 <= w <= c for w, c in zip(waits, ceilings, strict=True))


@given(st.lists(st.tuples(st.sampled_from(["ok", "fail", "allow"]), st.integers(0, 5_000)), max_size=60))
def test_an_open_breaker_never_allows_before_its_retry_time(events: list[tuple[str, int]]) -> None:
    b = breaker()
    now = 0
    for kind, step in events:
        now += step
        if kind == "ok":
            b.success()
        elif kind == "fail":
            b.failure(now)
        else:
            was_open_early = b.state is BreakerState.OPEN and now < b.retry_at_ms
            allowed = b.allow(now)
            assert not (was_open_early and allowed)


def test_an_unanswered_probe_counts_as_a_failure_after_the_probe_timeout() -> None:
    b = CircuitBreaker(failure_threshold=1, open_for_ms=1_000, probe_timeout_ms=500, rng=random.Random(2))
    b.failure(0)
    probe_at = b.retry_at_ms
    assert b.allow(probe_at)
    assert not b.allow(probe_at + 499)  # still waiting for the probe's answer
    assert not b.allow(probe_at + 500)  # no answer: open again
    assert b.state is BreakerState.OPEN and b.retry_at_ms > probe_at + 500
