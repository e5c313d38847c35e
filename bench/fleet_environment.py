"""Environment correlation on a seeded fleet: time to analyse 10,000 devices x 90 days, and effects recovered.

``environment_s`` is wall time of the whole analysis (features from the hourly series, site and
fleet Poisson fits, recommendations), not the scenario generation. Recovery compares the
fleet-wide, site-adjusted rate ratio of each exposure with the simulator's true ratio: recovered
when the truth lies in the 95% interval. Baseline in the same run: the crude fleet-wide ratio
(exposed vs unexposed, no adjustment), which site confounding biases.
"""

from __future__ import annotations

import time
from typing import Any

from pymonitor.actors.environment import analyse, features, rate_ratio
from pymonitor.simulators.health.environment import HOT_SHARE, HUMID_PCT, VIBRATION_MS2, generate

from .common import python_version


def run(seed: int, devices: int = 10_000, days: int = 90) -> dict[str, Any]:
    scenario = generate(seed, devices=devices, days=days)
    start, cpu_start = time.perf_counter(), time.process_time()
    report = analyse(scenario.data)
    spent, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    f = features(scenario.data)
    exposed = {
        "heat": f.hot_share > HOT_SHARE,
        "humidity": f.mean_humidity_pct > HUMID_PCT,
        "vibration": f.vibration_rms_ms2 > VIBRATION_MS2,
    }
    effects: dict[str, Any] = {}
    for name, truth in scenario.true_ratios.items():
        est = report.fleet[name]
        mask = exposed[name]
        crude = rate_ratio(
            int(f.failures[mask].sum()),
            float(f.device_days[mask].sum()),
            int(f.failures[~mask].sum()),
            float(f.device_days[~mask].sum()),
        )
        effects[name] = {
            "true": truth,
            "estimate": round(est.ratio, 3),
            "ci95": [round(est.low, 3), round(est.high, 3)],
            "recovered": bool(est.low <= truth <= est.high),
            "rel_error": round(abs(est.ratio - truth) / truth, 4),
            "crude_baseline": round(crude.ratio, 3),
            "exposure_mismatches": int((mask != scenario.exposed[name]).sum()),  # gaps move devices near a threshold
        }
    return {
        "bench": "fleet_environment",
        "seed": seed,
        "devices": devices,
        "days": days,
        "samples": int(scenario.data.temperature_c.size) * 3,
        "environment_s": round(spent, 4),
        "environment_cpu_s": round(cpu, 4),  # less sensitive than wall time to other work on a shared machine
        "effects": effects,
        "all_recovered": all(e["recovered"] for e in effects.values()),
        "recommendations": len(report.recommendations),
        "example_recommendation": report.recommendations[0] if report.recommendations else None,
        "quarantined": dict(report.quarantined),
        "python": python_version(),
    }
