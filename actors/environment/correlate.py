"""Which environments make devices fail more often, by how much, where, and what to do about it.

Exposures are thresholded features (e.g. above 40 °C for more than 10% of the time). For each
site and exposure we report the crude rate ratio and one adjusted for the other exposures (a
Poisson regression within the site), and fleet-wide ratios adjusted for site. A recommendation
is made only where the adjusted interval excludes 1 (the effect is not noise) and the ratio is
above 1, in plain words: "devices above 40 °C at site X fail 3.2x as often (95% CI 2.1-4.8); ...".
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from pymonitor.actors.environment.exposure import BoolArray, EnvironmentData, Features, IntArray, features
from pymonitor.actors.environment.rates import RateRatio, poisson_regression, rate_ratio


@dataclass(frozen=True, slots=True, kw_only=True)
class Exposure:
    name: str
    feature: str  # a Features field
    threshold: float  # exposed when the feature is above it
    phrase: str  # completes "devices ___ at site X fail ..."
    action: str


DEFAULT_EXPOSURES = (
    Exposure(name="heat", feature="hot_share", threshold=0.10, phrase="above 40 °C", action="shade or relocate them"),
    Exposure(
        name="humidity",
        feature="mean_humidity_pct",
        threshold=80.0,
        phrase="at mean humidity above 80%",
        action="seal the enclosures or add desiccant",
    ),
    Exposure(
        name="vibration",
        feature="vibration_rms_ms2",
        threshold=2.0,
        phrase="vibrating above 2 m/s² RMS",
        action="fit damping mounts",
    ),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteEffect:
    site: str
    exposure: str
    exposed_devices: int
    crude: RateRatio
    adjusted: RateRatio  # for the other exposures, within the site


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvironmentReport:
    site_effects: tuple[SiteEffect, ...]
    fleet: dict[str, RateRatio]  # per exposure, adjusted for the other exposures and for site
    recommendations: tuple[str, ...]
    devices_analysed: int
    quarantined: Counter[str]


def _group_ratio(exposed: BoolArray, f: Features, rows: BoolArray) -> RateRatio:
    e, u = rows & exposed, rows & ~exposed
    return rate_ratio(
        int(f.failures[e].sum()), float(f.device_days[e].sum()), int(f.failures[u].sum()), float(f.device_days[u].sum())
    )


def _adjusted(exposed: BoolArray, f: Features, rows: BoolArray, site: IntArray | None) -> list[RateRatio]:
    """Ratios per exposure from one Poisson fit over ``rows`` (plus a baseline per site if ``site`` is given).

    An exposure the fit cannot estimate (no failures on one side) gets its crude, exact-interval ratio.
    """
    crude = [_group_ratio(exposed[:, k], f, rows) for k in range(exposed.shape[1])]
    usable = [k for k, c in enumerate(crude) if c.exposed_failures > 0 and c.unexposed_failures > 0]
    columns = [np.ones(int(rows.sum()))] + [exposed[rows, k].astype(np.float64) for k in usable]
    names = ["intercept"] + [str(k) for k in usable]
    if site is not None:
        present = np.unique(site[rows])
        for s in present[1:]:
            columns.append((site[rows] == s).astype(np.float64))
            names.append(f"site{s}")
    fit = poisson_regression(
        np.column_stack(columns), f.failures[rows].astype(np.float64), np.log(f.device_days[rows]), tuple(names)
    )
    out = list(crude)
    for k in usable:
        ratio, low, high = fit.rate_ratio(str(k))
        c = crude[k]
        out[k] = RateRatio(
            ratio=ratio,
            low=low,
            high=high,
            exposed_failures=c.exposed_failures,
            exposed_days=c.exposed_days,
            unexposed_failures=c.unexposed_failures,
            unexposed_days=c.unexposed_days,
            method="poisson-regression",
        )
    return out


def analyse(data: EnvironmentData, exposures: tuple[Exposure, ...] = DEFAULT_EXPOSURES) -> EnvironmentReport:
    """Site and fleet rate ratios for every exposure, and recommendations where an effect is clear."""
    f = features(data)
    values = np.column_stack([getattr(f, e.feature) for e in exposures])
    valid = np.isfinite(values).all(axis=1)
    with np.errstate(invalid="ignore"):
        exposed = values > np.array([e.threshold for e in exposures])
    quarantined = Counter(f.quarantined)
    quarantined["device_missing_feature"] += int((~valid).sum())
    effects: list[SiteEffect] = []
    recommendations: list[tuple[float, str]] = []
    for s, site in enumerate(data.sites):
        rows = valid & (data.device_site == s)
        if not rows.any():
            continue
        adjusted = _adjusted(exposed, f, rows, None)
        for k, exposure in enumerate(exposures):
            effect = SiteEffect(
                site=site,
                exposure=exposure.name,
                exposed_devices=int((rows & exposed[:, k]).sum()),
                crude=_group_ratio(exposed[:, k], f, rows),
                adjusted=adjusted[k],
            )
            effects.append(effect)
            a = effect.adjusted
            if a.significant and a.ratio > 1 and math.isfinite(a.ratio):
                text = (
                    f"devices {exposure.phrase} at site {site} fail {a.ratio:.1f}x as often "
                    f"(95% CI {a.low:.1f}-{a.high:.1f}); {exposure.action}"
                )
                recommendations.append((a.ratio, text))
    fleet_ratios = _adjusted(exposed, f, valid, data.device_site) if valid.any() else []
    return EnvironmentReport(
        site_effects=tuple(effects),
        fleet={e.name: r for e, r in zip(exposures, fleet_ratios, strict=False)},
        recommendations=tuple(text for _, text in sorted(recommendations, key=lambda r: -r[0])),
        devices_analysed=int(valid.sum()),
        quarantined=+quarantined,
    )
