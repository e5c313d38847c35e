"""How well the calibration role finds 2 % drifts among co-located sensors, and how often it cries wolf.

A :class:`CalibrationScenario` is generated for the seed (whole locations of 4-12 sensors, hourly,
``days`` days, about ``drift_share`` of sensors drifting by ``drift_size`` of the reading as a step
or a ramp that is complete at least 3 days before the end), :func:`detect_drift` judges every sensor,
and the verdicts are compared with the truth.

``drift_recall_2pct``: share of drifted sensors flagged, with the alarm no earlier than the drift's
start (an alarm before it would be luck, not detection). ``drift_false_alarm_rate``: share of
healthy sensors flagged at all. Sensors the detector could not judge (too few neighbours) count as
not flagged. Tuned on seeds 1-5; held-out figures come from seeds 101-105.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from pymonitor.actors.calibration import DRIFT_STATUSES, DriftConfig, DriftStatus, detect_drift
from pymonitor.simulators.health.calibration import DAY_MS, CalibrationScenario

from .common import python_version, seeded_main


def run(
    seed: int, devices: int = 10_000, days: int = 30, drift_size: float = 0.02, drift_share: float = 0.1
) -> dict[str, Any]:
    """Generate, detect and score one seeded fleet of co-located sensors; one JSON-able dict."""
    t0 = time.perf_counter()
    scenario = CalibrationScenario.generate(seed, devices, days, drift_size=drift_size, drift_share=drift_share)
    t1 = time.perf_counter()
    result = detect_drift(
        scenario.devices, scenario.locations, scenario.metrics, scenario.ts_ms, scenario.values, DriftConfig()
    )
    t2 = time.perf_counter()
    truth = scenario.truth
    flagged = result.status == DRIFT_STATUSES.index(DriftStatus.DRIFT)
    with np.errstate(invalid="ignore"):
        found = flagged & truth.drifted & (result.detected_ms >= truth.drift_start_ms)
    healthy = ~truth.drifted
    false = flagged & healthy
    delay = (result.detected_ms - truth.drift_full_ms)[found] / DAY_MS
    kinds = np.asarray(truth.drift_kind)
    metrics = np.asarray(scenario.metrics)
    return {
        "bench": "fleet_calibration",
        "seed": seed,
        "sensors": len(scenario.devices),
        "days": days,
        "drift_size": drift_size,
        "drift_recall_2pct": round(float(found.sum() / max(truth.drifted.sum(), 1)), 4),
        "drifted": int(truth.drifted.sum()),
        "drifted_found": int(found.sum()),
        "drifted_flagged_before_start": int((flagged & truth.drifted & ~found).sum()),
        "drift_false_alarm_rate": round(float(false.sum() / max(healthy.sum(), 1)), 5),
        "healthy": int(healthy.sum()),
        "false_alarms": int(false.sum()),
        "recall_by_kind": {
            k: round(float(found[kinds == k].sum() / max((kinds == k).sum(), 1)), 4) for k in ("step", "ramp")
        },
        "recall_by_metric": {
            m: round(float(found[metrics == m].sum() / max((truth.drifted & (metrics == m)).sum(), 1)), 4)
            for m in ("temperature_c", "humidity_pct")
        },
        "days_from_full_drift_to_alarm_p50_p90": [round(float(x), 2) for x in np.percentile(delay, [50, 90])]
        if delay.size
        else None,
        "statuses": result.statuses(),
        "quarantined": int(result.quarantined.sum()),
        "injected": scenario.injected(),
        "generate_s": round(t1 - t0, 2),
        "detect_s": round(t2 - t1, 2),
        "python": python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    """``pymonitor bench fleet_calibration``: held-out seeds 101-105 unless ``--seed`` says otherwise."""
    return seeded_main("fleet_calibration", run, ("drift_recall_2pct", "drift_false_alarm_rate"), 30, argv)


if __name__ == "__main__":
    raise SystemExit(main())
