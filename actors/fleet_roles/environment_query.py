"""``fleet environment``: which exposures (heat, humidity, vibration) make devices fail, by how much, where.

Reads ``temperature_c``, ``humidity_pct`` and ``vibration_ms2`` (or ``vibration_g``, converted) of
the last ``days`` into (devices x ``bin_hours``) grids, and failures from two places: readings of
metric ``failure`` with a value above 0 (importable as CSV) and ``device.failure`` events. Sites come
from the inventory; devices it does not list are left out and counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pymonitor.actors.environment import EnvironmentData, EnvironmentReport, RateRatio, analyse
from pymonitor.store.fleet_data import FleetData, Series

from .answers import limited
from .errors import check_positive
from .grid import DAY_MS, HOUR_MS, binned

STANDARD_GRAVITY_MS2 = 9.80665
FAILURE_METRIC = "failure"
FAILURE_EVENT = "device.failure"


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvironmentOptions:
    days: float = 90.0
    bin_hours: float = 1.0
    limit: int = 20

    def __post_init__(self) -> None:
        check_positive(self, "days", "bin_hours")


def _vibration(data: FleetData, since: int, until: int) -> Series:
    """``vibration_ms2`` if the store has that metric, else ``vibration_g`` in m/s² (one table scan, not two)."""
    if "vibration_ms2" in data.metrics():
        return data.series("vibration_ms2", since_ms=since, until_ms=until)
    g = data.series("vibration_g", since_ms=since, until_ms=until)
    return Series(
        metric="vibration_ms2",
        devices=g.devices,
        device_index=g.device_index,
        ts_ms=g.ts_ms,
        value=g.value * STANDARD_GRAVITY_MS2,
        offsets=g.offsets,
    )


def analysis(data: FleetData, now_ms: int, options: EnvironmentOptions) -> tuple[EnvironmentReport, dict[str, int]]:
    """The core's report over the inventoried devices, and what was left out."""
    bin_ms = max(round(options.bin_hours * HOUR_MS), 1)
    bins = max(math.ceil(options.days * DAY_MS / bin_ms), 1)
    since = now_ms - (bins - 1) * bin_ms  # the last bin is the one ``now_ms`` falls in
    until = since + bins * bin_ms
    inv = data.inventory()
    devices = inv.device
    sites, site_code = inv.codes("site")
    temp = binned(data.series("temperature_c", since_ms=since, until_ms=until), devices, since, bins, bin_ms)
    hum = binned(data.series("humidity_pct", since_ms=since, until_ms=until), devices, since, bins, bin_ms)
    vib = binned(_vibration(data, since, until), devices, since, bins, bin_ms)
    fail_dev, fail_ts, unknown = _failures(data, devices, since, until)
    report = analyse(
        EnvironmentData(
            sites=tuple(str(s) for s in sites),
            device_site=site_code.astype(np.int64),
            temperature_c=temp,
            humidity_pct=hum,
            vibration_ms2=vib,
            sample_interval_h=bin_ms / HOUR_MS,
            failure_device=fail_dev,
            failure_hour=(fail_ts - since) / HOUR_MS,
        )
    )
    return report, {"failures_of_unknown_devices": unknown}


def _failures(
    data: FleetData, devices: tuple[str, ...], since: int, until: int
) -> tuple[np.ndarray[Any, np.dtype[np.int64]], np.ndarray[Any, np.dtype[np.float64]], int]:
    lookup = {name: i for i, name in enumerate(devices)}
    readings = data.series(FAILURE_METRIC, since_ms=since, until_ms=until)
    failed = readings.value > 0
    names = [readings.devices[i] for i in readings.device_index[failed].tolist()]
    stamps = readings.ts_ms[failed].tolist()
    for source, ts_ms in data.conn.execute(
        "SELECT source, ts_ms FROM events WHERE kind = ? AND ts_ms >= ? AND ts_ms < ?", (FAILURE_EVENT, since, until)
    ):
        names.append(source)
        stamps.append(ts_ms)
    idx = np.fromiter((lookup.get(n, -1) for n in names), dtype=np.int64, count=len(names))
    known = idx >= 0
    return idx[known], np.asarray(stamps, dtype=np.float64)[known], int((~known).sum())


def query(data: FleetData, now_ms: int, options: EnvironmentOptions) -> dict[str, Any]:
    report, skipped = analysis(data, now_ms, options)
    significant = [e for e in report.site_effects if e.adjusted.significant]
    answer: dict[str, Any] = {
        "role": "environment",
        "now_ms": now_ms,
        "devices_analysed": report.devices_analysed,
        "recommendations": list(report.recommendations),
        "fleet": {name: _ratio(r) for name, r in report.fleet.items()},
        "site_effects": [
            {
                "site": e.site,
                "exposure": e.exposure,
                "exposed_devices": e.exposed_devices,
                "adjusted": _ratio(e.adjusted),
                "crude": _ratio(e.crude),
            }
            for e in significant
        ],
        "quarantined": dict(report.quarantined),
        "skipped": skipped,
    }
    return limited("environment", answer, options.limit)


def _ratio(r: RateRatio) -> dict[str, Any]:
    def num(x: float) -> float | None:
        return round(x, 3) if math.isfinite(x) else None

    return {
        "ratio": num(r.ratio),
        "low": num(r.low),
        "high": num(r.high),
        "method": r.method,
        "exposed_failures": r.exposed_failures,
        "unexposed_failures": r.unexposed_failures,
        "significant": r.significant,
    }
