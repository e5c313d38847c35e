"""A seeded fleet's hourly temperature, humidity and vibration, with failures whose hazard the environment drives.

Each site has a climate and a baseline failure rate; each device a placement (in the sun, in a
damp enclosure, bolted to a machine). A device's failure hazard is the site baseline times a true
rate ratio for every exposure it has, the exposures defined exactly as the environment role
thresholds them (above 40 °C more than 10% of the time, mean humidity above 80%, vibration RMS
above 2 m/s²). Hot and humid sites also have higher baselines, so a crude comparison is confounded
and only a site-adjusted estimate should recover :data:`TRUE_RATIOS`. A few impossible readings
and gaps are injected so the role's quarantine is exercised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pymonitor.actors.environment import EnvironmentData

TRUE_RATIOS = {"heat": 3.0, "humidity": 1.8, "vibration": 2.5}
HEAT_C, HOT_SHARE, HUMID_PCT, VIBRATION_MS2 = 40.0, 0.10, 80.0, 2.0
BASE_FAILURES_PER_DAY = 0.0015
IMPOSSIBLE_SHARE = 1e-5
GAP_SHARE = 1e-3


@dataclass(frozen=True, slots=True, kw_only=True)
class Site:
    name: str
    temp_mean_c: float
    temp_swing_c: float  # half the day-night range
    humidity_pct: float
    machinery_share: float  # devices bolted to vibrating machines
    baseline: float  # failure-rate multiplier of the site


SITES = (
    Site(name="desert-yard", temp_mean_c=28.0, temp_swing_c=9.0, humidity_pct=25.0, machinery_share=0.05, baseline=1.6),
    Site(
        name="coastal-pier", temp_mean_c=22.0, temp_swing_c=4.0, humidity_pct=78.0, machinery_share=0.05, baseline=1.3
    ),
    Site(
        name="factory-floor", temp_mean_c=27.0, temp_swing_c=3.0, humidity_pct=50.0, machinery_share=0.5, baseline=1.0
    ),
    Site(name="cold-store", temp_mean_c=4.0, temp_swing_c=1.0, humidity_pct=70.0, machinery_share=0.1, baseline=0.8),
    Site(
        name="rooftop-north", temp_mean_c=24.0, temp_swing_c=8.0, humidity_pct=60.0, machinery_share=0.02, baseline=1.0
    ),
    Site(name="greenhouse", temp_mean_c=29.0, temp_swing_c=6.0, humidity_pct=80.0, machinery_share=0.02, baseline=1.2),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvironmentScenario:
    data: EnvironmentData
    true_ratios: dict[str, float]
    exposed: dict[str, np.ndarray]  # truth: which devices had each exposure
    impossible_injected: int


def generate(seed: int, *, devices: int = 10_000, days: int = 90) -> EnvironmentScenario:
    rng = np.random.default_rng(seed)
    hours = days * 24
    site = rng.integers(0, len(SITES), size=devices)
    mean_c = np.array([s.temp_mean_c for s in SITES])[site] + np.where(rng.random(devices) < 0.3, 7.0, 0.0)
    swing = np.array([s.temp_swing_c for s in SITES])[site]
    hour = np.arange(hours, dtype=np.float32)
    daily = np.sin(2 * np.pi * (hour % 24 - 9) / 24).astype(np.float32)
    temp = (mean_c[:, None] + swing[:, None] * daily[None, :]).astype(np.float32)
    temp += rng.standard_normal((devices, hours), dtype=np.float32) * np.float32(2.0)
    hum_mean = np.array([s.humidity_pct for s in SITES])[site] + rng.normal(0, 8, size=devices)
    humidity = hum_mean[:, None].astype(np.float32) + rng.standard_normal((devices, hours), dtype=np.float32) * 5
    np.clip(humidity, 0, 100, out=humidity)
    on_machine = rng.random(devices) < np.array([s.machinery_share for s in SITES])[site]
    level = np.where(
        on_machine, rng.lognormal(np.log(3.0), 0.3, size=devices), rng.lognormal(np.log(0.4), 0.4, size=devices)
    )
    vibration = np.abs(
        level[:, None].astype(np.float32) * (1 + 0.3 * rng.standard_normal((devices, hours), dtype=np.float32))
    )
    exposed = {
        "heat": (temp > HEAT_C).mean(axis=1) > HOT_SHARE,
        "humidity": humidity.mean(axis=1) > HUMID_PCT,
        "vibration": np.sqrt((vibration.astype(np.float64) ** 2).mean(axis=1)) > VIBRATION_MS2,
    }
    hazard = BASE_FAILURES_PER_DAY * np.array([s.baseline for s in SITES])[site]
    for name, mask in exposed.items():
        hazard = hazard * np.where(mask, TRUE_RATIOS[name], 1.0)
    failures = rng.poisson(hazard * days)
    failure_device = np.repeat(np.arange(devices, dtype=np.int64), failures)
    failure_hour = rng.uniform(0, hours, size=failure_device.shape[0])
    # Sensor faults after the truth is fixed: the role must quarantine them, not learn from them.
    flat = temp.reshape(-1)
    bad = rng.choice(flat.shape[0], size=max(1, int(IMPOSSIBLE_SHARE * flat.shape[0])), replace=False)
    flat[bad] = 999.0
    gaps = rng.choice(flat.shape[0], size=int(GAP_SHARE * flat.shape[0]), replace=False)
    humidity.reshape(-1)[gaps] = np.nan
    data = EnvironmentData(
        sites=tuple(s.name for s in SITES),
        device_site=site.astype(np.int64),
        temperature_c=temp,
        humidity_pct=humidity,
        vibration_ms2=vibration,
        sample_interval_h=1.0,
        failure_device=failure_device,
        failure_hour=failure_hour,
    )
    return EnvironmentScenario(
        data=data, true_ratios=dict(TRUE_RATIOS), exposed=exposed, impossible_injected=int(bad.size)
    )
