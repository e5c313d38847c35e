"""Fleet layout and device signal models: shape, timing, determinism and physical plausibility."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.typing import NDArray

from pymonitor.messages import ReadingBatch, decode_as, encode
from pymonitor.messages.columns import NOT_MEASURED, dequantize, quantize
from pymonitor.simulators.frames import block_to_batch
from pymonitor.simulators.layout import plan_fleet
from pymonitor.simulators.models import METRICS, RESOLUTION, VALUE_SCALE, DeviceBank, SampleBlock, _ar1

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a midnight so hours of day are easy to read
DAY_MS = 86_400_000
TEMP, HUMIDITY, VIBRATION, BATTERY = (METRICS.index(m) for m in ("temperature_c", "humidity_pct", "vibration_g",
                                                                  "battery_v"))  # fmt: skip


def _bank(n: int = 50, *, seed: int = 7, interval_s: float = 10.0, site_index: int = 0) -> DeviceBank:
    return DeviceBank([f"dev-{i:06d}" for i in range(n)], seed=seed, start_ms=START_MS, interval_s=interval_s,
                      site_index=site_index)  # fmt: skip


def _concat(blocks: list[SampleBlock]) -> SampleBlock:
    return SampleBlock(
        device_index=np.concatenate([b.device_index for b in blocks]),
        device_seq=np.concatenate([b.device_seq for b in blocks]),
        ts_ms=np.concatenate([b.ts_ms for b in blocks]),
        values=np.concatenate([b.values for b in blocks], axis=1),
    )


def _rows(block: SampleBlock) -> set[tuple[int, int, int]]:
    return set(zip(block.device_index.tolist(), block.device_seq.tolist(), block.ts_ms.tolist(), strict=True))


def _hour_mask(block: SampleBlock, hour: int) -> NDArray[np.bool_]:
    return np.asarray((block.ts_ms - START_MS) % DAY_MS // 3_600_000 == hour)


# --- plan_fleet ---------------------------------------------------------------------------------------------------


def test_plan_fleet_spreads_devices_evenly_with_unique_sorted_names() -> None:
    layout = plan_fleet(fleet="farm", devices=1003, gateways=10, seed=1)
    sizes = [len(d) for d in layout.devices_by_gateway]
    assert sum(sizes) == 1003 == layout.device_count
    assert max(sizes) - min(sizes) <= 1
    names = [name for devices in layout.devices_by_gateway for name in devices]
    assert len(set(names)) == len(names)
    assert names == sorted(names)
    assert layout.gateways == sorted(layout.gateways) and len(set(layout.gateways)) == 10
    assert len(layout.sites) == 10
    assert layout.fleet == "farm"


def test_plan_fleet_groups_several_gateways_per_site() -> None:
    layout = plan_fleet(fleet="farm", devices=1000, gateways=40, seed=3)
    per_site = {s: layout.sites.count(s) for s in set(layout.sites)}
    assert 1 < len(per_site) < 40
    assert all(count >= 1 for count in per_site.values())
    assert max(per_site.values()) > 1


def test_plan_fleet_is_deterministic_for_a_seed() -> None:
    a = plan_fleet(fleet="f", devices=1003, gateways=40, seed=5)
    assert a == plan_fleet(fleet="f", devices=1003, gateways=40, seed=5)
    assert a != plan_fleet(fleet="f", devices=1003, gateways=40, seed=6)


def test_plan_fleet_handles_a_large_fleet_with_padded_names() -> None:
    layout = plan_fleet(fleet="big", devices=100_000, gateways=500, seed=0)
    assert {len(d) for d in layout.devices_by_gateway} == {200}
    assert layout.devices_by_gateway[0][0] == "dev-000000"
    assert layout.devices_by_gateway[-1][-1] == "dev-099999"
    assert layout.gateways[-1] == "gw-0499"


def test_plan_fleet_allows_one_device_per_gateway() -> None:
    layout = plan_fleet(fleet="f", devices=3, gateways=3, seed=0)
    assert [len(d) for d in layout.devices_by_gateway] == [1, 1, 1]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"devices": 0, "gateways": 1}, "devices must be >= 1"),
        ({"devices": 5, "gateways": 0}, "gateways must be >= 1"),
        ({"devices": 5, "gateways": 6}, "gateways must be <= devices"),
        ({"devices": 5, "gateways": 1, "seed": -1}, "seed must be >= 0"),
        ({"devices": 5, "gateways": 1, "fleet": ""}, "fleet must be"),
    ],
)
def test_plan_fleet_rejects_bad_arguments_naming_them(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"fleet": "f", "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        plan_fleet(**args)  # type: ignore[arg-type]


def test_plan_fleet_rejects_non_int_counts() -> None:
    with pytest.raises(TypeError, match="devices must be an int"):
        plan_fleet(fleet="f", devices=2.5, gateways=1, seed=0)  # type: ignore[arg-type]


# --- DeviceBank: timing and counts --------------------------------------------------------------------------------


def test_each_device_has_exactly_k_samples_after_k_intervals() -> None:
    bank = _bank(200)
    prev = START_MS
    seen: list[SampleBlock] = []
    for k in (1, 2, 3, 7, 20):  # steps of one interval and jumps of several
        now = START_MS + k * bank.interval_ms
        block = bank.sample_until(now)
        assert np.all((block.ts_ms > prev) & (block.ts_ms <= now))
        seen.append(block)
        counts = np.bincount(_concat(seen).device_index, minlength=200)
        assert np.all(counts == k)
        assert bank.total_samples() == 200 * k
        prev = now


def test_device_seq_is_contiguous_and_ts_strictly_increasing_per_device() -> None:
    bank = _bank(30)
    blocks = [bank.sample_until(START_MS + t * 1000) for t in (5, 10, 95, 96, 400)]
    allrows = _concat(blocks)
    for d in range(30):
        mine = allrows.device_index == d
        seq, ts = allrows.device_seq[mine], allrows.ts_ms[mine]
        assert seq.tolist() == list(range(1, 41))
        assert np.all(np.diff(ts) == bank.interval_ms)
        assert START_MS < ts[0] <= START_MS + bank.interval_ms


def test_block_rows_are_ordered_by_time_then_device_and_typed() -> None:
    block = _bank(100).sample_until(START_MS + 3_600_000)
    assert block.device_index.dtype == np.uint32
    assert block.device_seq.dtype == np.int64 and block.ts_ms.dtype == np.int64
    assert block.values.dtype == np.float64 and block.values.shape == (len(METRICS), block.rows)
    order = np.lexsort((block.device_index, block.ts_ms))
    assert np.array_equal(order, np.arange(block.rows))


def test_devices_sample_at_different_milliseconds() -> None:
    block = _bank(100, interval_s=60).sample_until(START_MS + 60_000)
    assert len(np.unique(block.ts_ms)) > 50


def test_no_new_samples_when_time_stands_still_or_goes_back() -> None:
    bank = _bank(20)
    bank.sample_until(START_MS + 60_000)
    assert bank.sample_until(START_MS + 60_000).rows == 0
    assert bank.sample_until(START_MS + 30_000).rows == 0
    assert bank.sample_until(START_MS).rows == 0
    assert bank.total_samples() == 20 * 6


def test_next_due_is_the_earliest_sample_not_yet_returned() -> None:
    bank = _bank(20)
    due = bank.next_due_ms()
    assert bank.sample_until(due - 1).rows == 0
    block = bank.sample_until(due)
    assert block.rows >= 1 and int(block.ts_ms.max()) == due


# --- DeviceBank: max_rows -----------------------------------------------------------------------------------------


def test_max_rows_caps_blocks_and_loses_nothing() -> None:
    now = START_MS + 3_600_000
    capped, whole = _bank(64), _bank(64)
    blocks = []
    while (block := capped.sample_until(now, max_rows=37)).rows:
        assert block.rows <= 37
        blocks.append(block)
    assert all(b.rows == 37 for b in blocks[:-1])
    joined = _concat(blocks)
    assert np.all(np.diff(joined.ts_ms) >= 0)  # capped blocks hand out the earliest rows first
    reference = whole.sample_until(now)
    assert joined.rows == reference.rows == 64 * 360
    assert _rows(joined) == _rows(reference)
    assert capped.total_samples() == whole.total_samples()


def test_max_rows_zero_returns_nothing_and_negative_is_rejected() -> None:
    bank = _bank(10)
    assert bank.sample_until(START_MS + 60_000, max_rows=0).rows == 0
    with pytest.raises(ValueError, match="max_rows must be >= 0"):
        bank.sample_until(START_MS + 60_000, max_rows=-1)
    assert bank.sample_until(START_MS + 60_000).rows == 60


# --- DeviceBank: determinism --------------------------------------------------------------------------------------


def _run(bank: DeviceBank) -> list[SampleBlock]:
    return [bank.sample_until(START_MS + 10_000), bank.sample_until(START_MS + 7_200_000, max_rows=500),
            bank.sample_until(START_MS + DAY_MS)]  # fmt: skip


def test_same_seed_and_calls_give_identical_blocks() -> None:
    for a, b in zip(_run(_bank(40, seed=11)), _run(_bank(40, seed=11)), strict=True):
        assert np.array_equal(a.device_index, b.device_index)
        assert np.array_equal(a.device_seq, b.device_seq)
        assert np.array_equal(a.ts_ms, b.ts_ms)
        assert np.array_equal(a.values, b.values, equal_nan=True)


def test_different_seed_gives_different_values() -> None:
    a, b = _run(_bank(40, seed=11))[-1], _run(_bank(40, seed=12))[-1]
    assert not np.allclose(np.nanmean(a.values, axis=1), np.nanmean(b.values, axis=1))


# --- DeviceBank: signals ------------------------------------------------------------------------------------------


def test_temperature_peaks_in_the_afternoon_and_humidity_follows_inversely() -> None:
    block = _bank(40, interval_s=600).sample_until(START_MS + 7 * DAY_MS)
    afternoon, night = _hour_mask(block, 15), _hour_mask(block, 3)
    temp, rh = block.values[TEMP], block.values[HUMIDITY]
    assert temp[afternoon].mean() > temp[night].mean() + 2.0
    assert np.nanmean(rh[afternoon]) < np.nanmean(rh[night])
    measured = rh[~np.isnan(rh)]
    assert measured.min() >= 0.0 and measured.max() <= 100.0


def test_some_humidity_and_vibration_cells_are_not_measured() -> None:
    values = _bank(50, interval_s=60).sample_until(START_MS + DAY_MS).values
    missing = np.isnan(values).mean(axis=1)
    assert missing[TEMP] == 0.0 and missing[BATTERY] == 0.0
    assert 0.001 < missing[HUMIDITY] < 0.02
    assert 0.001 < missing[VIBRATION] < 0.02


def test_vibration_is_mostly_low_with_occasional_bursts() -> None:
    vib = _bank(50, interval_s=60).sample_until(START_MS + 7 * DAY_MS).values[VIBRATION]
    vib = vib[~np.isnan(vib)]
    assert vib.min() >= 0.0
    assert np.median(vib) < 0.05
    assert np.mean(vib > 0.2) < 0.05
    assert vib.max() > 0.3


def _battery_drop(bank: DeviceBank) -> tuple[float, float]:
    block = bank.sample_until(START_MS + 30 * DAY_MS)
    volts = block.values[BATTERY]
    first, last = block.ts_ms < START_MS + DAY_MS, block.ts_ms > START_MS + 29 * DAY_MS
    assert volts.min() >= 2.0 and volts.max() <= 3.7
    return float(volts[first].mean() - volts[last].mean()), float(volts.min())


def test_battery_discharges_over_a_month_faster_at_a_hot_site() -> None:
    by_base = sorted(range(30), key=lambda s: _bank(1, site_index=s).site_base_c)
    cold, hot = by_base[0], by_base[-1]
    assert _bank(1, site_index=hot).site_base_c - _bank(1, site_index=cold).site_base_c > 20.0
    cold_drop, _ = _battery_drop(_bank(40, interval_s=900, site_index=cold))
    hot_drop, _ = _battery_drop(_bank(40, interval_s=900, site_index=hot))
    assert cold_drop > 0.0
    assert hot_drop > 2 * cold_drop


def test_battery_starts_between_3_0_and_3_6_volts() -> None:
    volts = _bank(200).sample_until(START_MS + 10_000).values[BATTERY]
    assert volts.min() > 2.95 and volts.max() < 3.65


def test_weather_recurrence_matches_a_plain_loop_across_chunks() -> None:
    a = math.exp(-600 / 10_800)
    rng = np.random.default_rng(0)
    x0, z = rng.normal(size=3), rng.standard_normal((2000, 3))
    expected = np.empty_like(z)
    x = x0
    for j in range(z.shape[0]):
        x = a * x + 0.3 * z[j]
        expected[j] = x
    assert np.allclose(_ar1(x0, z, a, 0.3), expected, rtol=1e-9, atol=1e-9)
    assert np.allclose(_ar1(x0, z[:1], a, 0.3), expected[:1])


# --- DeviceBank: validation and size ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("devices", "kwargs", "match"),
    [
        ([], {}, "devices must not be empty"),
        (["a", "a"], {}, "devices must be unique"),
        (["a"], {"interval_s": 0.0}, "interval_s must be"),
        (["a"], {"interval_s": math.nan}, "interval_s must be"),
        (["a"], {"seed": -1}, "seed and site_index must be >= 0"),
    ],
)
def test_device_bank_rejects_bad_arguments(devices: list[str], kwargs: dict[str, float], match: str) -> None:
    args: dict[str, float] = {"seed": 0, "interval_s": 10.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        DeviceBank(devices, start_ms=START_MS, **args)  # type: ignore[arg-type]


def test_hundred_thousand_devices_fit_in_compact_state() -> None:
    layout = plan_fleet(fleet="big", devices=100_000, gateways=500, seed=0)
    banks = [
        DeviceBank(devices, seed=0, start_ms=START_MS, interval_s=60, site_index=int(site.removeprefix("site-")))
        for devices, site in zip(layout.devices_by_gateway, layout.sites, strict=True)
    ]
    rows = sum(bank.sample_until(START_MS + 60_000).rows for bank in banks)
    assert rows == 100_000
    assert sum(bank.state_nbytes() for bank in banks) < 200 * 1024 * 1024


# --- DeviceBank: clock errors (opt-in) ----------------------------------------------------------------------------


def _clock_bank(n: int = 50, *, seed: int = 7) -> DeviceBank:
    return DeviceBank([f"dev-{i:06d}" for i in range(n)], seed=seed, start_ms=START_MS, interval_s=60,
                      clock_error=True)  # fmt: skip


def test_clocks_are_true_unless_clock_errors_are_asked_for() -> None:
    plain = _bank(20, interval_s=60).sample_until(START_MS + DAY_MS)
    assert plain.true_ts_ms is None and plain.received_ms is None
    clocked = _clock_bank(20).sample_until(START_MS + DAY_MS)
    assert clocked.true_ts_ms is not None
    assert np.array_equal(clocked.true_ts_ms, plain.ts_ms)  # same sampling times and rows...
    assert np.array_equal(clocked.values, plain.values, equal_nan=True)  # ...and the same signals
    assert not np.array_equal(clocked.ts_ms, plain.ts_ms)


def test_device_clocks_are_offset_drift_and_step_at_rare_reboots() -> None:
    block = _clock_bank(50).sample_until(START_MS + 20 * DAY_MS)
    assert block.true_ts_ms is not None
    skew = (block.ts_ms - block.true_ts_ms).astype(np.float64)
    steps = drifts = 0
    for d in range(50):
        mine = skew[block.device_index == d]
        assert abs(mine[0]) <= 120_000 + 10
        jumps = np.diff(mine)
        step = np.abs(jumps) > 1_000  # drift moves a clock by at most 6 ms a minute
        steps += int(step.sum())
        assert np.abs(jumps[step]).max(initial=0) <= 600_000
        calm = jumps[~step]
        ppm = calm.mean() / 60_000 * 1e6
        assert abs(ppm) <= 100.5
        drifts += abs(ppm) > 10
    assert 0 < steps < 50 * 20  # about one reboot per device in four days
    assert drifts > 30


def test_samples_reach_the_gateway_after_a_radio_delay_and_some_after_minutes_in_a_buffer() -> None:
    block = _clock_bank(50).sample_until(START_MS + 2 * DAY_MS)
    assert block.true_ts_ms is not None and block.received_ms is not None
    delay = block.received_ms - block.true_ts_ms
    assert delay.min() >= 0 and delay.max() <= 600_000 + 10_000
    assert 150 < np.median(delay) < 300  # exponential, mean 300 ms: median ~208 ms
    assert 0.04 < np.mean(delay > 5_000) < 0.06  # the buffered 5 %


def test_clock_errors_are_deterministic_for_a_seed() -> None:
    a, b, c = (_clock_bank(30, seed=s).sample_until(START_MS + DAY_MS) for s in (3, 3, 4))
    assert a.received_ms is not None and b.received_ms is not None
    assert np.array_equal(a.ts_ms, b.ts_ms) and np.array_equal(a.received_ms, b.received_ms)
    assert not np.array_equal(a.ts_ms, c.ts_ms)


def test_a_block_with_receipt_times_becomes_a_batch_that_carries_them() -> None:
    from pymonitor.simulators.frames import block_to_batch

    bank = _clock_bank(10)
    block = bank.sample_until(START_MS + 3_600_000)
    batch, readings = block_to_batch(block, node="gw-1", session=1, seq=1, devices=bank.devices)
    cols = batch.columns()
    assert block.received_ms is not None
    assert cols.received_ms == block.received_ms.tolist()
    assert cols.ts_ms == block.ts_ms.tolist()
    plain, _ = block_to_batch(_bank(10).sample_until(START_MS + 60_000), node="gw-1", session=1, seq=1,
                              devices=bank.devices)  # fmt: skip
    assert plain.received_ms == b"" and plain.columns().received_ms is None


# --- sensor resolution and frames -------------------------------------------------------------------------------


def test_values_are_whole_steps_of_each_sensors_resolution_and_no_coarser() -> None:
    assert VALUE_SCALE == (0.01, 0.1, 0.001, 0.001)
    assert RESOLUTION == dict(zip(METRICS, VALUE_SCALE, strict=True))
    values = _bank(50, interval_s=60).sample_until(START_MS + DAY_MS).values
    for row, scale in zip(values, VALUE_SCALE, strict=True):
        steps = quantize(row, scale)
        assert dequantize(steps, scale).tobytes() == row.tobytes()  # already on the grid: bit for bit
        measured = steps[steps != NOT_MEASURED]
        assert len(np.unique(measured % 10)) == 10  # every last digit occurs: the step is not 10x coarser


def test_a_block_becomes_a_batch_of_int64_steps_that_reads_back_as_the_blocks_floats() -> None:
    bank = _bank(30, interval_s=60)
    block = bank.sample_until(START_MS + 6 * 3_600_000)
    batch, readings = block_to_batch(block, node="gw-1", session=1, seq=1, devices=bank.devices)
    assert batch.value_scale == list(VALUE_SCALE)
    back = decode_as(encode(batch), ReadingBatch)
    for i, col in enumerate(back.columns().values):
        assert np.asarray(col).tobytes() == block.values[i].tobytes()  # NaN where not measured, too
        steps = np.frombuffer(batch.steps[i], dtype="<i8")
        assert np.array_equal(steps == NOT_MEASURED, np.isnan(block.values[i]))
    assert readings == back.reading_count() == int(np.count_nonzero(~np.isnan(block.values)))


def test_block_to_batch_rounds_values_finer_than_the_resolution() -> None:
    values = np.array([[21.514, 21.516], [55.34, np.nan], [0.0004, 0.0016], [3.3004, 3.2996]])
    block = SampleBlock(
        device_index=np.array([0, 1], dtype=np.uint32),
        device_seq=np.array([1, 1], dtype=np.int64),
        ts_ms=np.array([START_MS, START_MS + 5], dtype=np.int64),
        values=values,
    )
    batch, readings = block_to_batch(block, node="gw-1", session=1, seq=1, devices=["a", "b"])
    cols = [list(c) for c in batch.columns().values]
    assert cols[0] == [21.51, 21.52]
    assert cols[1][0] == 55.3 and math.isnan(cols[1][1])
    assert cols[2] == [0.0, 0.002]
    assert cols[3] == [3.3, 3.3]
    assert readings == 7
