"""``fleet calibration``: sensors drifting from their co-located neighbours, history and a recalibration schedule.

Every (device, metric) of ``temperature_c`` and ``humidity_pct`` is a sensor; its neighbours are the
sensors of the same metric at the same inventory ``location`` (the site when a device has none).
Readings of the last ``days`` are binned hourly and judged by the drift core. A device's calibration
history is its ``calibration.done`` events; the schedule lists drifting sensors first (due now),
then sensors whose last calibration is older than ``interval_days`` (due then).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pymonitor.actors.calibration.drift import DRIFT_STATUSES, VALID_RANGE, DriftResult, DriftStatus, detect_drift
from pymonitor.store.fleet_data import FleetData

from .answers import limited
from .errors import check_positive
from .grid import DAY_MS, HOUR_MS, binned

CALIBRATED_EVENT = "calibration.done"
_DRIFT = DRIFT_STATUSES.index(DriftStatus.DRIFT)


@dataclass(frozen=True, slots=True, kw_only=True)
class CalibrationOptions:
    days: float = 30.0
    interval_days: float = 365.0
    device: str | None = None
    limit: int = 20

    def __post_init__(self) -> None:
        check_positive(self, "days", "interval_days")


def analyse(data: FleetData, now_ms: int, options: CalibrationOptions) -> tuple[DriftResult, list[str], int]:
    """Drift verdict of every sensor (device, metric), the sensors' metrics, and sensors the inventory lacks."""
    hours = max(math.ceil(options.days * 24), 1)
    since = now_ms - (hours - 1) * HOUR_MS  # the last hourly bin is the one ``now_ms`` falls in
    until = since + hours * HOUR_MS
    inv = data.inventory()
    where = {d: (loc or site) for d, loc, site in zip(inv.device, inv.location, inv.site, strict=True)}
    devices: list[str] = []
    locations: list[str] = []
    metrics: list[str] = []
    grids = []
    unlisted = 0
    for metric in VALID_RANGE:
        series = data.series(metric, since_ms=since, until_ms=until)
        listed = [d for d in series.devices if d in where]
        unlisted += len(series.devices) - len(listed)
        if not listed:
            continue
        grids.append(binned(series, listed, since, hours, HOUR_MS))
        devices += listed
        locations += [f"{where[d]}|{metric}" for d in listed]
        metrics += [metric] * len(listed)
    values = np.vstack(grids).astype(np.float64) if grids else np.zeros((0, hours))
    ts = since + np.arange(hours, dtype=np.int64) * HOUR_MS
    result = detect_drift(devices, locations, metrics, ts, values)
    return result, metrics, unlisted


def _history(data: FleetData) -> dict[str, list[int]]:
    history: dict[str, list[int]] = {}
    for source, ts_ms in data.conn.execute(
        "SELECT source, ts_ms FROM events WHERE kind = ? ORDER BY ts_ms", (CALIBRATED_EVENT,)
    ):
        history.setdefault(source, []).append(int(ts_ms))
    return history


def query(data: FleetData, now_ms: int, options: CalibrationOptions) -> dict[str, Any]:
    result, metrics, unlisted = analyse(data, now_ms, options)
    history = _history(data)
    interval_ms = round(options.interval_days * DAY_MS)
    drifting = [
        {
            "device": e.device,
            "metric": e.location.rsplit("|", 1)[1],
            "location": e.location.rsplit("|", 1)[0],
            "since_ms": e.ts_ms,
            "deviation_pct": round(100 * e.deviation, 2),
        }
        for e in result.events()
    ]
    due = []
    for i, device in enumerate(result.devices):
        last = history.get(device, [])
        if result.status[i] == _DRIFT:
            due.append({"device": device, "metric": metrics[i], "due_ms": now_ms, "reason": "drift"})
        elif last and last[-1] + interval_ms <= now_ms + 30 * DAY_MS:
            due.append({"device": device, "metric": metrics[i], "due_ms": last[-1] + interval_ms, "reason": "interval"})
    due.sort(key=lambda d: (d["due_ms"], d["device"], d["metric"]))
    rows = [i for i, d in enumerate(result.devices) if d == options.device] if options.device else []
    answer: dict[str, Any] = {
        "role": "calibration",
        "now_ms": now_ms,
        "sensors": len(result.devices),
        "statuses": result.statuses(),
        "quarantined": int(result.quarantined.sum()),
        "skipped": {"sensors_not_in_inventory": unlisted},
        "drifting_total": len(drifting),
        "drifting": drifting,
        "schedule": due,
        "sensor": [
            {
                "device": result.devices[i],
                "metric": metrics[i],
                "status": str(DRIFT_STATUSES[result.status[i]]),
                "deviation_pct": None if math.isnan(result.deviation[i]) else round(100 * result.deviation[i], 3),
                "calibrated_ms": history.get(result.devices[i], []),
            }
            for i in rows
        ],
    }
    return limited("calibration", answer, options.limit)
