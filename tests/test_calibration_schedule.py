"""Calibration history and the recalibration schedule it implies."""

from __future__ import annotations

import pytest

from pymonitor.actors.calibration import (
    CalibrationError,
    CalibrationLog,
    DriftDetected,
    Recalibrated,
    ScheduleConfig,
    recalibration_schedule,
)

DAY_MS = 86_400_000
T0 = 1_800_000_000_000


def drift(device: str, day: float, deviation: float) -> DriftDetected:
    return DriftDetected(device=device, location="L", ts_ms=T0 + round(day * DAY_MS), deviation=deviation)


def test_calibration_log_keeps_events_in_time_order_per_device() -> None:
    log = CalibrationLog().record(drift("a", 5, 0.02), Recalibrated(device="a", ts_ms=T0 + DAY_MS, offset=0.1))
    log = log.record(drift("b", 2, -0.03))
    assert [e.ts_ms for e in log.events] == [T0 + DAY_MS, T0 + 2 * DAY_MS, T0 + 5 * DAY_MS]
    assert [type(e).__name__ for e in log.of("a")] == ["Recalibrated", "DriftDetected"]
    assert log.last_recalibration("b") is None


def test_calibration_schedule_is_interval_after_installation_or_last_recalibration() -> None:
    log = CalibrationLog().record(Recalibrated(device="a", ts_ms=T0 + 100 * DAY_MS))
    due = recalibration_schedule(log, {"a": T0, "b": T0}, T0 + 200 * DAY_MS)
    assert [(d.device, d.due_ms, d.reason, d.overdue) for d in due] == [
        ("b", T0 + 365 * DAY_MS, "interval", False),
        ("a", T0 + 465 * DAY_MS, "interval", False),
    ]


def test_calibration_schedule_pulls_a_drifting_sensor_in_sooner_for_larger_drift() -> None:
    log = CalibrationLog().record(drift("a", 10, 0.02), drift("b", 10, -0.04), drift("b", 11, 0.01))
    due = {d.device: d for d in recalibration_schedule(log, {"a": T0, "b": T0, "c": T0}, T0 + 14 * DAY_MS)}
    assert (due["a"].due_ms, due["a"].reason, due["a"].deviation) == (T0 + 17 * DAY_MS, "drift", 0.02)
    assert (due["b"].due_ms, due["b"].deviation) == (T0 + round(13.5 * DAY_MS), -0.04)
    assert due["b"].overdue and not due["a"].overdue
    assert due["c"].reason == "interval"


def test_calibration_schedule_forgets_a_drift_once_the_sensor_is_recalibrated() -> None:
    log = CalibrationLog().record(drift("a", 10, 0.02), Recalibrated(device="a", ts_ms=T0 + 12 * DAY_MS))
    (due,) = recalibration_schedule(log, {"a": T0}, T0 + 13 * DAY_MS)
    assert (due.reason, due.due_ms) == ("interval", T0 + 377 * DAY_MS)


def test_calibration_schedule_keeps_the_interval_when_it_comes_before_the_drift_date() -> None:
    log = CalibrationLog().record(drift("a", 364, 0.02))
    (due,) = recalibration_schedule(log, {"a": T0}, T0, ScheduleConfig(interval_days=365, drift_urgency_days=7))
    assert due.reason == "interval"


def test_calibration_schedule_of_chosen_devices_needs_their_installation_time() -> None:
    assert [d.device for d in recalibration_schedule(CalibrationLog(), {"a": T0, "b": T0}, T0, devices=["b"])] == ["b"]
    with pytest.raises(CalibrationError, match="installed_ms: no installation time for device 'x'"):
        recalibration_schedule(CalibrationLog(), {"a": T0}, T0, devices=["x"])


def test_calibration_schedule_config_rejects_non_positive_values() -> None:
    with pytest.raises(CalibrationError, match="ScheduleConfig.interval_days: expected a positive number, got -1"):
        ScheduleConfig(interval_days=-1)
