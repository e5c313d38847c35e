"""DailyBudget: the stride follows the day's pace against the budget, on a simulated clock."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymonitor.actors.uplink import DailyBudget, UplinkError
from pymonitor.actors.uplink.budget import DAY_MS, MAX_STRIDE

MINUTE_MS = 60_000
DAY0 = 20_000 * DAY_MS  # 2024-10-04T00:00Z, a whole UTC day


def run_day(
    budget: DailyBudget,
    *,
    start_ms: int,
    minutes: int,
    readings_per_minute: int,
    events_per_minute: int = 0,
) -> list[int]:
    """A gateway whose readings shrink with the stride (events never do); returns the stride each minute."""
    strides = []
    for minute in range(minutes):
        now = start_ms + minute * MINUTE_MS
        stride = budget.stride(now)
        strides.append(stride)
        budget.add("readings", readings_per_minute // stride, now)
        if events_per_minute:
            budget.add("events", events_per_minute, now)
    return strides


def changes(strides: list[int]) -> int:
    return sum(a != b for a, b in zip(strides, strides[1:], strict=False))


def test_unlimited_budget_always_samples_everything_and_still_counts() -> None:
    budget = DailyBudget(None)
    strides = run_day(budget, start_ms=DAY0, minutes=1440, readings_per_minute=10**6)
    assert set(strides) == {1}
    assert budget.used_bytes(DAY0 + DAY_MS - 1) == 1440 * 10**6
    assert not budget.essential_only(DAY0 + DAY_MS - 1)


def test_stride_rises_when_the_pace_would_overrun_the_day() -> None:
    budget = DailyBudget(10_000_000)
    per_minute = 4 * 10_000_000 // 1440  # four times the budget's pace
    strides = run_day(budget, start_ms=DAY0, minutes=1440, readings_per_minute=per_minute)
    assert strides[0] == 1
    assert strides[60] >= 4  # within the first hour
    assert budget.used_bytes(DAY0 + DAY_MS - 1) <= 10_000_000  # and the day stays inside the budget
    assert budget.used_bytes(DAY0 + DAY_MS - 1) >= 0.85 * 10_000_000  # without wasting it
    assert changes(strides) <= 4


def test_stride_does_not_flap_at_the_edge_of_the_budget() -> None:
    budget = DailyBudget(10_000_000)
    per_minute = int(2.05 * 10_000_000 / 1440)  # just over twice the pace: stride 4 fits, stride 2 does not
    strides = run_day(budget, start_ms=DAY0, minutes=1440, readings_per_minute=per_minute)
    assert changes(strides) <= 3
    assert budget.used_bytes(DAY0 + DAY_MS - 1) <= 10_000_000


def test_stride_falls_back_when_the_pace_drops() -> None:
    budget = DailyBudget(10_000_000)
    heavy = run_day(budget, start_ms=DAY0, minutes=240, readings_per_minute=8 * 10_000_000 // 1440)
    assert heavy[-1] >= 8
    light = run_day(budget, start_ms=DAY0 + 240 * MINUTE_MS, minutes=600, readings_per_minute=10_000_000 // 1440 // 4)
    assert light[-1] == 1
    assert light == sorted(light, reverse=True)  # straight down, no bouncing


def test_a_new_utc_day_starts_at_stride_one_with_zero_counts() -> None:
    budget = DailyBudget(1_000_000)
    run_day(budget, start_ms=DAY0, minutes=1440, readings_per_minute=10_000)
    assert budget.stride(DAY0 + DAY_MS - 1) > 1
    assert budget.stride(DAY0 + DAY_MS) == 1
    status = budget.status(DAY0 + DAY_MS)
    assert status["day"] == "2024-10-05"
    assert status["bytes"] == {}
    assert status["stride"] == 1


def test_spent_budget_allows_essential_traffic_only_until_midnight() -> None:
    budget = DailyBudget(100_000)
    budget.add("backfill", 100_000, DAY0 + 3_600_000)
    assert budget.essential_only(DAY0 + 3_600_001)
    assert budget.stride(DAY0 + 3_600_001) == MAX_STRIDE
    assert not budget.essential_only(DAY0 + DAY_MS)
    assert budget.stride(DAY0 + DAY_MS) == 1


def test_one_early_burst_decides_nothing_before_a_pace_window() -> None:
    budget = DailyBudget(10_000_000)
    budget.add("backfill", 1_000_000, DAY0 + 1_000)  # a reconnect flushes a backlog
    assert budget.stride(DAY0 + 2_000) == 1
    assert budget.projected_bytes(DAY0 + 2_000) is None


def test_status_is_json_friendly() -> None:
    budget = DailyBudget(5_000_000)
    budget.add("readings", 1234, DAY0 + 5)
    budget.add("events", 10, DAY0 + 6)
    status = budget.status(DAY0 + 7)
    assert json.loads(json.dumps(status)) == status
    assert status == {
        "day": "2024-10-04",
        "bytes": {"events": 10, "readings": 1234},
        "used_bytes": 1244,
        "budget_bytes": 5_000_000,
        "projected_bytes": None,
        "stride": 1,
        "essential_only": False,
    }


# persistence

adds = st.lists(
    st.tuples(
        st.sampled_from(["readings", "backfill", "events"]), st.integers(0, 200_000), st.integers(0, 10 * MINUTE_MS)
    ),
    max_size=80,
)


@settings(max_examples=80, deadline=None)
@given(adds=adds, budget_bytes=st.one_of(st.none(), st.integers(1, 20_000_000)))
def test_state_round_trips_and_decides_the_same_afterwards(
    adds: list[tuple[str, int, int]], budget_bytes: int | None
) -> None:
    budget = DailyBudget(budget_bytes)
    now = DAY0 + 12 * 3_600_000
    for stream, nbytes, step in adds:
        now += step
        budget.add(stream, nbytes, now)
        budget.stride(now)
    state = budget.to_state()
    assert all(isinstance(k, str) and isinstance(v, int | str) for k, v in state.items())
    restored = DailyBudget.from_state(json.loads(json.dumps(state)), budget_bytes)
    assert restored.to_state() == state
    for later in (now, now + 20 * MINUTE_MS, now + DAY_MS):
        assert restored.stride(later) == budget.stride(later)
        assert restored.status(later) == budget.status(later)


def test_restart_mid_day_keeps_the_days_counts() -> None:
    budget = DailyBudget(1_000_000)
    run_day(budget, start_ms=DAY0, minutes=300, readings_per_minute=5_000)
    restored = DailyBudget.from_state(budget.to_state(), 1_000_000)
    now = DAY0 + 300 * MINUTE_MS
    assert restored.status(now) == budget.status(now)
    assert restored.stride(now) > 1


def test_a_smaller_max_stride_in_config_clamps_a_saved_stride() -> None:
    state: dict[str, Any] = {"v": 1, "day": "2024-10-04", "stride": 32, "since_ms": DAY0, "since_bytes": 0}
    assert DailyBudget.from_state(state, 10, max_stride=8).status(DAY0)["stride"] == 8


@pytest.mark.parametrize(
    ("state", "where"),
    [
        ({"v": 2}, "'v'"),
        ({"v": 1, "day": "yesterday"}, "'day'"),
        ({"v": 1, "day": 20_000}, "'day'"),
        ({"v": 1, "stride": 3}, "'stride'"),
        ({"v": 1, "bytes.readings": -5}, "'bytes.readings'"),
        ({"v": 1, "bytes.readings": "5"}, "'bytes.readings'"),
        ({"v": 1, "since_ms": True}, "'since_ms'"),
        ({"v": 1, "colour": 1}, "'colour'"),
    ],
)
def test_a_bad_state_names_the_key(state: dict[str, Any], where: str) -> None:
    with pytest.raises(UplinkError, match=where):
        DailyBudget.from_state(state, 1_000)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.one_of(st.sampled_from(["v", "day", "stride", "since_ms", "since_bytes", "bytes.x"]), st.text(max_size=8)),
        st.one_of(st.integers(-(2**70), 2**70), st.text(max_size=12), st.none(), st.booleans(), st.floats()),
        max_size=8,
    )
)
def test_any_state_loads_or_raises_uplink_error(state: dict[str, Any]) -> None:
    try:
        DailyBudget.from_state(state, 1_000)
    except UplinkError:
        pass


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(UplinkError, match="budget_bytes"):
        DailyBudget(0)
    with pytest.raises(UplinkError, match="max_stride"):
        DailyBudget(10, max_stride=12)
    with pytest.raises(UplinkError, match="nbytes"):
        DailyBudget(10).add("readings", -1, DAY0)
