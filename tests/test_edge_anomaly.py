"""Anomaly detection at the edge: a detector bank for every (device, metric) of a gateway, its events and state."""

from __future__ import annotations

from collections.abc import Iterator

import cbor2
import numpy as np
import pytest

from pymonitor.actors.anomaly import AnomalyError
from pymonitor.actors.anomaly.detector import DetectorParams, StreamDetector
from pymonitor.actors.anomaly.fleet import DetectorBank
from pymonitor.messages import Event, ReadingBatch, decode_unpacked
from pymonitor.simulators.anomalies import AnomalyWatch
from pymonitor.simulators.models import METRICS, DeviceBank, SampleBlock
from pymonitor.simulators.sampler import OutFrame, SamplerSpec, SiteSampler

START_MS = 1_767_225_600_000
MIN_MS = 60_000
HOUR_MS = 3_600_000
SPEC = SamplerSpec("f", "gw-1", [f"d{i}" for i in range(20)], 3, 0, 60.0, START_MS)
LEARN_MIN = DetectorParams().learning_points  # one sample a minute: learning ends after this many minutes
TEMP = METRICS.index("temperature_c")


def block_of(device: list[int], ts: list[int], values: np.ndarray) -> SampleBlock:
    n = len(device)
    return SampleBlock(
        device_index=np.asarray(device, dtype=np.uint32),
        device_seq=np.arange(1, n + 1, dtype=np.int64),
        ts_ms=np.asarray(ts, dtype=np.int64),
        values=np.asarray(values, dtype=np.float64).reshape(len(METRICS), n),
    )


def one_series(values: list[float], t0_ms: int = START_MS, metric: int = TEMP) -> Iterator[SampleBlock]:
    """Device 0, one metric, one row per block, a minute apart; the other metrics unmeasured."""
    for i, v in enumerate(values):
        cells = np.full((len(METRICS), 1), np.nan)
        cells[metric, 0] = v
        yield block_of([0], [t0_ms + i * MIN_MS], cells)


def test_bank_scores_equal_one_stream_detector_per_series_bit_for_bit() -> None:
    rng = np.random.default_rng(7)
    params = DetectorParams(learning_points=40)
    devices, rows = 5, 2000
    dev = rng.integers(0, devices, rows)
    values = np.round(rng.normal(size=(len(METRICS), rows)).cumsum(axis=1) * 0.1, 2)
    values[:, 1200] += 40.0
    values[rng.random(values.shape) < 0.05] = np.nan
    bank = DetectorBank(devices, len(METRICS), params)
    cuts = [0, 1, 300, 301, 1500, rows]  # blocks with one row, and with many rows per device
    got = np.concatenate([bank.score(dev[a:b], values[:, a:b]).scores for a, b in zip(cuts, cuts[1:])], axis=1)
    detectors = {(d, m): StreamDetector(params) for d in range(devices) for m in range(len(METRICS))}
    want = np.full(values.shape, np.nan)
    for r in range(rows):
        for m in range(len(METRICS)):
            if not np.isnan(values[m, r]):
                want[m, r] = detectors[(int(dev[r]), m)].update(float(values[m, r]))
    assert np.array_equal(got, want, equal_nan=True)


def test_unmeasured_values_are_skipped_not_scored_and_not_learned() -> None:
    rng = np.random.default_rng(3)
    series = rng.normal(20.0, 0.5, 900)
    series[850] += 10.0
    gappy = np.insert(series, np.arange(0, 900, 7), np.nan)  # a NaN before every 7th value
    plain = DetectorBank(1, len(METRICS))
    with_gaps = DetectorBank(1, len(METRICS))

    def scores(bank: DetectorBank, values: np.ndarray) -> np.ndarray:
        cells = np.full((len(METRICS), values.size), np.nan)
        cells[TEMP] = values
        return bank.score(np.zeros(values.size, dtype=np.uint32), cells).scores

    a = scores(plain, series)
    b = scores(with_gaps, gappy)
    assert np.isnan(b[TEMP][np.isnan(gappy)]).all()
    assert np.array_equal(b[TEMP][~np.isnan(gappy)], a[TEMP])
    assert np.isnan(a[[m for m in range(len(METRICS)) if m != TEMP]]).all()


def test_level_shift_after_learning_raises_one_anomaly_at_the_shift() -> None:
    rng = np.random.default_rng(1)
    values = list(20.0 + rng.normal(0.0, 0.2, 1200))
    for i in range(1000, 1200):
        values[i] += 5.0  # a level shift of 25 standard deviations at minute 1000
    watch = AnomalyWatch(1)
    raised = [a for block in one_series(values) for a in watch.scan(block)[0]]
    assert raised, "the shift was not detected"
    first = raised[0]
    assert (first.ts_ms - START_MS) // MIN_MS in range(1000, 1005)
    assert first.metric == "temperature_c" and first.device == 0 and first.score >= 0.85
    assert len(raised) == 1  # the rest of the shift lies within the quiet hour or is damped


def test_nothing_is_raised_during_the_learning_period() -> None:
    rng = np.random.default_rng(2)
    values = list(20.0 + rng.normal(0.0, 0.2, LEARN_MIN))
    for i in (100, 400, LEARN_MIN - 1):
        values[i] += 50.0  # spikes that would be anomalies once learned
    watch = AnomalyWatch(1)
    flags = [watch.scan(block) for block in one_series(values)]
    assert all(not raised and not urgent for raised, urgent in flags)


def test_a_series_raises_at_most_one_event_per_quiet_period() -> None:
    params = DetectorParams(learning_points=100, echo_damp=1.0)
    rng = np.random.default_rng(4)
    values = list(rng.normal(0.0, 1.0, 400))
    spikes = range(120, 400, 10)
    for k, i in enumerate(spikes):
        values[i] = 10.0 * 4.0**k  # ever larger: each one is an anomaly on its own
    watch = AnomalyWatch(1, quiet_ms=HOUR_MS, params=params)  # no echo damping: every spike is an anomaly
    raised, anomalous = [], 0
    for block in one_series(values):
        events, urgent = watch.scan(block)
        raised += events
        anomalous += urgent
    assert anomalous >= len(spikes) - 2
    times = [a.ts_ms for a in raised]
    assert len(times) == 5  # 280 minutes of spikes: minutes 120, 180, 240, 300, 360
    assert all(b - a >= HOUR_MS for a, b in zip(times, times[1:]))
    assert watch.suppressed == anomalous - len(raised)


def test_a_restored_bank_continues_the_scores_of_an_uninterrupted_one() -> None:
    rng = np.random.default_rng(5)
    devices, rows = 10, 6000
    dev = np.tile(np.arange(devices, dtype=np.uint32), rows // devices)
    values = rng.normal(size=(len(METRICS), rows)).cumsum(axis=1)
    values[rng.random(values.shape) < 0.01] = np.nan
    whole = DetectorBank(devices, len(METRICS))
    want = whole.score(dev, values).scores
    first = DetectorBank(devices, len(METRICS))
    first.score(dev[:3333], values[:, :3333])
    resumed = DetectorBank(devices, len(METRICS))
    resumed.restore(first.snapshot())
    got = resumed.score(dev[3333:], values[:, 3333:]).scores
    assert np.array_equal(got, want[:, 3333:], equal_nan=True)
    assert resumed.snapshot() == whole.snapshot()


def test_a_bank_refuses_a_snapshot_of_another_size() -> None:
    with pytest.raises(AnomalyError, match="3 x 4"):
        DetectorBank(5, 4).restore(DetectorBank(3, 4).snapshot())


class ShiftedBank:
    """A device bank whose device ``device`` reads ``by`` degrees warmer from ``from_ms`` on (a failing sensor)."""

    def __init__(self, bank: DeviceBank, device: int, from_ms: int, by: float) -> None:
        self.bank, self.device, self.from_ms, self.by = bank, device, from_ms, by

    def __getattr__(self, name: str) -> object:
        return getattr(self.bank, name)

    def sample_until(self, now_ms: int, max_rows: int | None = None) -> SampleBlock:
        block = self.bank.sample_until(now_ms, max_rows)
        rows = (block.device_index == self.device) & (block.ts_ms >= self.from_ms)
        block.values[TEMP, rows] += self.by
        return block


def shifted(sampler: SiteSampler, device: int, from_ms: int, by: float) -> SiteSampler:
    sampler.bank = ShiftedBank(sampler.bank, device, from_ms, by)  # type: ignore[assignment]
    return sampler


def anomaly_events(frames: list[OutFrame]) -> list[Event]:
    events = [decode_unpacked(f.payload) for f in frames if f.readings == 0]
    return [e for e in events if isinstance(e, Event) and e.kind == "anomaly.detected"]


def test_a_gateway_turns_an_anomaly_into_an_event_first_and_an_urgent_batch() -> None:
    shift_ms = START_MS + 20 * HOUR_MS
    sampler = shifted(SiteSampler(SPEC, session=1, anomalies=True), 4, shift_ms, 60.0)
    groups: list[list[OutFrame]] = []
    for minute in range(1, 22 * 60 + 1):  # one block a minute, as a gateway samples
        groups.extend(g for g, _ in sampler.frames_until(START_MS + minute * MIN_MS))
    frames = [f for g in groups for f in g]
    events = anomaly_events(frames)
    assert all(e.ts_ms > START_MS + LEARN_MIN * MIN_MS for e in events)
    ours = [e for e in events if e.source == "d4" and e.labels == {"metric": "temperature_c"}]
    assert len(ours) == 1
    event = ours[0]
    assert shift_ms <= event.ts_ms < shift_ms + 5 * MIN_MS
    assert event.severity == "warning" and event.value is not None and event.value > 60.0
    assert event.details["score"] >= 0.85 and event.session == 1
    group = next(g for g in groups if any(f.readings == 0 and decode_unpacked(f.payload) == event for f in g))
    assert group[-1].readings > 0 and group[-1].urgent  # the block's batch comes last, flagged
    assert isinstance(decode_unpacked(group[-1].payload), ReadingBatch)
    assert all(f.priority == 0 for f in group[:-1])  # events: Priority.EVENT
    quiet = [g[-1] for g in groups if not any(f.readings == 0 for f in g)]
    assert quiet and sum(f.urgent for f in quiet) < len(quiet) // 10  # normal blocks are not urgent


def test_a_restored_gateway_raises_the_anomalies_an_uninterrupted_one_does() -> None:
    shift_ms = START_MS + 16 * HOUR_MS
    end_ms = START_MS + 20 * HOUR_MS

    def run(sampler: SiteSampler, until_ms: int) -> list[tuple[list[OutFrame], bytes]]:
        return list(shifted(sampler, 2, shift_ms, 60.0).frames_until(until_ms))

    whole = run(SiteSampler(SPEC, session=1, anomalies=True, max_rows_per_frame=600), end_ms)
    cut = 20  # 30 minutes a group: the cut lies before the shift
    resumed = SiteSampler(SPEC, session=2, anomalies=True, max_rows_per_frame=600)
    resumed.restore(whole[cut][1])
    after = run(resumed, end_ms)

    def key(groups: list[tuple[list[OutFrame], bytes]]) -> list[tuple[int, str, str, float]]:
        events = anomaly_events([f for g, _ in groups for f in g])
        return [(e.ts_ms, e.source, e.labels["metric"], float(e.details["score"])) for e in events]  # type: ignore[arg-type]

    want = key(whole[cut + 1 :])
    assert any(source == "d2" for _, source, _, _ in want)
    assert key(after) == want
    assert [f.urgent for g, _ in after for f in g] == [f.urgent for g, _ in whole[cut + 1 :] for f in g]


def test_an_old_snapshot_without_anomaly_state_restores_and_starts_learning() -> None:
    old = SiteSampler(SPEC, session=1)
    groups = list(old.frames_until(START_MS + 2 * HOUR_MS))
    state = cbor2.loads(groups[-1][1])
    del state["anomalies"]  # a snapshot from before anomaly detection existed
    resumed = SiteSampler(SPEC, session=2, anomalies=True)
    resumed.restore(cbor2.dumps(state))
    assert resumed.bank.total_samples() == old.bank.total_samples()
    assert list(resumed.frames_until(START_MS + 3 * HOUR_MS))
    assert resumed.anomalies is not None and int(resumed.anomalies.bank._seen.max()) == 60
    plain = SiteSampler(SPEC, session=3, anomalies=True)
    plain.restore(groups[-1][1])  # saved with anomalies off: an empty entry, same outcome
    assert plain.anomalies is not None and int(plain.anomalies.bank._seen.max()) == 0
