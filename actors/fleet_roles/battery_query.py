"""``fleet battery``: depletion forecasts, rates per group, alerts and technician trips, from the hub store.

Reads ``battery_v`` (volts) and ``temperature_c`` (the device's own temperature, paired by
timestamp) of the last ``window_days``; the chemistry is the inventory's ``battery_type``, the
criticality (1-3) an inventory label ``criticality``. Devices the inventory does not list, or whose
battery type is not a known chemistry, are counted, never forecast with a guessed curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pymonitor.actors.battery import (
    CHEMISTRY_NAMES,
    AlertConfig,
    BatteryDataAlert,
    FleetForecast,
    FleetHistory,
    forecast_fleet,
    rates_by_group,
)
from pymonitor.actors.battery import depletion_alerts as core_alerts
from pymonitor.actors.battery import replacement_plan as core_plan
from pymonitor.store.fleet_data import FleetData

from .answers import limited
from .grid import DAY_MS, aligned, inventory_rows, label_int, padded

VOLTAGE_METRIC = "battery_v"
TEMPERATURE_METRIC = "temperature_c"
WINDOW_DAYS = 42.0
FILL_TEMP_C = 25.0


@dataclass(frozen=True, slots=True, kw_only=True)
class BatteryOptions:
    window_days: float = WINDOW_DAYS
    thresholds_days: tuple[float, ...] = (30.0, 14.0, 7.0)
    horizon_days: float = 30.0
    device: str | None = None
    site: str | None = None
    limit: int = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class BatteryAnalysis:
    """The forecast and the metadata rows it was made with (kept for the actor's events)."""

    forecast: FleetForecast
    sites: tuple[str, ...]
    locations: tuple[str, ...]
    criticality: tuple[int, ...]
    skipped: dict[str, int]


def analyse(data: FleetData, now_ms: int, options: BatteryOptions) -> BatteryAnalysis:
    """Forecast every inventoried device with a known chemistry (or the one ``options.device``)."""
    since = now_ms - round(options.window_days * DAY_MS)
    wanted = [options.device] if options.device else (data.devices_at_site(options.site) if options.site else None)
    volts = data.series(VOLTAGE_METRIC, devices=wanted, since_ms=since, until_ms=now_ms + 1)
    temps = data.series(TEMPERATURE_METRIC, devices=wanted, since_ms=since, until_ms=now_ms + 1)
    temp = aligned(volts, temps, FILL_TEMP_C)
    inv = data.inventory()
    rows = inventory_rows(inv, volts.devices)
    chem = [inv.battery_type[r] if r >= 0 else None for r in rows.tolist()]
    known = np.array([c in CHEMISTRY_NAMES for c in chem], dtype=np.bool_)
    skipped = {
        "not_in_inventory": int((rows < 0).sum()),
        "unknown_battery_type": int(((rows >= 0) & ~known).sum()),
    }
    grid = padded(volts)
    temp_grid = np.full(grid.value.shape, FILL_TEMP_C)
    if len(volts):
        idx = volts.device_index.astype(np.int64)
        temp_grid[idx, np.arange(len(volts)) - volts.offsets[:-1][idx]] = temp
    keep = np.flatnonzero(known)
    history = FleetHistory(
        devices=tuple(grid.devices[i] for i in keep),
        chemistries=tuple(str(chem[i]) for i in keep),
        ts_ms=grid.ts_ms[keep],
        voltage=grid.value[keep],
        temp_c=temp_grid[keep],
        present=grid.present[keep],
    )
    kept_rows = rows[keep].tolist()
    return BatteryAnalysis(
        forecast=forecast_fleet(history, now_ms),
        sites=tuple(inv.site[r] for r in kept_rows),
        locations=tuple(inv.location[r] or inv.site[r] for r in kept_rows),
        criticality=tuple(label_int(inv, r, "criticality", 1, 1, 3) for r in kept_rows),
        skipped=skipped,
    )


def alerts(analysis: BatteryAnalysis, options: BatteryOptions) -> list[Any]:
    """Depletion alerts (tightest threshold, soonest first), then devices that cannot be forecast."""
    config = AlertConfig(thresholds_days=options.thresholds_days)
    return core_alerts(analysis.forecast, analysis.sites, analysis.criticality, config)


def query(data: FleetData, now_ms: int, options: BatteryOptions) -> dict[str, Any]:
    """The battery answer as a JSON-able dict."""
    a = analyse(data, now_ms, options)
    f = a.forecast
    trips = core_plan(f, a.sites, a.locations, a.criticality, horizon_days=options.horizon_days)
    found = alerts(a, options)
    depletion = [x for x in found if not isinstance(x, BatteryDataAlert)]
    no_data = [x for x in found if isinstance(x, BatteryDataAlert)]
    answer: dict[str, Any] = {
        "role": "battery",
        "now_ms": now_ms,
        "devices": len(f),
        "statuses": f.statuses(),
        "quarantined": f.quarantine_reasons,
        "skipped": a.skipped,
        "rates": {
            "battery_type": [_rate(g) for g in rates_by_group(f, f.chemistries)],
            "site": [_rate(g) for g in rates_by_group(f, a.sites)],
            "location": [_rate(g) for g in rates_by_group(f, a.locations)],
        },
        "alerts": [
            {
                "device": x.device,
                "site": x.site,
                "threshold_days": x.threshold_days,
                "days_to_empty_p10": _round(x.days_to_empty_p10),
                "days_to_empty_p50": _round(x.days_to_empty_p50),
                "empty_by_ms": x.empty_by_ms,
                "criticality": x.criticality,
            }
            for x in depletion
        ],
        "alerts_total": len(depletion),
        "cannot_forecast": [
            {"device": x.device, "site": x.site, "status": str(x.status), "quarantined": x.quarantined} for x in no_data
        ],
        "trips": [
            {
                "site": t.site,
                "visit_by_ms": t.visit_by_ms,
                "max_criticality": t.max_criticality,
                "replacements": [
                    {
                        "device": r.device,
                        "location": r.location,
                        "criticality": r.criticality,
                        "days_to_empty_p10": _round(r.days_to_empty_p10),
                    }
                    for r in t.replacements
                ],
            }
            for t in trips
        ],
        "trips_total": len(trips),
        "forecasts": [_forecast(f, i) for i in range(len(f))] if options.device else [],
    }
    return limited("battery", answer, options.limit)


def _forecast(f: FleetForecast, i: int) -> dict[str, Any]:
    one = f.device(i)
    return {
        "device": one.device,
        "battery_type": one.chemistry,
        "status": str(one.status),
        "days_to_empty_p10": _round(one.days_to_empty_p10),
        "days_to_empty_p50": _round(one.days_to_empty_p50),
        "days_to_empty_p90": _round(one.days_to_empty_p90),
        "rate_soc_per_day": _round(one.rate_soc_per_day, 5),
        "soc_now": _round(one.soc_now, 4),
        "points_used": one.points_used,
        "quarantined": one.quarantined,
    }


def _rate(g: Any) -> dict[str, Any]:
    return {
        "group": g.group,
        "devices": g.devices,
        "median_rate_soc_per_day": _round(g.median_rate_soc_per_day, 5),
        "p90_rate_soc_per_day": _round(g.p90_rate_soc_per_day, 5),
        "median_days_to_empty": _round(g.median_days_to_empty),
    }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)
