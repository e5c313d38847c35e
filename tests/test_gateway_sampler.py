"""A gateway's sampler and alerts: resuming from saved state samples nothing twice and skips nothing."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from pymonitor.messages import Event, ReadingBatch, decode_unpacked
from pymonitor.simulators.alerts import AlertDetector, Threshold
from pymonitor.simulators.models import METRICS, DeviceBank, SampleBlock
from pymonitor.simulators.sampler import SamplerSpec, SiteSampler, saved_spec_fields
from pymonitor.store.outbox import Priority

START_MS = 1_767_225_600_000
HOUR_MS = 3_600_000
SPEC = SamplerSpec("f", "gw-1", [f"d{i}" for i in range(20)], 3, 0, 60.0, START_MS)


def rows_of(payloads: list[bytes]) -> list[tuple[int, int, int]]:
    """(device index, device seq, ts) of every row in the reading batches among ``payloads``."""
    out = []
    for payload in payloads:
        msg = decode_unpacked(payload)
        if isinstance(msg, ReadingBatch):
            c = msg.columns()
            out.extend(zip(c.device_index, c.device_seq, c.ts_ms, strict=True))
    return out


def test_a_restored_sampler_carries_on_where_the_saved_group_ended() -> None:
    whole = SiteSampler(SPEC, session=1, max_rows_per_frame=50, compression="zstd")
    groups = list(whole.frames_until(START_MS + 3 * HOUR_MS))
    assert len(groups) > 5
    cut = 3  # the process died right after committing group 3 with its state
    resumed = SiteSampler(SPEC, session=2, max_rows_per_frame=50, compression="zstd")
    resumed.restore(groups[cut][1])
    after = [f.payload for g, _ in resumed.frames_until(START_MS + 3 * HOUR_MS) for f in g]
    before = [f.payload for g, _ in groups[: cut + 1] for f in g]
    expected = [f.payload for g, _ in groups for f in g]
    assert sorted(rows_of(before) + rows_of(after)) == sorted(rows_of(expected))
    assert len(set(rows_of(before)) & set(rows_of(after))) == 0


def test_saved_state_names_its_start_and_session_and_refuses_another_start() -> None:
    sampler = SiteSampler(SPEC, session=77)
    state = sampler.snapshot()
    assert saved_spec_fields(state) == (START_MS, 77)
    other = SiteSampler(dataclasses.replace(SPEC, start_ms=START_MS + 1), session=78)
    with pytest.raises(ValueError, match="start_ms"):
        other.restore(state)


def test_frames_are_numbered_in_one_sequence_with_events_first_in_their_group() -> None:
    sampler = SiteSampler(SPEC, session=5, max_rows_per_frame=4096)
    always = Threshold("t.high", "temperature_c", above=True, limit=-100.0, severity="info")
    sampler.alerts = AlertDetector(len(SPEC.devices), thresholds=(always,))
    (group, _), *_ = list(sampler.frames_until(START_MS + HOUR_MS))
    assert [f.seq for f in group] == list(range(1, len(group) + 1))
    assert [f.priority for f in group[:-1]] == [Priority.EVENT] * (len(group) - 1)
    assert group[-1].priority is Priority.LIVE
    events = [decode_unpacked(f.payload) for f in group[:-1]]
    assert len(events) == len(SPEC.devices)  # every device enters the (always true) alarm once
    assert all(isinstance(e, Event) and e.session == 5 and e.seq > 0 and e.kind == "t.high" for e in events)


def test_a_stride_keeps_every_nth_sample_of_each_device_and_counts_the_rest() -> None:
    sampler = SiteSampler(SPEC, session=1)
    sampler.stride = 3
    payloads = [f.payload for g, _ in sampler.frames_until(START_MS + HOUR_MS) for f in g]
    rows = rows_of(payloads)
    assert rows and all(seq % 3 == 0 for _, seq, _ in rows)
    assert sampler.skipped == 60 * len(SPEC.devices) - len(rows)


def block(device: list[int], values: list[float], metric: str = "battery_v") -> SampleBlock:
    n = len(device)
    grid = np.full((len(METRICS), n), 3.3)
    grid[METRICS.index("vibration_g")] = 0.1
    grid[METRICS.index(metric)] = values
    return SampleBlock(
        device_index=np.array(device, dtype=np.uint32),
        device_seq=np.arange(1, n + 1, dtype=np.int64),
        ts_ms=np.arange(n, dtype=np.int64) * 1000,
        values=grid,
    )


def test_an_alert_fires_once_on_entering_the_alarm_and_again_only_after_leaving_it() -> None:
    detector = AlertDetector(2)
    alerts = detector.scan(block([0, 0, 0, 0, 0, 1], [3.0, 2.7, 2.6, 2.9, 2.7, 2.5]))
    low = [(a.device, a.ts_ms) for a in alerts if a.threshold.kind == "battery.low"]
    assert low == [(0, 1000), (0, 4000), (1, 5000)]
    # The state carries over to the next block, and a missing value does not end an alarm.
    assert detector.scan(block([0, 0, 1], [2.6, math.nan, 2.4])) == []


def test_alarm_state_survives_a_snapshot() -> None:
    detector = AlertDetector(3)
    detector.scan(block([0, 2], [2.5, 2.5]))
    restored = AlertDetector(3)
    restored.restore(detector.snapshot())
    assert restored.scan(block([0, 1, 2], [2.5, 2.5, 2.5]))[0].device == 1
    assert len(restored.scan(block([1], [2.5]))) == 0


def test_a_simulated_fortnight_raises_some_alerts_but_not_one_per_sample() -> None:
    bank = DeviceBank([f"d{i}" for i in range(100)], seed=1, start_ms=START_MS, interval_s=60)
    detector = AlertDetector(100)
    count = sum(len(detector.scan(bank.sample_until(START_MS + (day + 1) * 24 * HOUR_MS))) for day in range(14))
    assert 14 <= count <= 100 * 14  # rare enough to drain first over 2G after a fortnight offline


def test_the_sampler_learns_its_bytes_per_row_from_the_frames_it_makes() -> None:
    sampler = SiteSampler(SPEC, session=1, max_rows_per_frame=256, compression="zstd")
    assert sampler.bytes_per_row is None
    frames = [f for g, _ in sampler.frames_until(START_MS + 24 * HOUR_MS) for f in g if f.priority is Priority.LIVE]
    rows = sum(len(rows_of([f.payload])) for f in frames)
    actual = sum(len(f.payload) for f in frames) / rows
    assert sampler.bytes_per_row is not None
    assert 0.5 * actual <= sampler.bytes_per_row <= 2 * actual


def test_anomaly_detection_is_off_by_default_and_batches_are_not_urgent() -> None:
    sampler = SiteSampler(SPEC, session=1)
    frames = [f for g, _ in sampler.frames_until(START_MS + 2 * HOUR_MS) for f in g]
    assert sampler.anomalies is None
    assert not any(f.urgent for f in frames)
    kinds = {decode_unpacked(f.payload).kind for f in frames if f.readings == 0}
    assert "anomaly.detected" not in kinds


def test_anomaly_state_rides_in_the_sampler_snapshot_and_comes_back() -> None:
    sampler = SiteSampler(SPEC, session=1, anomalies=True, anomaly_quiet_s=600)
    groups = list(sampler.frames_until(START_MS + 2 * HOUR_MS))
    resumed = SiteSampler(SPEC, session=2, anomalies=True, anomaly_quiet_s=600)
    resumed.restore(groups[-1][1])
    assert resumed.anomalies is not None and sampler.anomalies is not None
    assert resumed.anomalies.snapshot() == sampler.anomalies.snapshot()
    assert resumed.anomalies.quiet_ms == 600_000


def test_in_summaries_mode_batches_stay_local_and_closed_windows_go_as_summaries() -> None:
    from pymonitor.messages.summaries import SummaryBatch

    sampler = SiteSampler(SPEC, session=9, summary_window_s=3600)
    frames = [f for g, _ in sampler.frames_until(START_MS + 3 * HOUR_MS + 10 * 60_000) for f in g]
    batches = [f for f in frames if f.priority is Priority.LIVE and f.stream is None]
    summaries = [f for f in frames if f.stream == "summaries"]
    assert batches and all(f.local and f.span is not None for f in batches)
    assert [f.seq for f in frames] == list(range(1, len(frames) + 1))  # one sequence space
    decoded = [decode_unpacked(f.payload) for f in summaries]
    assert all(isinstance(s, SummaryBatch) and s.session == 9 for s in decoded)
    # Windows of the first 3 hours are closed: one row per device, metric and window.
    assert sum(s.rows for s in decoded) == 3 * len(SPEC.devices) * len(METRICS)
    replayed = sampler.replay(batches[0].payload)
    again = decode_unpacked(replayed.payload)
    assert isinstance(again, ReadingBatch) and again.backfill and again.seq == replayed.seq == sampler.seq
    assert rows_of([replayed.payload]) == rows_of([batches[0].payload])
