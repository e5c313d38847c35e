"""Retention tiers and the storage plan: measured row sizes, the 5 GB seed requirement, the CLI."""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from pymonitor.actors.summary import SummaryError
from pymonitor.actors.summary.retention import DEFAULT_TIERS, measure_row_bytes, plan_storage, tiers_with
from pymonitor.cli.main import app

FIVE_GB = 5_000_000_000


def test_default_tiers_are_the_documented_ones() -> None:
    assert [(t.name, t.window_ms, t.keep_days) for t in DEFAULT_TIERS] == [
        ("raw", 0, 7), ("1m", 60_000, 90), ("1h", 3_600_000, 365), ("1d", 86_400_000, 1825),
    ]  # fmt: skip


def test_thousand_metrics_a_minute_for_ninety_days_fit_in_five_gb() -> None:
    plan = plan_storage(1000, 90)
    assert plan.basis.startswith("measured")
    by_tier = {t.tier: t for t in plan.tiers}
    assert by_tier["raw"].rows == 1000 * 1440 * 7
    assert by_tier["1m"].rows == 1000 * 1440 * 90
    assert by_tier["1h"].rows == 1000 * 24 * 90
    assert 0 < plan.total_bytes <= FIVE_GB


def test_measured_row_sizes_are_plausible_for_sqlite() -> None:
    sizes = measure_row_bytes(60.0)
    assert 20 < sizes["raw"] < 200  # five integers and a float, plus an index entry
    assert 0 < sizes["1m"] < sizes["raw"]  # one-sample minutes are packed, not a row each
    assert sizes["1h"] > sizes["1m"]  # an hour carries a sketch of 60 values


def test_plan_scales_with_rate_and_keep_days() -> None:
    sizes = {"raw": 50.0, "1m": 10.0, "1h": 100.0, "1d": 200.0}
    base = plan_storage(1000, 90, row_bytes=sizes)
    double = plan_storage(2000, 90, row_bytes=sizes)
    assert double.tiers[0].bytes == 2 * base.tiers[0].bytes
    short = plan_storage(1000, 90, tiers_with(1, 90, 365, 1825), row_bytes=sizes)
    assert short.tiers[0].rows == base.tiers[0].rows // 7
    assert plan_storage(1000, 3, row_bytes=sizes).tiers[1].keep_days == 3
    # 10 series read 100 times a minute: a 1-minute window per series and minute, not per reading
    assert plan_storage(1000, 1, series=10, row_bytes=sizes).tiers[1].rows == 10 * 1440


@pytest.mark.parametrize(("kwargs", "field"), [({"metrics_per_min": 0, "days": 1}, "metrics_per_min"),
                                                ({"metrics_per_min": 1, "days": 0}, "days")])  # fmt: skip
def test_impossible_plan_is_refused_naming_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(SummaryError, match=field):
        plan_storage(**kwargs, row_bytes={"raw": 1.0, "1m": 1.0, "1h": 1.0, "1d": 1.0})


def test_storage_plan_command_prints_tiers_and_json() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["storage", "plan", "--metrics-per-min", "1000", "--days", "90", "--json"])
    assert result.exit_code == 0, result.output
    data = orjson.loads(result.stdout.strip().splitlines()[-1])
    assert [t["tier"] for t in data["tiers"]] == ["raw", "1m", "1h", "1d"]
    assert data["total_bytes"] == sum(t["bytes"] for t in data["tiers"]) <= FIVE_GB
    human = runner.invoke(app, ["storage", "plan", "--metrics-per-min", "1000", "--raw-days", "3"])
    assert human.exit_code == 0 and "total" in human.output and "measured" in human.output
    assert "  raw       3 d" in human.output
