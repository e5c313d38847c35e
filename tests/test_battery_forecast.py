"""The battery forecast core: rates, depletion dates, bands, and what it refuses to forecast."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymonitor.actors.battery import (
    BatteryError,
    FleetHistory,
    ForecastConfig,
    ForecastStatus,
    chemistry,
    forecast,
    forecast_fleet,
)

DAY_MS = 86_400_000
NOW = 1_800_000_000_000
LISOCL2 = chemistry("lisocl2")


def history(
    *,
    soc0: float = 0.09,
    rate: float = 0.001,
    days: int = 30,
    per_day: int = 6,
    temp_mean: float = 15.0,
    temp_swing: float = 3.0,
    offset_v: float = 0.0,
    chem: str = "lisocl2",
    end_days_before_now: float = 0.0,
) -> tuple[list[int], list[float], list[float]]:
    """Noise-free readings of a cell losing ``rate`` of charge a day, ending ``end_days_before_now`` before NOW."""
    t = np.arange(days * per_day) / per_day - days - end_days_before_now  # days relative to NOW
    soc = soc0 - rate * (t - t[0])
    temp = temp_mean + temp_swing * np.sin(2 * np.pi * t)
    volts = chemistry(chem).voltage(soc, temp) + offset_v
    return [NOW + round(x * DAY_MS) for x in t], volts.tolist(), temp.tolist()


def expected_days(soc_now: float, rate: float, temps: list[float], cfg: ForecastConfig, offset_v: float = 0.0) -> float:
    cold = float(np.quantile(temps, cfg.cold_quantile))
    cut = float(LISOCL2.soc(LISOCL2.cutoff_v - offset_v, cold))
    return (soc_now - cut) / rate


def test_battery_forecast_recovers_rate_and_depletion_of_a_clean_history() -> None:
    ts, v, t = history()
    f = forecast("d1", "lisocl2", ts, v, t, NOW)
    assert f.status is ForecastStatus.OK
    assert f.rate_soc_per_day == pytest.approx(0.001, rel=0.02)
    soc_now = 0.09 - 0.001 * 30
    assert f.soc_now == pytest.approx(soc_now, abs=0.002)
    assert f.days_to_empty_p50 == pytest.approx(expected_days(soc_now, 0.001, t, ForecastConfig()), rel=0.05)
    assert f.days_to_empty_p10 is not None and f.days_to_empty_p90 is not None
    assert f.days_to_empty_p10 < f.days_to_empty_p50 < f.days_to_empty_p90
    assert f.points_used == len(ts) and f.quarantined == 0


def test_battery_forecast_compensates_temperature_swings() -> None:
    """A 20 °C daily swing moves the voltage by 40 mV; the charge, and so the rate, does not move."""
    ts, v, t = history(temp_swing=10.0)
    f = forecast("d1", "lisocl2", ts, v, t, NOW)
    assert f.rate_soc_per_day == pytest.approx(0.001, rel=0.02)


def test_battery_forecast_estimates_a_cell_offset_where_the_history_bends() -> None:
    """A cell 8 mV high whose history crosses the knee: profiling the offset gets its date closer than ignoring it."""
    ts, v, t = history(soc0=0.075, rate=0.001, offset_v=0.008, temp_swing=0.0)
    cfg = ForecastConfig()
    truth = expected_days(0.045, 0.001, t, cfg, offset_v=0.008)
    with_offset = forecast("d1", "lisocl2", ts, v, t, NOW, cfg).days_to_empty_p50
    without = forecast("d1", "lisocl2", ts, v, t, NOW, ForecastConfig(offset_steps=1)).days_to_empty_p50
    assert with_offset is not None and without is not None
    assert abs(with_offset - truth) < abs(without - truth)
    assert with_offset == pytest.approx(truth, rel=0.1)


def test_battery_forecast_quarantines_garbage_and_counts_it_by_reason() -> None:
    ts, v, t = history()
    clean = forecast("d1", "lisocl2", ts, v, t, NOW)
    v[3], v[10], v[20], v[30] = math.nan, -0.2, 65.535, 0.0
    t[40] = -127.0
    ts[50] = NOW + DAY_MS  # stamped in the future
    fleet = forecast_fleet(FleetHistory.single("d1", "lisocl2", ts, v, t), NOW)
    assert fleet.quarantine_reasons == {
        "nan": 1,
        "negative": 1,
        "out_of_range": 2,
        "bad_temperature": 1,
        "future": 1,
    }
    dirty = fleet.device(0)
    assert dirty.quarantined == 6 and dirty.points_used == len(ts) - 6
    assert clean.days_to_empty_p50 is not None and dirty.days_to_empty_p50 is not None
    assert dirty.days_to_empty_p50 == pytest.approx(clean.days_to_empty_p50, rel=0.02)


def test_battery_forecast_of_garbage_only_says_insufficient_data() -> None:
    ts, v, t = history()
    f = forecast("d1", "lisocl2", ts, [math.nan] * len(v), t, NOW)
    assert f.status is ForecastStatus.INSUFFICIENT_DATA
    assert f.days_to_empty_p50 is None and f.rate_soc_per_day is None and f.soc_now is None
    assert f.quarantined == len(v) and f.points_used == 0


@pytest.mark.parametrize(("days", "per_day"), [(30, 0.2), (2, 24)], ids=["too-few-points", "too-short-span"])
def test_battery_forecast_with_too_little_history_says_insufficient_data(days: int, per_day: float) -> None:
    n = max(1, round(days * per_day))
    ts, v, t = history(days=days, per_day=24)
    step = max(1, len(ts) // n)
    f = forecast("d1", "lisocl2", ts[::step], v[::step], t[::step], NOW)
    assert f.status is ForecastStatus.INSUFFICIENT_DATA


def test_battery_forecast_of_a_device_silent_for_days_says_silent() -> None:
    ts, v, t = history(end_days_before_now=5.0)
    f = forecast("d1", "lisocl2", ts, v, t, NOW)
    assert f.status is ForecastStatus.SILENT and f.days_to_empty_p50 is None


@pytest.mark.parametrize("rate", [0.0, -0.001], ids=["flat", "charging"])
def test_battery_forecast_of_a_battery_not_losing_charge_gives_no_date(rate: float) -> None:
    ts, v, t = history(chem="liion", soc0=0.6, rate=rate)
    f = forecast("d1", "liion", ts, v, t, NOW)
    assert f.status is ForecastStatus.NOT_DISCHARGING
    assert f.days_to_empty_p50 is None and f.rate_soc_per_day is not None


def test_battery_forecast_below_cutoff_says_depleted_now() -> None:
    ts, v, t = history(soc0=0.045, rate=0.001)
    f = forecast("d1", "lisocl2", ts, v, t, NOW)
    assert f.status is ForecastStatus.DEPLETED
    assert f.days_to_empty_p50 == 0.0 and f.days_to_empty_p10 == 0.0


def test_battery_forecast_starts_over_after_a_battery_swap() -> None:
    ts, v, t = history(chem="alkaline_2aa", soc0=0.4, rate=0.004)
    fresh = chemistry("alkaline_2aa").voltage(1.0 - 0.004 * np.arange(60) / 6, np.asarray(t[-60:]))
    v[-60:] = fresh.tolist()  # swapped 10 days ago
    f = forecast("d1", "alkaline_2aa", ts, v, t, NOW)
    assert f.points_used == 60
    assert f.soc_now == pytest.approx(1.0 - 0.004 * 59 / 6, abs=0.02)


def test_battery_forecast_ignores_a_single_high_glitch() -> None:
    ts, v, t = history(chem="alkaline_2aa", soc0=0.4, rate=0.004)
    v[100] = 3.05  # in range, looks like a full battery, once
    f = forecast("d1", "alkaline_2aa", ts, v, t, NOW)
    assert f.points_used == len(ts)
    assert f.rate_soc_per_day == pytest.approx(0.004, rel=0.05)


def test_battery_forecast_of_a_fleet_keeps_rows_apart() -> None:
    rows = [history(rate=r) for r in (0.0005, 0.001, 0.002)]
    fleet = forecast_fleet(
        FleetHistory(
            devices=("a", "b", "c"),
            chemistries=("lisocl2",) * 3,
            ts_ms=np.array([r[0] for r in rows], dtype=np.int64),
            voltage=np.array([r[1] for r in rows]),
            temp_c=np.array([r[2] for r in rows]),
            present=np.array([[True] * len(rows[0][0])] * 2 + [[False] * len(rows[0][0])]),
        ),
        NOW,
        ForecastConfig(),
    )
    assert fleet.rate[:2] == pytest.approx([0.0005, 0.001], rel=0.03)
    assert fleet.statuses() == {"ok": 2, "insufficient_data": 1, "silent": 0, "not_discharging": 0, "depleted": 0}
    assert len(fleet) == 3 and fleet.quarantined.tolist() == [0, 0, 0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window_days": -1.0}, "ForecastConfig.window_days: expected a positive number, got -1.0"),
        ({"min_points": 0}, "ForecastConfig.min_points: expected a positive number, got 0"),
        ({"model_error": math.nan}, "ForecastConfig.model_error: expected a positive number, got nan"),
        ({"cold_quantile": 1.0}, "ForecastConfig.cold_quantile: expected a quantile below 1, got 1.0"),
    ],
)
def test_battery_forecast_config_rejects_bad_values_naming_the_field(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(BatteryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ForecastConfig(**kwargs)  # type: ignore[arg-type]


def test_battery_history_rejects_unknown_chemistry_and_ragged_arrays() -> None:
    with pytest.raises(BatteryError, match=r"chemistries\[0\]: chemistry: expected one of lisocl2"):
        FleetHistory.single("d1", "nicd", [1], [3.0], [20.0])
    with pytest.raises(BatteryError, match="d1: ts_ms, voltage and temp_c must have one value per reading"):
        FleetHistory.single("d1", "lisocl2", [1, 2], [3.0], [20.0])
    good = FleetHistory.single("d1", "lisocl2", [1, 2], [3.0, 3.1], [20.0, 20.0])
    with pytest.raises(BatteryError, match="chemistries: expected 1 names"):
        FleetHistory(**{**_fields(good), "chemistries": ()})
    with pytest.raises(BatteryError, match=r"ts_ms: expected shape \(1, slots\)"):
        FleetHistory(**{**_fields(good), "ts_ms": np.zeros(2, dtype=np.int64)})
    with pytest.raises(BatteryError, match=r"voltage: expected shape \(1, 2\) like ts_ms, got \(1, 3\)"):
        FleetHistory(**{**_fields(good), "voltage": np.zeros((1, 3))})


def _fields(h: FleetHistory) -> dict[str, object]:
    return {name: getattr(h, name) for name in ("devices", "chemistries", "ts_ms", "voltage", "temp_c", "present")}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(allow_nan=True, allow_infinity=True, width=32),
            st.floats(allow_nan=True, allow_infinity=True, width=32),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_battery_forecast_never_crashes_and_never_dates_garbage(readings: list[tuple[float, float]]) -> None:
    ts = [NOW - (len(readings) - i) * DAY_MS // 4 for i in range(len(readings))]
    f = forecast("d1", "lisocl2", ts, [r[0] for r in readings], [r[1] for r in readings], NOW)
    usable = [
        r for r in readings if math.isfinite(r[0]) and 1.5 <= r[0] <= 3.9 and math.isfinite(r[1]) and -55 <= r[1] <= 90
    ]
    assert f.points_used <= len(usable)
    assert f.quarantined == len(readings) - len(usable)
    if len(usable) < ForecastConfig().min_points:
        assert f.status is ForecastStatus.INSUFFICIENT_DATA and f.days_to_empty_p50 is None


@pytest.mark.parametrize("n", [0, 1, 2])
def test_battery_forecast_of_a_handful_of_readings_says_insufficient_data(n: int) -> None:
    ts, v, t = history()
    f = forecast("d1", "lisocl2", ts[:n], v[:n], t[:n], NOW)
    assert f.status is ForecastStatus.INSUFFICIENT_DATA and f.points_used == n
