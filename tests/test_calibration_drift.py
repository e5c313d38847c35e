"""The drift detector: co-located sensors judged against their neighbours' median."""

from __future__ import annotations

import numpy as np
import pytest

from pymonitor.actors.calibration import CalibrationError, DriftConfig, DriftStatus, detect_drift
from pymonitor.actors.calibration.drift import DRIFT_STATUSES

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
T0 = 1_800_000_000_000
OK, DRIFT, INSUFFICIENT = (DRIFT_STATUSES.index(s) for s in DriftStatus)


def location(
    n: int = 6,
    days: int = 20,
    *,
    base: float = 20.0,
    swing: float = 2.0,
    walk: float = 0.0,
    offsets: list[float] | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Hourly timestamps and readings (n, hours) of n healthy sensors measuring one field."""
    rng = np.random.default_rng(seed)
    h = np.arange(days * 24)
    field = base + swing * np.sin(2 * np.pi * h / 24) + walk * np.sin(2 * np.pi * h / (24 * days))
    values = field[None, :] + np.asarray(offsets or [0.0] * n)[:, None] + rng.normal(0.0, 0.05, (n, len(h)))
    return (T0 + h * HOUR_MS).astype(np.int64), values


def run(values: np.ndarray, ts: np.ndarray, metric: str = "temperature_c", locations: list[str] | None = None):  # type: ignore[no-untyped-def]
    n = values.shape[0]
    return detect_drift([f"s{i}" for i in range(n)], locations or ["L"] * n, [metric] * n, ts, values, DriftConfig())


def test_calibration_finds_a_two_percent_step_within_three_days_and_nothing_else() -> None:
    ts, v = location()
    v[2, 10 * 24 :] *= 1.02
    r = run(v, ts)
    assert r.status.tolist() == [OK, OK, DRIFT, OK, OK, OK]
    assert T0 + 10 * DAY_MS < r.detected_ms[2] <= T0 + 13 * DAY_MS
    assert r.deviation[2] == pytest.approx(0.02, abs=0.003)
    (event,) = r.events()
    assert (event.device, event.location, event.ts_ms) == ("s2", "L", int(r.detected_ms[2]))
    assert r.statuses() == {"ok": 5, "drift": 1, "insufficient_data": 0}


def test_calibration_finds_a_downward_ramp_once_it_is_well_under_way() -> None:
    ts, v = location()
    ramp = np.clip((np.arange(v.shape[1]) - 9 * 24) / (6 * 24), 0.0, 1.0)
    v[0] *= 1.0 - 0.02 * ramp
    r = run(v, ts)
    assert r.status[0] == DRIFT and r.deviation[0] < -0.01
    assert r.detected_ms[0] > T0 + 11 * DAY_MS
    assert (r.status[1:] == OK).all()


def test_calibration_does_not_mistake_an_additive_offset_in_a_moving_field_for_drift() -> None:
    """1.5 %RH high is 3.7 % of 40 %RH and 2 % of 75 %RH; the field moving from one to the other is no drift."""
    ts, v = location(base=57.0, swing=3.0, walk=18.0, offsets=[1.5, -1.2, 0.0, 0.4, -0.3, 0.8])
    r = run(v, ts, metric="humidity_pct")
    assert (r.status == OK).all()


def test_calibration_does_not_blame_the_neighbours_of_a_drifting_sensor() -> None:
    ts, v = location(n=4, offsets=[0.3, -0.3, 0.1, -0.1], seed=3)
    v[0, 9 * 24 :] *= 1.03
    r = run(v, ts)
    assert r.status.tolist() == [DRIFT, OK, OK, OK]


def test_calibration_quarantines_out_of_range_readings_and_counts_them() -> None:
    ts, v = location()
    v[1, 5], v[1, 6], v[1, 7], v[1, 8] = 999.9, -40.0, np.nan, 85.0
    r = run(v, ts)
    assert r.quarantined.tolist() == [0, 3, 0, 0, 0, 0]  # a missing reading is not garbage
    assert (r.status == OK).all()


def test_calibration_cannot_judge_a_sensor_without_enough_neighbours_or_reference() -> None:
    ts, v = location(n=8)
    v[7, : 6 * 24] = np.nan  # no reference period
    locs = ["A"] * 3 + ["B"] * 5  # A: each sensor has only 2 neighbours
    r = run(v, ts, locations=locs)
    assert r.status.tolist() == [INSUFFICIENT] * 3 + [OK] * 4 + [INSUFFICIENT]
    assert np.isnan(r.detected_ms).all()


def test_calibration_with_no_readings_at_all_judges_nobody() -> None:
    r = run(np.zeros((5, 0)), np.zeros(0, dtype=np.int64))
    assert (r.status == INSUFFICIENT).all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"values": np.zeros((2, 3))}, r"values: expected shape \(5, 480\) \(sensors, times\), got \(2, 3\)"),
        ({"locations": ["L"]}, r"locations: expected 5 values \(one per sensor\), got 1"),
        ({"metrics": ["temperature_c"] * 4 + ["pressure"]}, r"metrics\[4\]: expected one of temperature_c"),
        ({"ts_ms": np.arange(480, dtype=np.int64)[::-1]}, "ts_ms: expected increasing timestamps"),
    ],
)
def test_calibration_rejects_malformed_input_saying_where(change: dict[str, object], message: str) -> None:
    ts, v = location(n=5)
    args: dict[str, object] = {
        "devices": [f"s{i}" for i in range(5)],
        "locations": ["L"] * 5,
        "metrics": ["temperature_c"] * 5,
        "ts_ms": ts,
        "values": v,
    }
    with pytest.raises(CalibrationError, match=message):
        detect_drift(**{**args, **change})  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["target", "reference_days", "k_sigmas"])
def test_calibration_config_rejects_non_positive_values(field: str) -> None:
    with pytest.raises(CalibrationError, match=f"DriftConfig.{field}: expected a positive number, got 0"):
        DriftConfig(**{field: 0})


def test_calibration_leave_one_out_median_matches_the_median_of_the_others() -> None:
    from pymonitor.actors.calibration.drift import leave_one_out_median

    rng = np.random.default_rng(0)
    for _ in range(300):
        n, times, least = int(rng.integers(1, 13)), int(rng.integers(1, 5)), int(rng.integers(1, 4))
        block = np.round(rng.normal(size=(n, times)), int(rng.integers(0, 3)))  # rounding makes ties
        block[rng.random((n, times)) < 0.3] = np.nan
        expected = np.full((n, times), np.nan)
        for i in range(n):
            for t in range(times):
                others = np.delete(block[:, t], i)
                others = others[np.isfinite(others)]
                if len(others) >= least:
                    expected[i, t] = np.median(others)
        assert np.allclose(leave_one_out_median(block, least), expected, equal_nan=True)
