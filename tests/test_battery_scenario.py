"""The seeded battery fleet: reproducible, physically ordered, and honest about what it injected."""

from __future__ import annotations

import numpy as np
import pytest

from pymonitor.actors.battery import CHEMISTRIES
from pymonitor.simulators.health.battery import DAY_MS, STUCK_V, BatteryScenario


@pytest.fixture(scope="module")
def scenario() -> BatteryScenario:
    return BatteryScenario.generate(7, devices=400, days=20, extra_days=60)


def test_battery_scenario_is_reproducible_from_its_seed(scenario: BatteryScenario) -> None:
    again = BatteryScenario.generate(7, devices=400, days=20, extra_days=60)
    assert np.array_equal(again.truth.depletion_ms, scenario.truth.depletion_ms)
    assert np.array_equal(again.history.voltage, scenario.history.voltage, equal_nan=True)
    other = BatteryScenario.generate(8, devices=400, days=20, extra_days=60)
    assert not np.array_equal(other.truth.depletion_ms, scenario.truth.depletion_ms)


def test_battery_scenario_truth_spreads_over_history_and_beyond(scenario: BatteryScenario) -> None:
    dte = scenario.true_days_to_empty()
    assert (dte <= 0).any() and ((dte > 0) & (dte <= 30)).any() and (dte > 30).any()
    assert np.isfinite(scenario.truth.depletion_ms).sum() > 300


def test_battery_scenario_devices_stop_reporting_once_their_battery_is_dead(scenario: BatteryScenario) -> None:
    h = scenario.history
    assert not (h.present & (h.ts_ms >= scenario.truth.depletion_ms[:, None])).any()


def test_battery_scenario_charge_only_falls_except_at_recorded_swaps(scenario: BatteryScenario) -> None:
    soc = scenario.truth.soc_daily
    rises = np.diff(soc, axis=1) > 0
    swapped = np.isfinite(scenario.truth.replaced_at_ms)
    assert not rises[~swapped].any()
    assert rises[swapped].sum(axis=1).max() <= 1


def test_battery_scenario_readings_sit_on_the_chemistry_curve_within_noise(scenario: BatteryScenario) -> None:
    h, t = scenario.history, scenario.truth
    day = ((h.ts_ms - scenario.start_ms) // DAY_MS).clip(0, scenario.days - 1)
    clean = h.present & (h.voltage < STUCK_V) & (h.voltage > 0) & (h.temp_c > -100) & ~t.stuck[:, None]
    clean &= ~np.isfinite(t.replaced_at_ms)[:, None]
    rows, cols = np.nonzero(clean)
    soc = t.soc_daily[rows, day[rows, cols]]
    expected = np.array(
        [
            float(CHEMISTRIES[h.chemistries[r]].voltage(s, tc)) + t.cell_offset_v[r]
            for r, s, tc in zip(rows[:2000], soc[:2000], h.temp_c[rows, cols][:2000], strict=True)
        ]
    )
    # A day's charge loss and the ADC noise are both a few tens of mV at most.
    assert np.percentile(np.abs(h.voltage[rows, cols][:2000] - expected), 90) < 0.05


def test_battery_scenario_records_what_it_injected(scenario: BatteryScenario) -> None:
    injected = scenario.injected()
    assert injected["devices"] == 400 and sum(injected["chemistries"].values()) == 400
    assert injected["garbage_readings"] == int(scenario.truth.garbage_readings.sum()) > 0
    assert (scenario.history.voltage[scenario.truth.stuck] == STUCK_V).all()
    new = scenario.truth.new
    assert (scenario.history.present[new].sum(axis=1) <= 10).all()


def test_battery_scenario_future_seed_redraws_only_what_comes_after_the_history() -> None:
    """Two futures of one fleet: the same past and state at now, different weather and so different deaths."""
    a = BatteryScenario.generate(7, devices=400, days=20, extra_days=60, future_seed=0)
    b = BatteryScenario.generate(7, devices=400, days=20, extra_days=60, future_seed=1)
    for field in ("ts_ms", "voltage", "temp_c", "present"):
        assert np.array_equal(getattr(a.history, field), getattr(b.history, field), equal_nan=True)
    assert np.array_equal(a.truth.soc_daily[:, :20], b.truth.soc_daily[:, :20])
    assert np.array_equal(a.truth.soc_at_end, b.truth.soc_at_end)
    # (A death in the history's last hour is interpolated towards the first future hour, so leave that hour out.)
    dead_before = a.truth.depletion_ms <= a.now_ms - DAY_MS / 24
    assert np.array_equal(a.truth.depletion_ms[dead_before], b.truth.depletion_ms[dead_before])
    later = np.isfinite(a.truth.depletion_ms) & (a.truth.depletion_ms > a.now_ms)
    assert not np.array_equal(a.truth.depletion_ms[later], b.truth.depletion_ms[later])
