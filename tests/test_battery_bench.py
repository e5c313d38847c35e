"""The fleet_battery bench: scores a small seeded fleet and says how it scored."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from pymonitor.bench import fleet_battery


def test_battery_bench_scores_forecasts_against_the_truth() -> None:
    result = fleet_battery.run(3, devices=400, days=30, extra_days=60)
    scored = result["scored"]
    assert scored["devices"] > 0 and 0 <= scored["hits"] <= scored["devices"]
    assert result["battery_within_15pct"] == round(scored["hits"] / scored["devices"], 4)
    assert result["within_15pct_or_1_day"]["hits"] >= scored["hits"]
    assert "0.15 * true days-to-empty" in result["definition"]
    # Knowing the present exactly but not the weather to come: a ceiling, and above what the forecast gets.
    assert 0 < result["weather_ceiling_within_15pct"] <= 1 and result["weather_ceiling_futures"] == 8
    assert sum(c["devices"] for c in result["weather_ceiling_by_chemistry"].values()) == scored["devices"]
    # The best point per device, chosen on the futures themselves, hits at least as often as their median.
    assert result["weather_ceiling_within_15pct"] - 0.1 <= result["weather_best_point_within_15pct"] <= 1
    assert sum(result["statuses"].values()) == 400
    orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY)


def test_battery_bench_main_prints_one_json_object_with_the_range(capsys: pytest.CaptureFixture[str]) -> None:
    assert fleet_battery.main(["--seed", "3", "4", "--devices", "200", "--days", "20"]) == 0
    last = orjson.loads(capsys.readouterr().out.splitlines()[-1])
    assert last["seeds"] == [3, 4] and len(last["per_seed"]) == 2
    low, high = last["battery_within_15pct"]["min"], last["battery_within_15pct"]["max"]
    assert low <= last["battery_within_15pct"]["mean"] <= high


def test_battery_bench_without_futures_reports_no_ceiling() -> None:
    result = fleet_battery.run(3, devices=200, days=20, extra_days=40, futures=0)
    assert result["weather_ceiling_within_15pct"] is None and result["weather_ceiling_futures"] == 0
    assert result["weather_best_point_within_15pct"] is None


def test_the_best_point_lands_within_15_percent_of_the_most_futures_it_can() -> None:
    futures = np.array([[10.0, np.inf, 5.0], [11.0, -1.0, 5.0], [20.0, np.nan, 30.0], [13.5, 2.0, 30.0]])
    # Device 0: one point covers 10, 11 and 13.5 (13.5 / 10 < 1.15 / 0.85) but never 20 as well: 3 of 4.
    # Device 1: only 2.0 can be hit: 1 of 4. Device 2: 5 and 5, or 30 and 30: 2 of 4.
    assert fleet_battery.best_point_share(futures) == round((3 / 4 + 1 / 4 + 2 / 4) / 3, 4)
    assert fleet_battery.best_point_share(futures[:, :0]) is None
