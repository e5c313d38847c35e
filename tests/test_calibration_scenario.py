"""The seeded co-located sensor fleet: reproducible, drift where and as big as recorded."""

from __future__ import annotations

import numpy as np
import pytest

from pymonitor.simulators.health.calibration import DAY_MS, CalibrationScenario


@pytest.fixture(scope="module")
def scenario() -> CalibrationScenario:
    return CalibrationScenario.generate(3, devices=300, days=20)


def test_calibration_scenario_is_reproducible_from_its_seed(scenario: CalibrationScenario) -> None:
    again = CalibrationScenario.generate(3, devices=300, days=20)
    assert np.array_equal(again.values, scenario.values, equal_nan=True)
    assert np.array_equal(again.truth.drifted, scenario.truth.drifted)


def test_calibration_scenario_locations_hold_4_to_12_sensors_of_one_metric(scenario: CalibrationScenario) -> None:
    locs = np.asarray(scenario.locations)
    for loc in np.unique(locs):
        rows = locs == loc
        assert 4 <= rows.sum() <= 12
        assert len(set(np.asarray(scenario.metrics)[rows])) == 1
        assert scenario.truth.drifted[rows].sum() <= (rows.sum() - 1) // 3


def test_calibration_scenario_drift_is_complete_before_the_end_and_after_the_reference(
    scenario: CalibrationScenario,
) -> None:
    t = scenario.truth
    start = scenario.ts_ms[0]
    d = t.drifted
    assert d.any() and set(np.abs(t.drift_size[d])) == {0.02}
    assert (t.drift_start_ms[d] >= start + scenario.reference_days * DAY_MS).all()
    assert (t.drift_full_ms[d] <= start + (scenario.days - 3) * DAY_MS).all()
    assert {t.drift_kind[i] for i in np.flatnonzero(d)} == {"step", "ramp"}


def test_calibration_scenario_a_drifted_sensor_departs_from_its_neighbours_by_the_drift(
    scenario: CalibrationScenario,
) -> None:
    t = scenario.truth
    locs = np.asarray(scenario.locations)
    i = int(np.flatnonzero(t.drifted)[0])
    mates = (locs == locs[i]) & ~t.drifted
    last_day = slice(-24, None)
    with np.errstate(invalid="ignore"):
        ratio = np.nanmedian(scenario.values[i, last_day] / np.nanmedian(scenario.values[mates][:, last_day], axis=0))
    first = np.nanmedian(scenario.values[i, :24] / np.nanmedian(scenario.values[mates][:, :24], axis=0))
    assert ratio / first - 1 == pytest.approx(t.drift_size[i], abs=0.006)


def test_calibration_scenario_records_what_it_injected(scenario: CalibrationScenario) -> None:
    injected = scenario.injected()
    assert injected["sensors"] == len(scenario.devices) >= 300
    assert injected["drifted"] == int(scenario.truth.drifted.sum())
    assert injected["garbage_readings"] > 0 and injected["missing_readings"] > 0
