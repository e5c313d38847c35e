"""Drift of a sensor found by comparing it with its co-located neighbours, never with a model of the world.

Sensors at one location measure the same field, so what the field does cancels out and what one
sensor does alone remains. Per sensor and hour:

    relative deviation = (aligned reading - median of the other aligned sensors) / that median

Aligned: each sensor's own median difference from its location over the first ``reference_days`` is
taken out first, in the reading's units (every sensor has a small offset; that is not drift, and an
offset is additive: 0.8 %RH is 2 % of 40 %RH but 1 % of 80 %RH). The median needs at least
``min_neighbours`` other sensors; garbage outside the metric's range is quarantined and counted
first. Each day's median of that deviation (a rolling median: spikes and a door left open for an
hour do not move it) is compared with its median over the reference days (a small gain error). A
two-sided CUSUM on the daily excess, with allowance ``k = max(k_fraction * target, k_sigmas * sigma)`` (sigma:
the MAD-scaled spread of the sensor's reference days) raises the alarm when it passes
``h_fraction * target``: a 2 % step is found in three days, a 2 % ramp once it is more than half there,
while a healthy sensor's daily deviations stay far inside ``k``. A second pass repeats all this
with the sensors the first found drifting removed from everyone's neighbours, so in a group of four
one drifting sensor does not drag a healthy one over the line.

Scored by ``bench/fleet_calibration.py`` (recall of 2 % drifts, false alarms on healthy sensors).
Held-out seeds 101-105 (about 10,000 sensors, 30 days each): recall 97.3-99.4 %, false alarms
0.19-0.45 % of healthy sensors, alarm a median 2 days after the drift reaches its full size.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from .errors import CalibrationError

DAY_MS = 86_400_000
VALID_RANGE: dict[str, tuple[float, float]] = {
    # Exclusive bounds: -40 °C and 0 % are what common sensors report when they fail to read.
    "temperature_c": (-40.0, 85.0),
    "humidity_pct": (0.0, 100.5),
}


class DriftStatus(StrEnum):
    OK = "ok"
    DRIFT = "drift"
    INSUFFICIENT_DATA = "insufficient_data"  # too few neighbours or reference days to judge


DRIFT_STATUSES: tuple[DriftStatus, ...] = tuple(DriftStatus)


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftConfig:
    """Sizes are relative to the reading (0.02 = 2 %); defaults tuned on seeds 1-5."""

    target: float = 0.02  # the drift worth a technician's visit
    reference_days: int = 7
    min_neighbours: int = 3
    min_hours_per_day: int = 12
    k_fraction: float = 0.5
    k_sigmas: float = 2.0
    h_fraction: float = 1.0
    sigma_floor: float = 0.0005

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise CalibrationError(f"DriftConfig.{f.name}: expected a positive number, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftDetected:
    """Event: ``device`` reads ``deviation`` (relative, signed) away from its neighbours since about ``ts_ms``."""

    device: str
    location: str
    ts_ms: int
    deviation: float


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftResult:
    """Per sensor (row-aligned with the input): status, when the alarm came, the latest daily excess."""

    devices: tuple[str, ...]
    locations: tuple[str, ...]
    status: NDArray[np.int8]  # index into DRIFT_STATUSES
    detected_ms: NDArray[np.float64]  # NaN where no alarm
    deviation: NDArray[np.float64]  # excess over baseline at the alarm, else on the last judged day
    sigma: NDArray[np.float64]  # spread of the reference days' deviation
    quarantined: NDArray[np.int64]

    def statuses(self) -> dict[str, int]:
        counts = np.bincount(self.status, minlength=len(DRIFT_STATUSES))
        return {s.value: int(c) for s, c in zip(DRIFT_STATUSES, counts, strict=True)}

    def events(self) -> list[DriftDetected]:
        """One :class:`DriftDetected` per drifting sensor, earliest first."""
        rows = np.flatnonzero(self.status == DRIFT_STATUSES.index(DriftStatus.DRIFT))
        rows = rows[np.argsort(self.detected_ms[rows], kind="stable")]
        return [
            DriftDetected(
                device=self.devices[i],
                location=self.locations[i],
                ts_ms=int(self.detected_ms[i]),
                deviation=float(self.deviation[i]),
            )
            for i in rows
        ]


def detect_drift(
    devices: Sequence[str],
    locations: Sequence[str],
    metrics: Sequence[str],
    ts_ms: NDArray[np.int64],
    values: NDArray[np.float64],
    config: DriftConfig | None = None,
) -> DriftResult:
    """Judge every sensor against its location's other sensors over the readings ``values`` (sensors, times).

    ``ts_ms`` (ms since the epoch, UTC) is shared by all sensors and increasing; NaN marks a missing reading.
    """
    cfg = config or DriftConfig()
    values = _check(devices, locations, metrics, ts_ms, values)
    clean, quarantined = _quarantine(metrics, values)
    t0 = int(ts_ms[0]) if len(ts_ms) else 0
    day = (ts_ms - t0) // DAY_MS
    n_days = int(day[-1]) + 1 if len(day) else 0  # no readings: no reference, nobody judged
    reference = day < cfg.reference_days
    # Pass 2 judges everyone again without the sensors pass 1 found drifting among the neighbours.
    status, detected, deviation, sigma = _judge(locations, clean, day, n_days, reference, None, cfg)
    if (status == 1).any():
        again = _judge(locations, clean, day, n_days, reference, status == 1, cfg)
        # Where removing the drifting ones leaves too few neighbours, pass 1's verdict stands.
        redo = again[0] != 2
        status = np.where(redo, again[0], status).astype(np.int8)
        detected = np.where(redo, again[1], detected)
        deviation = np.where(redo, again[2], deviation)
        sigma = np.where(redo, again[3], sigma)
    return DriftResult(
        devices=tuple(devices),
        locations=tuple(locations),
        status=status,
        detected_ms=np.where(status == 1, t0 + (detected + 1) * DAY_MS, np.nan).astype(np.float64),
        deviation=deviation,
        sigma=sigma,
        quarantined=quarantined,
    )


def _judge(
    locations: Sequence[str],
    clean: NDArray[np.float64],
    day: NDArray[np.int64],
    n_days: int,
    reference: NDArray[np.bool_],
    exclude: NDArray[np.bool_] | None,
    cfg: DriftConfig,
) -> tuple[NDArray[np.int8], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """Status, alarm day, deviation and sigma of every sensor (one CUSUM pass)."""
    n = clean.shape[0]
    skip = np.zeros(n, dtype=np.bool_) if exclude is None else exclude
    diff, med = _against_neighbours(locations, clean, reference, skip, cfg.min_neighbours)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no judgement, by design
        rel = diff / np.abs(med)
        daily = np.full((n, n_days), np.nan)
        for d in range(n_days):
            cols = rel[:, day == d]
            enough = np.isfinite(cols).sum(axis=1) >= cfg.min_hours_per_day
            daily[enough, d] = np.nanmedian(cols[enough], axis=1)
        ref = daily[:, : cfg.reference_days]
        ref_days = np.isfinite(ref).sum(axis=1)
        baseline = np.nanmedian(ref, axis=1)
        sigma = np.maximum(1.4826 * np.nanmedian(np.abs(ref - baseline[:, None]), axis=1), cfg.sigma_floor)
    judged = ref_days >= max(3, cfg.reference_days // 2)
    excess = daily - baseline[:, None]
    k = np.maximum(cfg.k_fraction * cfg.target, cfg.k_sigmas * sigma)
    h = cfg.h_fraction * cfg.target
    up = np.zeros(n)
    down = np.zeros(n)
    alarm_day = np.full(n, -1, dtype=np.int64)
    last = np.full(n, np.nan)
    for d in range(cfg.reference_days, n_days):
        e = excess[:, d]
        seen = np.isfinite(e) & judged
        up = np.where(seen, np.maximum(0.0, up + e - k), up)
        down = np.where(seen, np.maximum(0.0, down - e - k), down)
        fire = seen & (alarm_day < 0) & ((up > h) | (down > h))
        alarm_day[fire] = d
        last = np.where(seen & (alarm_day < 0) | fire, e, last)
    status = np.where(alarm_day >= 0, 1, np.where(judged, 0, 2)).astype(np.int8)
    return status, alarm_day, last, sigma


def _check(
    devices: Sequence[str],
    locations: Sequence[str],
    metrics: Sequence[str],
    ts_ms: NDArray[np.int64],
    values: NDArray[np.float64],
) -> NDArray[np.float64]:
    values = np.asarray(values, dtype=np.float64)
    n = len(devices)
    if values.ndim != 2 or values.shape != (n, len(ts_ms)):
        raise CalibrationError(f"values: expected shape ({n}, {len(ts_ms)}) (sensors, times), got {values.shape}")
    for name, column in (("locations", locations), ("metrics", metrics)):
        if len(column) != n:
            raise CalibrationError(f"{name}: expected {n} values (one per sensor), got {len(column)}")
    for i, metric in enumerate(metrics):
        if metric not in VALID_RANGE:
            raise CalibrationError(f"metrics[{i}]: expected one of {', '.join(VALID_RANGE)}, got {metric!r}")
    if len(ts_ms) and np.any(np.diff(ts_ms) < 0):
        raise CalibrationError("ts_ms: expected increasing timestamps")
    return values


def _quarantine(metrics: Sequence[str], values: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Readings outside the metric's range become NaN; per sensor, how many (missing readings are not counted)."""
    lo = np.array([VALID_RANGE[m][0] for m in metrics])[:, None]
    hi = np.array([VALID_RANGE[m][1] for m in metrics])[:, None]
    with np.errstate(invalid="ignore"):
        bad = ~np.isnan(values) & ~((values > lo) & (values < hi))
    return np.where(bad, np.nan, values), bad.sum(axis=1).astype(np.int64)


def leave_one_out_median(block: NDArray[np.float64], min_others: int) -> NDArray[np.float64]:
    """Per column, each row's median of the *other* rows' finite values (NaN if fewer than ``min_others``).

    One sort per column instead of one median per row: the others of row i are the sorted column
    without row i's own entry, so their median sits at a known rank, shifted by one past row i's.
    """
    n = block.shape[0]
    finite = np.isfinite(block)
    ordered = np.sort(block, axis=0)  # NaN last
    rank = np.argsort(np.argsort(block, axis=0, kind="stable"), axis=0, kind="stable")
    count = finite.sum(axis=0)[None, :] - finite  # how many others have a value
    own = finite.astype(np.int64)

    def others_at(j: NDArray[np.int64]) -> NDArray[np.float64]:
        """The j-th smallest of row i's others: skip row i's own place in the sorted column."""
        pos = np.clip(j + own * (j >= rank), 0, n - 1)
        return np.take_along_axis(ordered, pos, axis=0)

    low = np.maximum(count - 1, 0) // 2
    high = count // 2
    med = (others_at(low) + others_at(high)) / 2
    return np.where(count >= max(min_others, 1), med, np.nan)


def _against_neighbours(
    locations: Sequence[str],
    values: NDArray[np.float64],
    reference: NDArray[np.bool_],
    exclude: NDArray[np.bool_],
    min_neighbours: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Each reading minus the median of its location's other sensors at the same time, and that median.

    Sensors are first aligned (each one's median difference from the location's median over the
    ``reference`` columns is taken out), so a neighbour's own offset never moves the median when it
    changes rank. ``exclude`` rows (already known to drift) are not anyone's neighbour. NaN where fewer
    than ``min_neighbours`` other sensors have a reading.
    """
    diff = np.full(values.shape, np.nan)
    med_all = np.full(values.shape, np.nan)
    _, inverse = np.unique(np.asarray(locations, dtype=str), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.flatnonzero(np.diff(inverse[order])) + 1
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no judgement, by design
        for rows in np.split(order, bounds):
            n = len(rows)
            if n <= min_neighbours:
                continue
            own = values[rows]
            shift = np.nanmedian(own[:, reference] - np.nanmedian(own[:, reference], axis=0), axis=1)
            aligned = own - shift[:, None]
            med = leave_one_out_median(np.where(exclude[rows][:, None], np.nan, aligned), min_neighbours)
            diff[rows] = aligned - med
            med_all[rows] = med
    return diff, med_all
