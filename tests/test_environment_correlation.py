"""Environment correlation: exposure features, rate ratios with intervals, adjusted effects, recommendations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pymonitor.actors.environment import (
    EnvironmentData,
    EnvironmentDataError,
    analyse,
    clopper_pearson,
    features,
    poisson_regression,
    rate_ratio,
)
from pymonitor.simulators.health.environment import generate


def small_data(**overrides: object) -> EnvironmentData:
    """Two devices at one site, four hourly samples; device 1 is hot, damp and shaking."""
    fields: dict[str, object] = {
        "sites": ("yard",),
        "device_site": np.array([0, 0]),
        "temperature_c": np.array([[20.0, 21.0, 22.0, 23.0], [41.0, 45.0, 30.0, np.nan]]),
        "humidity_pct": np.array([[50.0, 50.0, 50.0, 50.0], [90.0, 85.0, 95.0, 90.0]]),
        "vibration_ms2": np.array([[0.0, 0.0, 0.0, 0.0], [3.0, 4.0, 3.0, 4.0]]),
        "sample_interval_h": 24.0,
        "failure_device": np.array([1, 1, 0]),
        "failure_hour": np.array([1.0, 50.0, 90.0]),
    }
    fields.update(overrides)
    return EnvironmentData(**fields)  # type: ignore[arg-type]


def test_features_share_above_threshold_mean_humidity_and_vibration_rms() -> None:
    f = features(small_data())
    assert f.hot_share.tolist() == pytest.approx([0.0, 2 / 3])  # NaN sample ignored
    assert f.mean_humidity_pct.tolist() == pytest.approx([50.0, 90.0])
    assert f.vibration_rms_ms2.tolist() == pytest.approx([0.0, math.sqrt(12.5)])
    assert f.failures.tolist() == [1, 2]
    assert f.device_days.tolist() == [4.0, 4.0]
    assert f.quarantined == {}


def test_impossible_values_and_unknown_failures_are_quarantined() -> None:
    data = small_data(
        temperature_c=np.array([[20.0, 999.0, 22.0, 23.0], [np.nan] * 4]),
        humidity_pct=np.array([[50.0, 150.0, 50.0, 50.0], [90.0] * 4]),
        vibration_ms2=np.array([[-1.0, 0.0, 0.0, 0.0], [3.0] * 4]),
        failure_device=np.array([1, 7, 0, -1]),
        failure_hour=np.array([1.0, 1.0, np.nan, 2.0]),
    )
    f = features(data)
    assert f.quarantined == {
        "temperature_impossible": 1,
        "humidity_impossible": 1,
        "vibration_impossible": 1,
        "failure_invalid": 3,
    }
    assert math.isnan(f.hot_share[1])
    report = analyse(data)
    assert report.devices_analysed == 1
    assert report.quarantined["device_missing_feature"] == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"temperature_c": np.zeros(4)}, "temperature_c: expected"),
        ({"humidity_pct": np.zeros((2, 3))}, "humidity_pct: expected shape"),
        ({"device_site": np.array([0])}, "device_site: expected one site per device"),
        ({"device_site": np.array([0, 3])}, "device_site: expected indices into 1 sites"),
        ({"sample_interval_h": 0.0}, "sample_interval_h"),
        ({"failure_hour": np.array([1.0])}, "failure_hour"),
    ],
)
def test_malformed_data_is_refused_with_the_field(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(EnvironmentDataError, match=message):
        features(small_data(**overrides))


def test_clopper_pearson_matches_published_values() -> None:
    assert clopper_pearson(0, 10) == pytest.approx((0.0, 0.30849), abs=1e-4)
    assert clopper_pearson(5, 10) == pytest.approx((0.18709, 0.81291), abs=1e-4)
    assert clopper_pearson(10, 10) == pytest.approx((0.69151, 1.0), abs=1e-4)


def test_rate_ratio_uses_wald_for_large_counts_and_exact_for_small() -> None:
    big = rate_ratio(200, 1000.0, 100, 1000.0)
    assert big.method == "wald" and big.ratio == pytest.approx(2.0)
    assert big.low == pytest.approx(2.0 * math.exp(-1.96 * math.sqrt(1 / 200 + 1 / 100)), rel=1e-3)
    assert big.significant
    small = rate_ratio(6, 100.0, 2, 100.0)
    assert small.method == "exact" and small.ratio == pytest.approx(3.0)
    assert small.low < 1.0 < small.high  # 6 vs 2 is not evidence
    assert not small.significant
    none_unexposed = rate_ratio(5, 100.0, 0, 100.0)
    assert none_unexposed.ratio == math.inf and none_unexposed.high == math.inf and none_unexposed.low > 0
    assert rate_ratio(0, 100.0, 0, 100.0).method == "undefined"
    assert rate_ratio(3, 0.0, 1, 100.0).method == "undefined"


def test_poisson_regression_recovers_known_rate_ratios() -> None:
    rng = np.random.default_rng(7)
    n = 20_000
    x1, x2 = rng.random(n) < 0.3, rng.random(n) < 0.5
    days = np.full(n, 90.0)
    y = rng.poisson(0.002 * days * np.where(x1, 3.0, 1.0) * np.where(x2, 0.5, 1.0)).astype(np.float64)
    x = np.column_stack([np.ones(n), x1, x2]).astype(np.float64)
    fit = poisson_regression(x, y, np.log(days), ("intercept", "x1", "x2"))
    r1, lo1, hi1 = fit.rate_ratio("x1")
    r2, lo2, hi2 = fit.rate_ratio("x2")
    assert lo1 < 3.0 < hi1 and abs(r1 - 3.0) < 0.3
    assert lo2 < 0.5 < hi2
    assert fit.iterations < 50
    with pytest.raises(EnvironmentDataError, match="shapes disagree"):
        poisson_regression(x, y[:10], np.log(days), ("intercept", "x1", "x2"))


def test_simulated_fleet_effects_are_recovered_and_recommended() -> None:
    scenario = generate(2, devices=3_000, days=60)
    report = analyse(scenario.data)
    for name, truth in scenario.true_ratios.items():
        estimate = report.fleet[name]
        assert estimate.method == "poisson-regression"
        assert estimate.low < truth < estimate.high, name
    assert report.quarantined["temperature_impossible"] == scenario.impossible_injected
    assert any("above 40 °C at site" in r and "shade or relocate" in r for r in report.recommendations)
    assert all("(95% CI " in r for r in report.recommendations)
    heat_sites = {e.site for e in report.site_effects if e.exposure == "heat" and e.exposed_devices}
    assert heat_sites  # some site has hot devices; cold-store never does
    assert all(e.exposed_devices == 0 for e in report.site_effects if e.site == "cold-store" and e.exposure == "heat")


def test_a_site_without_devices_is_skipped() -> None:
    report = analyse(small_data(sites=("yard", "empty")))
    assert {e.site for e in report.site_effects} == {"yard"}
    assert report.recommendations == ()


def test_bench_compares_estimates_with_the_true_ratios() -> None:
    from pymonitor.bench.fleet_environment import run

    result = run(3, devices=2_000, days=30)
    assert set(result["effects"]) == {"heat", "humidity", "vibration"}
    for effect in result["effects"].values():
        low, high = effect["ci95"]
        assert low <= effect["estimate"] <= high
        assert effect["recovered"] == (low <= effect["true"] <= high)
