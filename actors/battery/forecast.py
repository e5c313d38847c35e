"""Discharge rate and depletion date of every device, with an uncertainty band; garbage never forecasts.

How, per device, all devices at once:

1. Quarantine what cannot be a battery reading: NaN, negative, outside the chemistry's plausible
   range (0 V, 65.535 V), a temperature that is no temperature (-127 °C), a timestamp after ``now``.
   Each is counted by reason; none reaches the fit.
2. Turn each voltage into a state of charge by inverting the chemistry's curve at the temperature
   measured with it (a cold night's low voltage is not a lost charge).
3. Keep only readings after the last battery swap / recharge (the charge jumps up by more than
   ``replacement_jump_soc`` and stays up) and inside the last ``window_days``.
4. Fit charge against time with a Huber-weighted least squares (IRLS, MAD scale): the slope is the
   discharge rate, the line's value at ``now`` the charge left.
5. The charge at which the cutoff is reached is taken at a cold temperature of the window (its
   ``cold_quantile``), because a battery dies on its first cold night, not on an average one.
6. ``p50`` days-to-empty = (charge now - charge at cutoff) / rate; the band adds the fit's standard
   errors, the charge a night ``cutoff_temp_sd_c`` colder would cost at the cutoff, and a relative
   ``model_error`` for the rest of the weather to come, which no history knows: ``p10``
   and ``p90`` are the normal 10% and 90% points of that spread (``p10`` clipped at 0).

Too few usable points, too short a span, a silent device or a battery not discharging give a status
saying so, never a date.

Scored by ``bench/fleet_battery.py``: a forecast is *within 15%* when |p50 - true days-to-empty| <=
0.15 * true days-to-empty, over every device whose true days-to-empty at forecast time is between 1
and 30 days (a device without a forecast counts as a miss). Measured on 10,000 devices per seed:
tuning seeds 1-5 57.9-60.9 % (mean 59.4 %), held-out seeds 101-105 58.8-61.4 % (mean 60.3 %; Li-ion
82-84 %, Li-SOCl2 63-66 %, alkaline 28-32 %), median error 1.4-1.5 days, the truth inside p10..p90
for 84-87 %. What limits it: in its last month a slowly drained cell loses ~1 % of charge, 10-20 mV,
about what one cold night or an unknown few-mV cell offset is worth, so which night browns it out is
weather. Without weather and cell offsets the same code scores ~80 % (seed 1).

How much any forecast from the history could get: the bench's ``weather_ceiling_within_15pct`` scores
a forecaster that knows each device's true charge, offset, capacity, climate and today's weather at
forecast time, but not the weather and retries to come (the median of 8 re-drawn futures): 68-72 %
(Li-ion 92-95 %, Li-SOCl2 73-77 %, alkaline 29-39 %). A slow alkaline cell sits for weeks a few mV
above its cutoff, which moves 3 mV per °C, and dies on the first cold snap. Feeding this code the
exact charge, future rate and offset gives about 68 % on seed 1 (exact rate alone +3 points, so
that is all coulomb counting could add; exact offset alone +4).

Tried and not kept (worse than this on most seeds): a Monte Carlo first passage over a weather
model fitted to each device's own temperatures (trend, 24-hour sinusoid, AR(1) daily weather; drain
rescaled for cold and self-discharge) scored 55-61 %. It lost on Li-SOCl2 and alkaline and gained
1-5 points on Li-ion on 8 of 10 seeds. Carrying the temperature trend forward, or rescaling the
rate to the coming temperatures, changed nothing beyond noise. The cold quantile over the last 7 or
14 days instead of the whole window lost 2-5 points.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, fields, replace
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from .chemistry import CHEMISTRIES, CHEMISTRY_NAMES, chemistry
from .errors import BatteryError
from .history import FleetHistory

DAY_MS = 86_400_000
Z90 = 1.2815515655446004  # the standard normal's 90% point
QUARANTINE_REASONS = ("nan", "negative", "out_of_range", "bad_temperature", "future")
MIN_TEMP_C, MAX_TEMP_C = -55.0, 90.0


class ForecastStatus(StrEnum):
    OK = "ok"
    INSUFFICIENT_DATA = "insufficient_data"
    SILENT = "silent"  # no usable reading for silent_after_days
    NOT_DISCHARGING = "not_discharging"
    DEPLETED = "depleted"


STATUSES: tuple[ForecastStatus, ...] = tuple(ForecastStatus)


@dataclass(frozen=True, slots=True, kw_only=True)
class ForecastConfig:
    """How much history a forecast looks at and how it weighs it (defaults tuned on seeds 1-5)."""

    window_days: float = 42.0
    min_points: int = 12
    min_span_days: float = 3.0
    silent_after_days: float = 3.0
    cold_quantile: float = 0.3
    replacement_jump_soc: float = 0.3
    huber_k: float = 1.5
    iterations: int = 6
    model_error: float = 0.1
    cutoff_temp_sd_c: float = 3.0  # how much colder or warmer the fatal night may be than the history's
    min_rate_soc_per_day: float = 1e-5  # slower than this is no discharge (a 270-year battery)
    offset_range_v: float = 0.015
    offset_steps: int = 13  # a 2.5 mV grid; 7 (5 mV) scored ~1 point lower on every seed, tuning and held-out
    offset_prior_v: float = 0.005

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise BatteryError(f"ForecastConfig.{f.name}: expected a positive number, got {value!r}")
        if self.cold_quantile >= 1:
            raise BatteryError(f"ForecastConfig.cold_quantile: expected a quantile below 1, got {self.cold_quantile}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Forecast:
    """One device's forecast; the days are None unless ``status`` is OK or DEPLETED."""

    device: str
    chemistry: str
    status: ForecastStatus
    days_to_empty_p10: float | None
    days_to_empty_p50: float | None
    days_to_empty_p90: float | None
    rate_soc_per_day: float | None  # state of charge (0..1) lost per day
    soc_now: float | None
    points_used: int
    quarantined: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetForecast:
    """Forecasts of a whole fleet as arrays (NaN where a status has no number), plus quarantine counts."""

    now_ms: int
    devices: tuple[str, ...]
    chemistries: tuple[str, ...]
    status: NDArray[np.int8]  # index into STATUSES
    p10: NDArray[np.float64]
    p50: NDArray[np.float64]
    p90: NDArray[np.float64]
    rate: NDArray[np.float64]
    soc_now: NDArray[np.float64]
    points_used: NDArray[np.int64]
    quarantined: NDArray[np.int64]  # per device
    quarantine_reasons: dict[str, int]  # fleet totals by reason

    def __len__(self) -> int:
        return len(self.devices)

    def statuses(self) -> dict[str, int]:
        """How many devices have each status."""
        counts = np.bincount(self.status, minlength=len(STATUSES))
        return {s.value: int(c) for s, c in zip(STATUSES, counts, strict=True)}

    def device(self, i: int) -> Forecast:
        """Row ``i`` as a :class:`Forecast`."""
        status = STATUSES[self.status[i]]

        def num(a: NDArray[np.float64]) -> float | None:
            return None if math.isnan(a[i]) else float(a[i])

        return Forecast(
            device=self.devices[i],
            chemistry=self.chemistries[i],
            status=status,
            days_to_empty_p10=num(self.p10),
            days_to_empty_p50=num(self.p50),
            days_to_empty_p90=num(self.p90),
            rate_soc_per_day=num(self.rate),
            soc_now=num(self.soc_now),
            points_used=int(self.points_used[i]),
            quarantined=int(self.quarantined[i]),
        )


def forecast(
    device: str,
    chemistry_name: str,
    ts_ms: list[int],
    voltage: list[float],
    temp_c: list[float],
    now_ms: int,
    config: ForecastConfig | None = None,
) -> Forecast:
    """One device's forecast from its readings (the fleet computation on one row)."""
    history = FleetHistory.single(device, chemistry_name, ts_ms, voltage, temp_c)
    return forecast_fleet(history, now_ms, config).device(0)


def forecast_fleet(history: FleetHistory, now_ms: int, config: ForecastConfig | None = None) -> FleetForecast:
    """Every device's forecast at ``now_ms`` (ms since the epoch, UTC)."""
    cfg = config or ForecastConfig()
    if history.ts_ms.shape[1] == 0:  # no slots at all: one absent slot keeps the arithmetic uniform
        n = len(history.devices)
        history = replace(
            history,
            ts_ms=np.zeros((n, 1), dtype=np.int64),
            voltage=np.full((n, 1), np.nan),
            temp_c=np.full((n, 1), np.nan),
            present=np.zeros((n, 1), dtype=np.bool_),
        )
    chem_idx = np.array([CHEMISTRY_NAMES.index(c) for c in history.chemistries], dtype=np.int64)
    valid, reasons = _quarantine(history, chem_idx, now_ms)

    # Valid readings first, in time order; the rest after them.
    key = np.where(valid, history.ts_ms, np.iinfo(np.int64).max)
    order = np.argsort(key, axis=1, kind="stable")
    valid = np.take_along_axis(valid, order, axis=1)
    volts = np.take_along_axis(history.voltage, order, axis=1)
    temp = np.take_along_axis(history.temp_c, order, axis=1)
    x = (np.take_along_axis(history.ts_ms, order, axis=1) - now_ms) / DAY_MS  # days before now, <= 0
    soc = _soc(chem_idx, volts, temp, valid)

    use = valid & (np.arange(valid.shape[1])[None, :] >= _after_replacement(soc, cfg.replacement_jump_soc)[:, None])
    use &= x >= -cfg.window_days
    offset = _cell_offset(chem_idx, volts, temp, x, use, cfg)
    soc = _soc(chem_idx, volts - offset[:, None], temp, valid)
    a, b, se_a, se_b, _ = _robust_line(x, np.where(use, soc, 0.0), use, cfg)
    n_used = use.sum(axis=1)
    x_use = np.where(use, x, np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # All-NaN rows (nothing usable) give NaN here and are marked INSUFFICIENT_DATA below.
        span = np.nanmax(x_use, axis=1) - np.nanmin(x_use, axis=1)
        newest = np.nanmax(np.where(valid, x, np.nan), axis=1)
        cold = np.nanquantile(np.where(use, temp, np.nan), cfg.cold_quantile, axis=1)
    # The cell browns out when its own voltage (curve + its offset) reaches the cutoff.
    soc_cut = _soc(chem_idx, _cutoffs(chem_idx) - offset, cold, np.isfinite(cold))
    # The night that kills it may be colder or warmer than the history's: that spread, in charge.
    cut_sd = np.abs(
        _soc(chem_idx, _cutoffs(chem_idx) - offset, cold - cfg.cutoff_temp_sd_c, np.isfinite(cold)) - soc_cut
    )
    rate = -b
    enough = (n_used >= cfg.min_points) & (span >= cfg.min_span_days)
    with np.errstate(all="ignore"):
        p50 = np.maximum((a - soc_cut) / rate, 0.0)
        sd = np.sqrt(((se_a**2 + cut_sd**2) / rate**2) + (p50 * se_b / rate) ** 2 + (cfg.model_error * p50) ** 2)
    status = np.select(
        [
            ~enough,
            -newest > cfg.silent_after_days,
            ~(rate > cfg.min_rate_soc_per_day) | ~(rate > 2 * se_b),
            a <= soc_cut,
        ],
        [
            STATUSES.index(s)
            for s in (
                ForecastStatus.INSUFFICIENT_DATA,
                ForecastStatus.SILENT,
                ForecastStatus.NOT_DISCHARGING,
                ForecastStatus.DEPLETED,
            )
        ],
        STATUSES.index(ForecastStatus.OK),
    ).astype(np.int8)
    has_days = (status == STATUSES.index(ForecastStatus.OK)) | (status == STATUSES.index(ForecastStatus.DEPLETED))
    has_fit = has_days | (status == STATUSES.index(ForecastStatus.NOT_DISCHARGING))
    return FleetForecast(
        now_ms=now_ms,
        devices=history.devices,
        chemistries=history.chemistries,
        status=status,
        p10=np.where(has_days, np.maximum(p50 - Z90 * sd, 0.0), np.nan),
        p50=np.where(has_days, p50, np.nan),
        p90=np.where(has_days, p50 + Z90 * sd, np.nan),
        rate=np.where(has_fit, rate, np.nan),
        soc_now=np.where(has_fit, a, np.nan),
        points_used=n_used.astype(np.int64),
        quarantined=sum(reasons.values(), np.zeros(len(history.devices), dtype=np.int64)),
        quarantine_reasons={k: int(v.sum()) for k, v in reasons.items()},
    )


def _cutoffs(chem_idx: NDArray[np.int64]) -> NDArray[np.float64]:
    return np.array([CHEMISTRIES[c].cutoff_v for c in CHEMISTRY_NAMES])[chem_idx]


def _quarantine(
    history: FleetHistory, chem_idx: NDArray[np.int64], now_ms: int
) -> tuple[NDArray[np.bool_], dict[str, NDArray[np.int64]]]:
    """Readings fit to use, and per device how many arrived but were set aside, by reason (first reason wins)."""
    lo = np.array([CHEMISTRIES[c].min_valid_v for c in CHEMISTRY_NAMES])[chem_idx][:, None]
    hi = np.array([CHEMISTRIES[c].max_valid_v for c in CHEMISTRY_NAMES])[chem_idx][:, None]
    v, t, present = history.voltage, history.temp_c, history.present
    with np.errstate(invalid="ignore"):
        bad = {
            "nan": ~np.isfinite(v),
            "negative": v < 0,
            "out_of_range": (v < lo) | (v > hi),
            "bad_temperature": ~((t >= MIN_TEMP_C) & (t <= MAX_TEMP_C)),
            "future": history.ts_ms > now_ms,
        }
    left = present.copy()
    counts: dict[str, NDArray[np.int64]] = {}
    for reason in QUARANTINE_REASONS:
        hit = left & bad[reason]
        counts[reason] = hit.sum(axis=1)
        left &= ~hit
    return left, counts


def _soc(
    chem_idx: NDArray[np.int64], voltage: NDArray[np.float64], temp_c: NDArray[np.float64], valid: NDArray[np.bool_]
) -> NDArray[np.float64]:
    """State of charge of each valid reading per its device's chemistry (NaN elsewhere)."""
    out = np.full(voltage.shape, np.nan)
    for k, name in enumerate(CHEMISTRY_NAMES):
        rows = (chem_idx == k)[(slice(None),) + (None,) * (voltage.ndim - 1)] & valid
        out[rows] = chemistry(name).soc(voltage[rows], temp_c[rows])
    return out


def _voltage(
    chem_idx: NDArray[np.int64], soc: NDArray[np.float64], temp_c: NDArray[np.float64], valid: NDArray[np.bool_]
) -> NDArray[np.float64]:
    """Curve voltage of each valid (charge, temperature) per its device's chemistry (NaN elsewhere)."""
    out = np.full(soc.shape, np.nan)
    for k, name in enumerate(CHEMISTRY_NAMES):
        rows = (chem_idx == k)[:, None] & valid
        out[rows] = chemistry(name).voltage(soc[rows], temp_c[rows])
    return out


def _after_replacement(soc: NDArray[np.float64], jump: float) -> NDArray[np.int64]:
    """Per row, the index of the first reading after the last sustained upward jump of charge (0 if none).

    Sustained: the two readings after the jump are both ``jump`` above the one before it, so a single
    high glitch does not throw the history away.
    """
    if soc.shape[1] < 3:
        return np.zeros(soc.shape[0], dtype=np.int64)
    prev = soc[:, :-2]
    with np.errstate(invalid="ignore"):
        up = (soc[:, 1:-1] - prev > jump) & (soc[:, 2:] - prev > jump)
    m = up.shape[1]
    last = m - 1 - np.argmax(up[:, ::-1], axis=1)
    return np.where(up.any(axis=1), last + 1, 0).astype(np.int64)


def _cell_offset(
    chem_idx: NDArray[np.int64],
    volts: NDArray[np.float64],
    temp: NDArray[np.float64],
    x: NDArray[np.float64],
    use: NDArray[np.bool_],
    cfg: ForecastConfig,
) -> NDArray[np.float64]:
    """Each cell's voltage offset from its chemistry's curve, where the history can tell (a profile over a grid).

    On a straight stretch of the curve an offset and a charge level look the same; where the history
    bends over a knee they do not. Each candidate offset is scored by how well a straight charge line
    fits the readings shifted by it (weights of the robust fit at offset 0), plus a Gaussian prior of
    ``offset_prior_v``, so a history without a bend keeps the offset near 0.
    """
    grid = (
        np.linspace(-cfg.offset_range_v, cfg.offset_range_v, cfg.offset_steps) if cfg.offset_steps > 1 else np.zeros(1)
    )
    *_, w = _robust_line(x, np.where(use, _soc(chem_idx, volts, temp, use), 0.0), use, cfg)
    m = np.maximum(w.sum(axis=1), 1.0)
    score = np.empty((len(grid), volts.shape[0]))
    for k, delta in enumerate(grid):
        y = np.where(use, _soc(chem_idx, volts - delta, temp, use), 0.0)
        a, b = _weighted_line(x, y, w)
        # Judge the fit in volts: in charge units a flat stretch of the curve would look noisier than a steep one.
        fitted = _voltage(chem_idx, a[:, None] + b[:, None] * x, temp, use) + delta
        rss = (w * np.where(use, volts - fitted, 0.0) ** 2).sum(axis=1)
        score[k] = m * np.log(np.maximum(rss / m, 1e-18)) + (delta / cfg.offset_prior_v) ** 2
    return np.asarray(grid[np.argmin(score, axis=0)], dtype=np.float64)


def _weighted_line(
    x: NDArray[np.float64], y: NDArray[np.float64], w: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Intercept and slope of the weighted least-squares line per row (NaN where the weights leave none)."""
    with np.errstate(all="ignore"):
        sw = w.sum(axis=1)
        xbar = (w * x).sum(axis=1) / sw
        ybar = (w * y).sum(axis=1) / sw
        dx = x - xbar[:, None]
        b = (w * dx * (y - ybar[:, None])).sum(axis=1) / (w * dx * dx).sum(axis=1)
        return ybar - b * xbar, b


def _robust_line(
    x: NDArray[np.float64], y: NDArray[np.float64], use: NDArray[np.bool_], cfg: ForecastConfig
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Huber IRLS of y = a + b x per row over ``use``; returns a, b, their standard errors and the final weights."""
    xz = np.where(use, x, 0.0)
    w = use.astype(np.float64)
    a = b = s = np.zeros(x.shape[0])
    xbar = sxx = sw = np.zeros(x.shape[0])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rows with nothing usable: NaN, judged by the caller
        for _ in range(cfg.iterations):
            sw = w.sum(axis=1)
            xbar = (w * xz).sum(axis=1) / sw
            ybar = (w * y).sum(axis=1) / sw
            dx = xz - xbar[:, None]
            sxx = (w * dx * dx).sum(axis=1)
            b = (w * dx * (y - ybar[:, None])).sum(axis=1) / sxx
            a = ybar - b * xbar
            r = np.where(use, y - a[:, None] - b[:, None] * xz, np.nan)
            s = np.maximum(1.4826 * np.nanmedian(np.abs(r), axis=1), 1e-6)
            w = np.where(use, np.minimum(1.0, cfg.huber_k * s[:, None] / np.abs(np.nan_to_num(r))), 0.0)
        se_b = s / np.sqrt(sxx)
        se_a = s * np.sqrt(1.0 / sw + xbar**2 / sxx)
    return a, b, se_a, se_b, w
