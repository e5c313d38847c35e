"""Injected clocks: the simulated one (deterministic) and the real, optionally accelerated one.

RealClock tests wait on events with generous timeouts and compare clock readings with bounds derived
from monotonic readings taken around them; none asserts how long anything took.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymonitor.actors.runtime.clock import Clock, RealClock, SimClock

START_MS = 1_767_225_600_000
WAIT_S = 10.0  # generous: only a broken clock gets near it


# ---------------------------------------------------------------- SimClock


def recorder(clock: SimClock, log: list[tuple[str, int]], label: str) -> Callable[[], None]:
    return lambda: log.append((label, clock.now_ms()))


def test_sim_clock_starts_where_told_and_only_moves_on_advance() -> None:
    clock = SimClock(start_ms=START_MS)
    assert clock.now_ms() == START_MS
    assert clock.speed == 0.0
    assert clock.advance(1_500) == 0
    assert clock.now_ms() == START_MS + 1_500


def test_sim_clock_fires_timers_in_due_order_at_their_due_time() -> None:
    clock = SimClock(start_ms=START_MS)
    log: list[tuple[str, int]] = []
    clock.call_later(3.0, recorder(clock, log, "c"))
    clock.call_later(1.0, recorder(clock, log, "a"))
    clock.call_later(2.0, recorder(clock, log, "b"))
    assert clock.advance(5_000) == 3
    assert log == [("a", START_MS + 1_000), ("b", START_MS + 2_000), ("c", START_MS + 3_000)]
    assert clock.now_ms() == START_MS + 5_000


def test_sim_clock_fires_timers_due_at_the_same_time_in_scheduling_order() -> None:
    clock = SimClock(start_ms=START_MS)
    log: list[tuple[str, int]] = []
    for label in "xyz":
        clock.call_later(1.0, recorder(clock, log, label))
    clock.advance(1_000)
    assert [label for label, _ in log] == ["x", "y", "z"]


def test_sim_clock_keeps_later_timers_for_a_later_advance() -> None:
    clock = SimClock(start_ms=START_MS)
    log: list[tuple[str, int]] = []
    clock.call_later(1.0, recorder(clock, log, "due"))
    clock.call_later(1.001, recorder(clock, log, "later"))
    assert clock.advance(1_000) == 1  # a timer due exactly at the end of the advance fires
    assert log == [("due", START_MS + 1_000)]
    assert clock.advance(1) == 1
    assert log[-1] == ("later", START_MS + 1_001)


def test_sim_clock_cancelled_timer_never_fires() -> None:
    clock = SimClock(start_ms=START_MS)
    log: list[tuple[str, int]] = []
    handle = clock.call_later(1.0, recorder(clock, log, "cancelled"))
    clock.call_later(2.0, recorder(clock, log, "kept"))
    handle.cancel()
    assert clock.advance(10_000) == 1
    assert log == [("kept", START_MS + 2_000)]


def test_sim_clock_fires_timers_scheduled_by_a_callback_within_the_same_advance() -> None:
    clock = SimClock(start_ms=START_MS)
    log: list[tuple[str, int]] = []

    def tick() -> None:
        log.append(("tick", clock.now_ms()))
        clock.call_later(1.0, tick)

    clock.call_later(1.0, tick)
    assert clock.advance(3_500) == 3
    assert log == [("tick", START_MS + 1_000), ("tick", START_MS + 2_000), ("tick", START_MS + 3_000)]
    assert clock.advance(500) == 1
    assert log[-1] == ("tick", START_MS + 4_000)


def test_sim_clock_callback_can_cancel_a_later_timer() -> None:
    clock = SimClock(start_ms=START_MS)
    log: list[tuple[str, int]] = []
    victim = clock.call_later(2.0, recorder(clock, log, "victim"))
    clock.call_later(1.0, victim.cancel)
    assert clock.advance(5_000) == 1
    assert log == []


def test_sim_clock_zero_or_negative_delay_fires_on_the_next_advance_at_now() -> None:
    clock = SimClock(start_ms=START_MS)
    log: list[tuple[str, int]] = []
    clock.call_later(0.0, recorder(clock, log, "zero"))
    clock.call_later(-5.0, recorder(clock, log, "negative"))
    assert log == []
    assert clock.advance(0) == 2
    assert log == [("zero", START_MS), ("negative", START_MS)]


def test_sim_clock_runs_ninety_days_of_hourly_timers() -> None:
    clock = SimClock(start_ms=START_MS)
    fired: list[int] = []

    def hourly() -> None:
        fired.append(clock.now_ms())
        clock.call_later(3_600.0, hourly)

    clock.call_later(3_600.0, hourly)
    assert clock.advance(90 * 24 * 3_600_000) == 90 * 24
    assert fired[-1] == START_MS + 90 * 24 * 3_600_000
    assert all(b - a == 3_600_000 for a, b in itertools.pairwise(fired))


@given(
    delays_ms=st.lists(st.integers(0, 10_000), max_size=30),
    steps_ms=st.lists(st.integers(0, 4_000), min_size=1, max_size=10),
)
@settings(max_examples=200, deadline=None)
def test_sim_clock_fires_each_due_timer_once_in_due_order(delays_ms: list[int], steps_ms: list[int]) -> None:
    clock = SimClock(start_ms=START_MS)
    log: list[tuple[int, int]] = []

    def record(i: int) -> Callable[[], None]:
        return lambda: log.append((i, clock.now_ms()))

    for i, delay in enumerate(delays_ms):
        clock.call_later(delay / 1000, record(i))
    fired = sum(clock.advance(step) for step in steps_ms)
    horizon = sum(steps_ms)
    expected = sorted((delay, i) for i, delay in enumerate(delays_ms) if delay <= horizon)
    assert fired == len(expected)
    assert log == [(i, START_MS + delay) for delay, i in expected]
    assert clock.now_ms() == START_MS + horizon


def test_sim_clock_never_moves_backwards() -> None:
    clock = SimClock(start_ms=START_MS)
    with contextlib.suppress(ValueError):  # refusing is a fix too
        clock.advance(-1_000)
    assert clock.now_ms() >= START_MS


def test_sim_clock_callback_sees_the_exact_due_ms_from_any_start() -> None:
    clock = SimClock(start_ms=0)
    seen: list[int] = []
    clock.call_later(1.001, lambda: seen.append(clock.now_ms()))
    clock.advance(2_000)
    assert seen == [1_001]


def test_clocks_satisfy_the_clock_protocol() -> None:
    def now(clock: Clock) -> int:
        return clock.now_ms()

    assert now(SimClock(start_ms=5)) == 5


# ---------------------------------------------------------------- RealClock


@pytest.fixture
def real_clocks() -> Iterator[Callable[..., RealClock]]:
    made: list[RealClock] = []

    def make(**kwargs: float) -> RealClock:
        clock = RealClock(**kwargs)  # type: ignore[arg-type]
        made.append(clock)
        return clock

    yield make
    for clock in made:
        clock.stop()


def test_real_clock_call_later_fires_on_the_clock_thread(real_clocks: Callable[..., RealClock]) -> None:
    clock = real_clocks()
    fired = threading.Event()
    threads: list[str] = []

    def callback() -> None:
        threads.append(threading.current_thread().name)
        fired.set()

    clock.call_later(0.01, callback)
    assert fired.wait(WAIT_S)
    assert threads == ["clock-timers"]


def test_real_clock_cancelled_timer_does_not_fire(real_clocks: Callable[..., RealClock]) -> None:
    clock = real_clocks()
    cancelled_fired = threading.Event()
    later_fired = threading.Event()
    handle = clock.call_later(0.3, cancelled_fired.set)
    handle.cancel()
    # Scheduled after the cancelled one with the same delay: due no earlier, so it fires after it would have.
    clock.call_later(0.3, later_fired.set)
    assert later_fired.wait(WAIT_S)
    assert not cancelled_fired.is_set()


def test_real_clock_survives_a_failing_callback(
    real_clocks: Callable[..., RealClock], caplog: pytest.LogCaptureFixture
) -> None:
    clock = real_clocks()
    fired = threading.Event()

    def boom() -> None:
        raise RuntimeError("callback bug")

    with caplog.at_level(logging.ERROR, logger="pymonitor.actors.runtime.clock"):
        clock.call_later(0.0, boom)
        clock.call_later(0.01, fired.set)
        assert fired.wait(WAIT_S)
    assert any("timer callback failed" in record.getMessage() for record in caplog.records)


def test_real_clock_at_normal_speed_reads_wall_time(real_clocks: Callable[..., RealClock]) -> None:
    clock = real_clocks()
    before = time.time_ns() // 1_000_000
    now = clock.now_ms()
    after = time.time_ns() // 1_000_000
    assert before <= now <= after
    assert clock.speed == 1.0


def test_accelerated_real_clock_moves_faster_than_real_time(real_clocks: Callable[..., RealClock]) -> None:
    speed = 1_000.0
    real_before_start = time.monotonic()
    clock = real_clocks(speed=speed, start_ms=0)
    real_after_start = time.monotonic()
    assert clock.speed == speed
    seen: list[int] = []
    fired = threading.Event()

    def callback() -> None:
        seen.append(clock.now_ms())
        fired.set()

    clock.call_later(1.0, callback)  # one clock-second is one real millisecond at this speed
    assert fired.wait(WAIT_S)
    assert seen[0] >= 999  # at least the delay in clock time (1 ms slack for float rounding)

    real_before_read = time.monotonic()
    now = clock.now_ms()
    real_after_read = time.monotonic()
    real_elapsed_min_ms = (real_before_read - real_after_start) * 1_000
    real_elapsed_max_ms = (real_after_read - real_before_start) * 1_000
    # Clock time is real time times the speed, within what the monotonic readings around it allow.
    assert speed * real_elapsed_min_ms - 1 <= now <= speed * real_elapsed_max_ms + 1
    assert now >= seen[0]


def test_accelerated_real_clock_starts_at_start_ms(real_clocks: Callable[..., RealClock]) -> None:
    real_before = time.monotonic()
    clock = real_clocks(speed=60.0, start_ms=START_MS)
    now = clock.now_ms()
    real_after = time.monotonic()
    assert START_MS <= now <= START_MS + 60.0 * (real_after - real_before) * 1_000 + 1


@pytest.mark.parametrize("speed", [0.0, -1.0, -1_000.0])
def test_real_clock_refuses_a_speed_that_is_not_positive(speed: float) -> None:
    with pytest.raises(ValueError, match="speed must be positive"):
        RealClock(speed=speed)
