"""The summarizer core: windows close on the watermark, late samples are counted, rollups equal direct."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pymonitor.actors.summary import DDSketch, Tumbling, rollup, summarise
from pymonitor.actors.summary.summarizer import Summarizer, to_summaries
from pymonitor.messages import ReadingBatch, SummaryBatch, decode, encode

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, an hour boundary
MIN_MS = 60_000
HOUR_MS = 3_600_000


def readings(
    ts_ms: list[int], values: list[float], device: str = "dev-1", scale: float | None = 0.01, seq: int = 1
) -> ReadingBatch:
    return ReadingBatch.build(
        node="gw-1", session=1, seq=seq, devices=[device], metrics=["temp_c"], device_index=[0] * len(ts_ms),
        device_seq=list(range(len(ts_ms))), ts_ms=ts_ms, values=[values],
        value_scale=None if scale is None else [scale],
    )  # fmt: skip


def test_a_window_closes_only_when_the_watermark_passes_its_end() -> None:
    core = Summarizer(node="gw-1", window_ms=HOUR_MS, lateness_ms=5 * MIN_MS)
    minutes = [T0_MS + i * MIN_MS for i in range(60)]
    assert core.add(readings(minutes, [20.0 + i / 100 for i in range(60)]), now_ms=T0_MS + HOUR_MS) is None
    # 12:04 is within the lateness: the 11:00-12:00 window stays open.
    assert core.add(readings([T0_MS + HOUR_MS + 4 * MIN_MS], [21.0], seq=2), now_ms=T0_MS + 2 * HOUR_MS) is None
    assert core.open_windows == 2
    out = core.add(readings([T0_MS + HOUR_MS + 5 * MIN_MS], [21.5], seq=3), now_ms=T0_MS + 2 * HOUR_MS)
    assert out is not None and out.rows == 1
    [(device, metric, hour)] = to_summaries(out)
    assert (device, metric, hour.start_ms, hour.count) == ("dev-1", "temp_c", T0_MS, 60)
    assert (hour.min, hour.max, hour.first, hour.last) == (20.0, 20.59, 20.0, 20.59)
    assert core.open_windows == 1


def test_a_future_timestamp_does_not_close_windows_before_now() -> None:
    core = Summarizer(node="gw-1", window_ms=HOUR_MS, lateness_ms=0)
    core.add(readings([T0_MS], [1.0]), now_ms=T0_MS + MIN_MS)
    assert core.add(readings([T0_MS + 100 * HOUR_MS], [2.0], seq=2), now_ms=T0_MS + 2 * MIN_MS) is None
    assert core.open_windows == 2


def test_late_samples_are_counted_and_reported_not_added() -> None:
    core = Summarizer(node="gw-1", window_ms=HOUR_MS, lateness_ms=0)
    core.add(readings([T0_MS, T0_MS + MIN_MS], [1.0, 2.0]), now_ms=T0_MS + 2 * HOUR_MS)
    closed = core.add(readings([T0_MS + HOUR_MS], [3.0], seq=2), now_ms=T0_MS + 2 * HOUR_MS)
    assert closed is not None and closed.rows == 1 and closed.late == 0
    out = core.add(
        readings([T0_MS + 2 * MIN_MS, T0_MS + 3 * MIN_MS], [9.0, math.nan], seq=3), now_ms=T0_MS + 2 * HOUR_MS
    )
    assert out is not None and out.rows == 0 and out.late == 1  # the NaN was never measured
    assert core.counters.late == 1 and core.counters.samples == 3
    assert to_summaries(closed)[0][2].max == 2.0


def test_interleaved_batches_merge_moments_and_keep_first_and_last_by_time() -> None:
    core = Summarizer(node="gw-1", window_ms=HOUR_MS, lateness_ms=0)
    core.add(readings([T0_MS, T0_MS + 20 * MIN_MS], [1.0, 3.0]), now_ms=T0_MS)
    core.add(readings([T0_MS + 10 * MIN_MS, T0_MS + 30 * MIN_MS], [2.0, 4.0], seq=2), now_ms=T0_MS)
    out = core.flush()
    assert out is not None
    [(_, _, s)] = to_summaries(out)
    assert (s.count, s.first, s.last, s.sum) == (4, 1.0, 4.0, 10.0)
    assert s.stddev == pytest.approx(np.std([1.0, 2.0, 3.0, 4.0]))
    assert core.counters.disordered == 1


def test_open_windows_are_bounded_by_closing_the_oldest_early() -> None:
    core = Summarizer(node="gw-1", window_ms=MIN_MS, lateness_ms=10 * HOUR_MS, max_open_windows=3)
    out = core.add(readings([T0_MS + i * MIN_MS for i in range(5)], [1.0] * 5), now_ms=T0_MS)
    assert core.open_windows == 3 and core.counters.forced == 2
    assert out is not None and [s.start_ms for _, _, s in to_summaries(out)] == [T0_MS, T0_MS + MIN_MS]


def series(n: int) -> tuple[list[int], list[float]]:
    rng = np.random.default_rng(3)
    ts = (T0_MS + np.arange(n) * 15_000).tolist()
    values = np.round(20.0 + rng.normal(0.0, 0.5, n).cumsum(), 2).tolist()
    return ts, values


@pytest.mark.parametrize("scale", [0.01, None])
def test_minutes_rolled_up_through_frames_equal_hours_summarised_directly(scale: float | None) -> None:
    ts, values = series(4 * 240)  # four hours every 15 s
    frames: dict[int, list[SummaryBatch]] = {MIN_MS: [], HOUR_MS: []}
    for window in frames:
        core = Summarizer(node="gw-1", window_ms=window, lateness_ms=0)
        for seq, start in enumerate(range(0, len(ts), 100), start=1):
            out = core.add(readings(ts[start : start + 100], values[start : start + 100], scale=scale, seq=seq), 2**62)
            frames[window] += [out] if out is not None else []
        frames[window].append(core.flush())  # type: ignore[arg-type]
    decoded = {w: [s for f in fs for _, _, s in to_summaries(decode(encode(f)))] for w, fs in frames.items()}
    hours = rollup(decoded[MIN_MS], Tumbling(HOUR_MS))
    direct = summarise(ts, values, Tumbling(HOUR_MS), quantiles=True)
    assert len(hours) == len(decoded[HOUR_MS]) == len(direct) == 4
    for rolled, hour, exact in zip(hours, decoded[HOUR_MS], direct, strict=True):
        for s in (rolled, hour):
            assert (s.start_ms, s.count, s.min, s.max, s.first, s.last) == (
                exact.start_ms, exact.count, exact.min, exact.max, exact.first, exact.last,
            )  # fmt: skip
            assert s.sum == pytest.approx(exact.sum, rel=1e-12)
            assert s.stddev == pytest.approx(exact.stddev, rel=1e-9)
            assert s.sketch is not None and exact.sketch is not None
            assert s.sketch.buckets() == exact.sketch.buckets()


def test_quantiles_from_a_frame_are_within_alpha_of_the_exact_ones() -> None:
    ts, values = series(240)
    core = Summarizer(node="gw-1", window_ms=HOUR_MS, lateness_ms=0)
    core.add(readings(ts, values), 2**62)
    [(_, _, hour)] = to_summaries(decode(encode(core.flush())))  # type: ignore[arg-type]
    exact = np.sort(values)
    assert isinstance(hour.sketch, DDSketch)
    for q in (0.5, 0.9, 0.99):
        truth = exact[math.floor(q * (len(exact) - 1))]
        assert abs(hour.sketch.quantile(q) - truth) <= 0.01 * abs(truth) + 1e-12


def test_a_window_whose_squared_steps_overflow_falls_back_to_float64_columns() -> None:
    core = Summarizer(node="gw-1", window_ms=HOUR_MS, lateness_ms=0)
    core.add(readings([T0_MS, T0_MS + MIN_MS], [-4e13, 4e13]), 2**62)
    out = core.flush()
    assert out is not None and out.value_scale == []
    [(_, _, s)] = to_summaries(decode(encode(out)))
    assert s.stddev == 4e13 and (s.min, s.max) == (-4e13, 4e13)
