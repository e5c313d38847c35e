"""The aggregation pass: windows, functions, gaps, bad input, and rollups equal to direct summaries."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymonitor.actors.summary import (
    CountWindow,
    Sliding,
    StateSeries,
    Summary,
    SummaryError,
    Tumbling,
    WhileState,
    above,
    rollup,
    summarise,
)

MINUTE_MS, HOUR_MS = 60_000, 3_600_000


def _hour_of_samples(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.integers(0, 2 * HOUR_MS, 3_000)) + 7 * HOUR_MS
    values = rng.normal(20.0, 5.0, ts.size)
    values[rng.integers(0, ts.size, 30)] = np.nan
    return ts, values


def _same(a: Summary, b: Summary) -> None:
    for field in ("start_ms", "end_ms", "count", "skipped", "min", "max", "first", "last", "first_ts_ms", "last_ts_ms"):
        assert getattr(a, field) == getattr(b, field), field
    assert (a.gaps, a.longest_gap_ms) == (b.gaps, b.longest_gap_ms)
    assert math.isclose(a.sum, b.sum, rel_tol=1e-12)
    assert math.isclose(a.mean, b.mean, rel_tol=1e-12)
    assert math.isclose(a.stddev, b.stddev, rel_tol=1e-9)
    assert a.sketch == b.sketch


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_minutes_rolled_up_to_hours_equal_the_hours_summarised_directly(seed: int) -> None:
    ts, values = _hour_of_samples(seed)
    minutes = summarise(ts, values, Tumbling(MINUTE_MS), max_gap_ms=2_000, quantiles=True)
    direct = summarise(ts, values, Tumbling(HOUR_MS), max_gap_ms=2_000, quantiles=True)
    rolled = rollup(minutes, Tumbling(HOUR_MS))
    assert len(rolled) == len(direct) == 2
    for a, b in zip(rolled, direct):
        _same(a, b)
        assert a.gaps > 0  # gaps across minute boundaries are found by the merge


def test_sums_of_sensor_grid_values_roll_up_exactly() -> None:
    ts = np.arange(0, HOUR_MS, 1_000)
    values = np.round(np.random.default_rng(5).normal(20, 3, ts.size) * 64) / 64  # an ADC's grid
    minutes = summarise(ts, values, Tumbling(MINUTE_MS))
    assert rollup(minutes, Tumbling(HOUR_MS))[0].sum == summarise(ts, values, Tumbling(HOUR_MS))[0].sum


def test_functions_match_numpy_on_each_tumbling_window() -> None:
    ts, values = _hour_of_samples(7)
    for s in summarise(ts, values, Tumbling(10 * MINUTE_MS), quantiles=True):
        inside = (ts >= s.start_ms) & (ts < s.end_ms)
        v = values[inside]
        ok = v[np.isfinite(v)]
        assert s.skipped == int((~np.isfinite(v)).sum())
        got = s.values(["count", "min", "max", "sum", "avg", "stddev", "first", "last", "p50", "p99"])
        assert got["count"] == ok.size
        assert (got["min"], got["max"], got["first"], got["last"]) == (ok.min(), ok.max(), ok[0], ok[-1])
        assert math.isclose(got["avg"], ok.mean(), rel_tol=1e-12)
        assert math.isclose(got["stddev"], ok.std(), rel_tol=1e-9)
        true50 = np.sort(ok)[math.floor(0.5 * (ok.size - 1))]
        assert abs(got["p50"] - true50) <= 0.01 * abs(true50) * (1 + 1e-9)


def test_sliding_windows_hold_the_samples_of_their_span() -> None:
    ts = np.arange(0, 10_000, 500)
    values = ts / 1000.0
    windows = summarise(ts, values, Sliding(size_ms=3_000, step_ms=2_000))
    assert [(w.start_ms, w.end_ms) for w in windows][:3] == [(-2_000, 1_000), (0, 3_000), (2_000, 5_000)]
    for w in windows:
        inside = values[(ts >= w.start_ms) & (ts < w.end_ms)]
        assert (w.count, w.sum, w.min, w.max) == (inside.size, inside.sum(), inside.min(), inside.max())


def test_count_windows_hold_n_valid_samples_and_count_skipped_ones() -> None:
    values = np.array([1.0, np.nan, 2.0, 3.0, np.inf, 4.0, 5.0])
    windows = summarise(np.arange(7) * 1000, values, CountWindow(2))
    assert [(w.count, w.skipped, w.sum) for w in windows] == [(2, 1, 3.0), (2, 1, 7.0), (1, 0, 5.0)]


def test_condition_windows_are_runs_above_a_threshold_not_broken_by_nan() -> None:
    values = np.array([1.0, 6.0, 7.0, np.nan, 8.0, 2.0, 9.0])
    windows = summarise(np.arange(7) * 1000, values, above(5.0))
    assert [(w.start_ms, w.end_ms, w.count, w.skipped) for w in windows] == [(1000, 5000, 3, 1), (6000, 6001, 1, 0)]


def test_while_state_windows_follow_another_series() -> None:
    pump = StateSeries(np.array([1_500, 4_500]), np.array([True, False]))
    windows = summarise(np.arange(7) * 1000, np.arange(7.0), WhileState(pump))
    assert [(w.first_ts_ms, w.last_ts_ms, w.sum) for w in windows] == [(2000, 4000, 9.0)]


def test_gaps_count_intervals_longer_than_the_max_gap() -> None:
    ts = np.array([0, 1_000, 2_000, 9_000, 10_000, 30_000])
    (s,) = summarise(ts, np.ones(6), Tumbling(60_000), max_gap_ms=5_000)
    assert (s.gaps, s.longest_gap_ms) == (2, 20_000)


def test_out_of_order_timestamp_is_refused_naming_its_index() -> None:
    with pytest.raises(SummaryError, match=r"ts_ms\[2\]: 500 is before ts_ms\[1\]"):
        summarise([0, 1000, 500], [1.0, 2.0, 3.0], Tumbling(60_000))


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Tumbling(0), "size_ms"),
        (lambda: Sliding(1000, 2000), "step_ms"),
        (lambda: Sliding(1000, -1), "step_ms"),
        (lambda: CountWindow(0), "at n"),
    ],
)
def test_impossible_window_is_refused_naming_the_field(make, field: str) -> None:
    with pytest.raises(SummaryError, match=field):
        make()


def test_unknown_function_and_quantile_without_sketch_are_refused() -> None:
    (s,) = summarise([0, 1], [1.0, 2.0], Tumbling(60_000))
    with pytest.raises(SummaryError, match="unknown function 'median'"):
        s.value("median")
    with pytest.raises(SummaryError, match="needs a sketch"):
        s.value("p99")


def test_window_of_only_nan_reports_nothing_but_its_count() -> None:
    (s,) = summarise([0, 1], [math.nan, math.inf], Tumbling(60_000), quantiles=True)
    assert s.values(["count", "avg", "p50"]) == {"count": 0, "avg": None, "p50": None}
    assert s.skipped == 2


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10_000), st.floats(-1e6, 1e6)), min_size=1, max_size=200))
def test_any_split_point_rolls_up_to_the_same_summary(samples: list[tuple[int, float]]) -> None:
    samples.sort(key=lambda s: s[0])
    ts = np.array([s[0] for s in samples])
    values = np.array([s[1] for s in samples])
    fine = summarise(ts, values, Tumbling(1_000), max_gap_ms=300, quantiles=True)
    (whole,) = summarise(ts, values, Tumbling(20_000), max_gap_ms=300, quantiles=True)
    (rolled,) = rollup(fine, Tumbling(20_000))
    assert (rolled.count, rolled.min, rolled.max, rolled.gaps, rolled.longest_gap_ms) == (
        whole.count,
        whole.min,
        whole.max,
        whole.gaps,
        whole.longest_gap_ms,
    )
    assert rolled.sketch == whole.sketch
    assert math.isclose(rolled.mean, whole.mean, rel_tol=1e-9, abs_tol=1e-6)


def test_summary_row_round_trips_for_one_value_and_many() -> None:
    ts, values = _hour_of_samples(3)
    for s in summarise(ts, values, Tumbling(MINUTE_MS), max_gap_ms=2_000, quantiles=True)[:5] + summarise(
        [5], [2.5], Tumbling(MINUTE_MS), max_gap_ms=2_000, quantiles=True
    ):
        back = Summary.from_row(s.to_row(), s.start_ms, s.end_ms, 2_000, 0.01)
        _same(back, s)
