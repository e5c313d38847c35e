"""Group rates, depletion alerts and replacement trips made from a fleet's forecasts."""

from __future__ import annotations

import numpy as np
import pytest

from pymonitor.actors.battery import (
    AlertConfig,
    BatteryDataAlert,
    BatteryError,
    DepletionAlert,
    ForecastStatus,
    depletion_alerts,
    rates_by_group,
    replacement_plan,
)
from pymonitor.actors.battery.forecast import STATUSES, FleetForecast

DAY_MS = 86_400_000
NOW = 1_800_000_000_000
OK, SILENT, INSUFFICIENT = (STATUSES.index(s) for s in ("ok", "silent", "insufficient_data"))


def fleet(p10: list[float], statuses: list[int] | None = None, rate: list[float] | None = None) -> FleetForecast:
    n = len(p10)
    status = np.array(statuses or [OK] * n, dtype=np.int8)
    dated = status == OK
    lo = np.where(dated, np.array(p10, dtype=np.float64), np.nan)
    return FleetForecast(
        now_ms=NOW,
        devices=tuple(f"d{i}" for i in range(n)),
        chemistries=("lisocl2",) * n,
        status=status,
        p10=lo,
        p50=lo * 1.2,
        p90=lo * 1.5,
        rate=np.where(dated, np.array(rate or [0.001] * n), np.nan),
        soc_now=np.where(dated, 0.05, np.nan),
        points_used=np.full(n, 100, dtype=np.int64),
        quarantined=np.arange(n, dtype=np.int64),
        quarantine_reasons={},
    )


def test_battery_rates_by_group_summarises_each_group_and_skips_groups_without_rates() -> None:
    fc = fleet([10, 20, 30, 0], statuses=[OK, OK, OK, SILENT], rate=[0.001, 0.003, 0.002, 0.0])
    groups = rates_by_group(fc, ["a", "a", "b", "c"])
    assert [g.group for g in groups] == ["a", "b"]
    assert groups[0].devices == 2 and groups[0].median_rate_soc_per_day == pytest.approx(0.002)
    assert groups[0].median_days_to_empty == pytest.approx(18.0)
    with pytest.raises(BatteryError, match=r"labels: expected 4 \(one per device\), got 1"):
        rates_by_group(fc, ["a"])


def test_battery_alerts_fire_once_per_device_at_the_tightest_threshold_soonest_first() -> None:
    fc = fleet([40, 25, 10, 3, 0], statuses=[OK, OK, OK, OK, INSUFFICIENT])
    alerts = depletion_alerts(fc, ["s1"] * 5, [1, 2, 3, 1, 2])
    dep = [a for a in alerts if isinstance(a, DepletionAlert)]
    assert [(a.device, a.threshold_days) for a in dep] == [("d3", 7.0), ("d2", 14.0), ("d1", 30.0)]
    assert dep[0].empty_by_ms == NOW + 3 * DAY_MS and dep[0].criticality == 1
    data = [a for a in alerts if isinstance(a, BatteryDataAlert)]
    assert data == [BatteryDataAlert(device="d4", site="s1", status=ForecastStatus.INSUFFICIENT_DATA, quarantined=4)]


def test_battery_alerts_can_compare_the_median_instead_of_the_pessimistic_end() -> None:
    fc = fleet([12.0])  # p50 = 14.4
    assert [a.threshold_days for a in depletion_alerts(fc, ["s"], [1])] == [14.0]  # type: ignore[union-attr]
    late = depletion_alerts(fc, ["s"], [1], AlertConfig(thresholds_days=(30.0, 14.0), band="p50"))
    assert [a.threshold_days for a in late] == [30.0]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"thresholds_days": ()}, "AlertConfig.thresholds_days: expected at least one threshold"),
        ({"thresholds_days": (7.0, -1.0)}, r"AlertConfig.thresholds_days\[1\]: expected a positive number of days"),
        ({"band": "p90"}, "AlertConfig.band: expected 'p10' or 'p50', got 'p90'"),
    ],
)
def test_battery_alert_config_rejects_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(BatteryError, match=message):
        AlertConfig(**kwargs)  # type: ignore[arg-type]


def test_battery_replacement_plan_bundles_each_site_and_ranks_sites_by_deadline() -> None:
    # site A: one due in 10 days, one in 35 (within the 30-day bundle of the visit), one in 90.
    # site B: one critical in 12 days (deadline 12 - 3 * 2 = 6: visited before A).
    # site C: nothing due within 30 days: no trip.
    fc = fleet([10, 35, 90, 12, 60, 0], statuses=[OK, OK, OK, OK, OK, SILENT])
    sites = ["A", "A", "A", "B", "C", "C"]
    locations = [f"{s}/zone-{i}" for i, s in enumerate(sites)]
    trips = replacement_plan(fc, sites, locations, [1, 3, 1, 3, 1, 1])
    assert [t.site for t in trips] == ["B", "A"]
    assert trips[0].visit_by_ms == NOW + 6 * DAY_MS and trips[0].max_criticality == 3
    a = trips[1]
    assert a.visit_by_ms == NOW + 8 * DAY_MS
    assert [r.device for r in a.replacements] == ["d1", "d0"]  # most critical first, then soonest
    assert a.replacements[1].location == "A/zone-0"


def test_battery_replacement_plan_breaks_ties_by_criticality() -> None:
    fc = fleet([10, 12])
    trips = replacement_plan(fc, ["A", "B"], ["A/1", "B/1"], [1, 2], lead_days_per_criticality=1.0)
    assert [t.site for t in trips] == ["A", "B"]  # 9 days before 10 days
    trips = replacement_plan(fc, ["A", "B"], ["A/1", "B/1"], [1, 2], lead_days_per_criticality=0.0)
    assert [t.site for t in trips] == ["A", "B"]
    same = fleet([10, 10])
    trips = replacement_plan(same, ["A", "B"], ["A/1", "B/1"], [1, 3], lead_days_per_criticality=0.0)
    assert [t.site for t in trips] == ["B", "A"]


def test_battery_replacement_plan_rejects_ragged_metadata_and_bad_windows() -> None:
    fc = fleet([10])
    with pytest.raises(BatteryError, match=r"locations: expected 1 values \(one per device\), got 0"):
        replacement_plan(fc, ["A"], [], [1])
    with pytest.raises(BatteryError, match="replacement_plan: expected horizon_days > 0"):
        replacement_plan(fc, ["A"], ["A/1"], [1], horizon_days=0)
