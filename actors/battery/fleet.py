"""What a fleet's forecasts mean for people: rates per group, alerts, and which sites a technician visits when.

Pure functions of a :class:`~.forecast.FleetForecast` and the devices' metadata; they never read a
clock (``FleetForecast.now_ms`` is "now"). Alerts use the pessimistic ``p10`` days-to-empty by default:
an alert that comes a few days early costs a trip planned a few days early; a late one costs data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .errors import BatteryError
from .forecast import DAY_MS, STATUSES, FleetForecast, ForecastStatus

_OK = STATUSES.index(ForecastStatus.OK)
_DEPLETED = STATUSES.index(ForecastStatus.DEPLETED)


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupRate:
    """Discharge of one group of devices (a chemistry, a site, a location)."""

    group: str
    devices: int  # with a fitted rate
    median_rate_soc_per_day: float
    p90_rate_soc_per_day: float
    median_days_to_empty: float | None  # over devices with a date


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertConfig:
    """Days-to-empty thresholds that raise an alert, and which end of the band is compared with them."""

    thresholds_days: tuple[float, ...] = (30.0, 14.0, 7.0)
    band: Literal["p10", "p50"] = "p10"

    def __post_init__(self) -> None:
        if not self.thresholds_days:
            raise BatteryError("AlertConfig.thresholds_days: expected at least one threshold, got none")
        for i, t in enumerate(self.thresholds_days):
            if not (math.isfinite(t) and t > 0):
                raise BatteryError(f"AlertConfig.thresholds_days[{i}]: expected a positive number of days, got {t}")
        if self.band not in ("p10", "p50"):
            raise BatteryError(f"AlertConfig.band: expected 'p10' or 'p50', got {self.band!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class DepletionAlert:
    """A battery expected empty within ``threshold_days`` (the tightest threshold it is under)."""

    device: str
    site: str
    threshold_days: float
    days_to_empty_p10: float
    days_to_empty_p50: float
    empty_by_ms: int  # now + the compared band's days
    criticality: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BatteryDataAlert:
    """A device whose battery cannot be forecast (silent, too few usable readings); ``quarantined`` says why."""

    device: str
    site: str
    status: ForecastStatus
    quarantined: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Replacement:
    device: str
    location: str
    criticality: int
    days_to_empty_p10: float
    days_to_empty_p50: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteTrip:
    """One technician visit: everything at the site due within the bundle window, most critical first."""

    site: str
    visit_by_ms: int
    max_criticality: int
    replacements: tuple[Replacement, ...]


def rates_by_group(forecast: FleetForecast, labels: Sequence[str]) -> list[GroupRate]:
    """Discharge rates grouped by ``labels`` (one per device: its chemistry, site or location), by name."""
    if len(labels) != len(forecast):
        raise BatteryError(f"labels: expected {len(forecast)} (one per device), got {len(labels)}")
    names, inverse = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
    out = []
    for g, name in enumerate(names):
        rows = inverse == g
        rate = forecast.rate[rows]
        rate = rate[np.isfinite(rate)]
        days = forecast.p50[rows]
        days = days[np.isfinite(days)]
        if rate.size == 0:
            continue
        out.append(
            GroupRate(
                group=str(name),
                devices=int(rate.size),
                median_rate_soc_per_day=float(np.median(rate)),
                p90_rate_soc_per_day=float(np.quantile(rate, 0.9)),
                median_days_to_empty=float(np.median(days)) if days.size else None,
            )
        )
    return out


def depletion_alerts(
    forecast: FleetForecast,
    sites: Sequence[str],
    criticality: Sequence[int],
    config: AlertConfig | None = None,
) -> list[DepletionAlert | BatteryDataAlert]:
    """One alert per device under a threshold (the tightest), soonest first; then devices that cannot be forecast."""
    cfg = config or AlertConfig()
    _check_rows(forecast, sites=sites, criticality=criticality)
    days = forecast.p10 if cfg.band == "p10" else forecast.p50
    thresholds = sorted(cfg.thresholds_days)
    alerts: list[DepletionAlert | BatteryDataAlert] = []
    for i in np.flatnonzero(days <= thresholds[-1])[np.argsort(days[days <= thresholds[-1]], kind="stable")].tolist():
        tightest = next(t for t in thresholds if days[i] <= t)
        alerts.append(
            DepletionAlert(
                device=forecast.devices[i],
                site=sites[i],
                threshold_days=tightest,
                days_to_empty_p10=float(forecast.p10[i]),
                days_to_empty_p50=float(forecast.p50[i]),
                empty_by_ms=forecast.now_ms + round(float(days[i]) * DAY_MS),
                criticality=int(criticality[i]),
            )
        )
    unknown = (forecast.status == STATUSES.index(ForecastStatus.SILENT)) | (
        forecast.status == STATUSES.index(ForecastStatus.INSUFFICIENT_DATA)
    )
    for i in np.flatnonzero(unknown).tolist():
        alerts.append(
            BatteryDataAlert(
                device=forecast.devices[i],
                site=sites[i],
                status=STATUSES[forecast.status[i]],
                quarantined=int(forecast.quarantined[i]),
            )
        )
    return alerts


def replacement_plan(
    forecast: FleetForecast,
    sites: Sequence[str],
    locations: Sequence[str],
    criticality: Sequence[int],
    *,
    horizon_days: float = 30.0,
    bundle_days: float = 30.0,
    lead_days_per_criticality: float = 2.0,
) -> list[SiteTrip]:
    """Site visits, most urgent first: a site is visited when any battery there is due within ``horizon_days``.

    A device's visit deadline is its ``p10`` days-to-empty minus ``lead_days_per_criticality`` per
    criticality level (a safety sensor is changed earlier). The site's visit is its earliest deadline;
    the trip also takes every battery at the site whose deadline falls within ``bundle_days`` of that
    visit, so the technician does not come back next week. Ties go to the more critical site.
    """
    _check_rows(forecast, sites=sites, locations=locations, criticality=criticality)
    if not (horizon_days > 0 and bundle_days >= 0 and lead_days_per_criticality >= 0):
        raise BatteryError(
            "replacement_plan: expected horizon_days > 0, bundle_days >= 0 and lead_days_per_criticality >= 0, "
            f"got {horizon_days}, {bundle_days}, {lead_days_per_criticality}"
        )
    dated = (forecast.status == _OK) | (forecast.status == _DEPLETED)
    crit = np.asarray(criticality, dtype=np.int64)
    deadline = np.where(dated, np.maximum(forecast.p10 - lead_days_per_criticality * crit, 0.0), np.inf)
    site_arr = np.asarray(sites, dtype=str)
    trips = []
    for site in np.unique(site_arr[dated & (forecast.p10 <= horizon_days)]):
        here = np.flatnonzero((site_arr == site) & dated)
        visit = float(deadline[here].min())
        take = here[deadline[here] <= visit + bundle_days]
        take = take[np.lexsort((forecast.p10[take], -crit[take]))]
        trips.append(
            SiteTrip(
                site=str(site),
                visit_by_ms=forecast.now_ms + round(visit * DAY_MS),
                max_criticality=int(crit[take].max()),
                replacements=tuple(
                    Replacement(
                        device=forecast.devices[i],
                        location=locations[i],
                        criticality=int(crit[i]),
                        days_to_empty_p10=float(forecast.p10[i]),
                        days_to_empty_p50=float(forecast.p50[i]),
                    )
                    for i in take.tolist()
                ),
            )
        )
    trips.sort(key=lambda t: (t.visit_by_ms, -t.max_criticality, -len(t.replacements), t.site))
    return trips


def _check_rows(forecast: FleetForecast, **columns: Sequence[object]) -> None:
    for name, column in columns.items():
        if len(column) != len(forecast):
            raise BatteryError(f"{name}: expected {len(forecast)} values (one per device), got {len(column)}")
