"""``pymonitor bench fleet``: a smoke run at small sizes gives every required key (no timing assertions)."""

from __future__ import annotations

import orjson
import pytest

from pymonitor.bench import fleet

REQUIRED = (
    "battery_within_15pct",
    "drift_recall_2pct",
    "drift_false_alarm_rate",
    "firmware_detect_max_s",
    "environment_s",
    "gateways_s",
    "query_p99_ms",
    "live_backlog_growth",
)


def test_a_small_fleet_bench_prints_one_json_object_with_every_key(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--seed", "3", "--json", "--small", "--devices", "120", "--days", "5", "--queries", "2"]
    argv += ["--fresh-queries", "1"]
    argv += ["--live-s", "1", "--rate", "400", "--analyse-every", "0.3"]
    assert fleet.main(argv) == 0
    result = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(REQUIRED) <= set(result)
    assert result["bench"] == "fleet" and result["seed"] == 3
    assert result["queries"] == 2 * len(fleet.ROLE_OPTIONS) and result["fresh_queries"] == len(fleet.ROLE_OPTIONS)
    assert set(result["role_analysis_s"]) == set(fleet.ROLE_OPTIONS)
    assert result["store"]["devices"] == 120 and result["store"]["readings"] > 0
    assert set(result["live_growth_by_role"]) == {"battery", "firmware", "calibration", "environment", "gateways"}
    assert result["live_readings_per_s"] > 0
    for name in result["missing_role_benches"]:
        assert result["roles"][name] is None
    present = [n for n, r in result["roles"].items() if r is not None]
    assert "firmware" in present and result["firmware_detect_max_s"] is not None


def test_a_role_bench_that_is_not_there_yet_is_reported_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(fleet.ROLE_BENCHES, "battery", ("fleet_no_such_bench", ("battery_within_15pct",)))
    assert fleet.role_bench("battery", 1, small=True) is None
