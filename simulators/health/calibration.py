"""Seeded groups of co-located sensors, some drifting by a known amount: the ground truth of the calibration role.

Each location holds 4 to 12 sensors measuring one field (an indoor temperature of 15-30 °C or a
relative humidity of 35-85 %), which moves with the day and a slow weather walk. A sensor reads

    field * (1 + gain + drift(t)) + offset + microclimate(t) + noise

with a small fixed gain and offset (a healthy sensor is never perfect), a local AR(1) microclimate
(a door, a sunny wall) and white noise. A chosen share of sensors drifts by ``drift_size`` of the
reading (a gain error, signed), either as a step or as a linear ramp over 3-10 days, starting after a
clean reference period and complete at least 3 days before the end. At most a third (rounded down)
of a location drifts, so its neighbours' median stays honest. Garbage (NaN, 999.9, -40, spikes)
and lost readings are injected too. Everything injected is in :class:`CalibrationTruth`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
START_MS = 1_767_225_600_000  # 2026-01-01T00:00Z
METRICS = ("temperature_c", "humidity_pct")
# Per metric: field base range, diurnal amplitude, offset sd, microclimate sd, noise sd.
_FIELD = {
    "temperature_c": ((15.0, 30.0), 2.0, 0.15, 0.05, 0.05),
    "humidity_pct": ((35.0, 85.0), 6.0, 0.8, 0.3, 0.25),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class CalibrationTruth:
    """What was injected: which sensors drift, how, from when (never shown to the detector)."""

    drifted: NDArray[np.bool_]
    drift_size: NDArray[np.float64]  # signed, relative to the reading (0.02 = +2 %); 0 where healthy
    drift_kind: tuple[str, ...]  # "step", "ramp" or "" per sensor
    drift_start_ms: NDArray[np.float64]  # NaN where healthy
    drift_full_ms: NDArray[np.float64]  # when the full size is reached; NaN where healthy
    gain: NDArray[np.float64]
    offset: NDArray[np.float64]
    garbage_readings: NDArray[np.int64]


@dataclass(frozen=True, slots=True, kw_only=True)
class CalibrationScenario:
    """Hourly readings of co-located sensors and the truth about their drift."""

    seed: int
    days: int
    reference_days: int  # no drift starts before this
    devices: tuple[str, ...]
    locations: tuple[str, ...]  # one per sensor
    metrics: tuple[str, ...]  # one per sensor (a location measures one metric)
    ts_ms: NDArray[np.int64]  # (hours,), shared by all sensors
    values: NDArray[np.float64]  # (sensors, hours); NaN where no reading arrived
    truth: CalibrationTruth

    def injected(self) -> dict[str, Any]:
        """A JSON-able account of what was injected."""
        t = self.truth
        return {
            "sensors": len(self.devices),
            "locations": len(set(self.locations)),
            "days": self.days,
            "drifted": int(t.drifted.sum()),
            "drift_steps": t.drift_kind.count("step"),
            "drift_ramps": t.drift_kind.count("ramp"),
            "drift_size_abs": float(np.abs(t.drift_size[t.drifted]).mean()) if t.drifted.any() else 0.0,
            "garbage_readings": int(t.garbage_readings.sum()),
            "missing_readings": int(np.isnan(self.values).sum()),
        }

    @classmethod
    def generate(
        cls,
        seed: int,
        devices: int = 10_000,
        days: int = 30,
        *,
        drift_share: float = 0.1,
        drift_size: float = 0.02,
        reference_days: int = 7,
        garbage_rate: float = 0.001,
        loss_rate: float = 0.02,
    ) -> CalibrationScenario:
        """About ``devices`` sensors (whole locations of 4-12) over ``days`` days of hourly readings."""
        rng = np.random.default_rng(seed)
        sizes: list[int] = []
        while sum(sizes) < devices:
            sizes.append(int(rng.integers(4, 13)))
        n, hours = sum(sizes), days * 24
        loc = np.repeat(np.arange(len(sizes)), sizes)
        loc_metric = rng.integers(0, len(METRICS), len(sizes))
        metric_idx = loc_metric[loc]
        t = np.arange(hours)
        field = np.empty((len(sizes), hours))
        params = [_FIELD[m] for m in METRICS]
        for k, (base_range, diurnal, *_rest) in enumerate(params):
            rows = loc_metric == k
            base = rng.uniform(*base_range, rows.sum())
            walk = np.cumsum(rng.normal(0.0, diurnal * 0.05, (rows.sum(), hours)), axis=1)
            walk -= np.linspace(0, 1, hours)[None, :] * walk[:, -1:]  # a walk that ends where it began
            phase = rng.uniform(0, 24, rows.sum())
            field[rows] = base[:, None] + diurnal * np.sin(2 * np.pi * (t[None, :] - phase[:, None]) / 24) + walk
        off_sd, micro_sd, noise_sd = (np.array([p[i] for p in params])[metric_idx] for i in (2, 3, 4))
        gain = rng.normal(0.0, 0.002, n)
        offset = rng.normal(0.0, 1.0, n) * off_sd
        micro = _ar1(rng, n, hours, 0.9) * micro_sd[:, None]
        values = field[loc] * (1.0 + gain[:, None]) + offset[:, None] + micro
        values += rng.normal(0.0, 1.0, (n, hours)) * noise_sd[:, None]

        drifted = _choose_drifted(rng, sizes, drift_share)
        sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        size = np.where(drifted, sign * drift_size, 0.0)
        is_step = rng.random(n) < 0.5
        first_h = reference_days * 24 + 24
        ramp_h = np.where(is_step, 0, rng.integers(3 * 24, 10 * 24 + 1, n))
        ramp_h = np.minimum(ramp_h, max(0, hours - 3 * 24 - first_h - 1))  # a short scenario gets short ramps
        # Full size reached at least 3 days before the end: a drift still on its way is not yet a 2 % drift.
        latest = np.maximum(hours - 3 * 24 - ramp_h, first_h + 1)
        start_h = rng.integers(first_h, latest)
        progress = np.clip((t[None, :] - start_h[:, None] + 1) / np.maximum(ramp_h, 1)[:, None], 0.0, 1.0)
        values += field[loc] * size[:, None] * progress

        garbage = rng.random((n, hours)) < garbage_rate
        values[garbage] = rng.choice(np.array([np.nan, 999.9, -40.0, 0.0]), int(garbage.sum()))
        spikes = (rng.random((n, hours)) < garbage_rate) & ~garbage
        values[spikes] *= rng.uniform(1.2, 1.5, int(spikes.sum()))
        values[rng.random((n, hours)) < loss_rate] = np.nan
        names = [f"loc-{i:05d}" for i in range(len(sizes))]
        return cls(
            seed=seed,
            days=days,
            reference_days=reference_days,
            devices=tuple(f"cal-{i:06d}" for i in range(n)),
            locations=tuple(names[i] for i in loc),
            metrics=tuple(METRICS[m] for m in metric_idx),
            ts_ms=(START_MS + t * HOUR_MS).astype(np.int64),
            values=values,
            truth=CalibrationTruth(
                drifted=drifted,
                drift_size=size,
                drift_kind=tuple(("step" if s else "ramp") if d else "" for d, s in zip(drifted, is_step, strict=True)),
                drift_start_ms=np.where(drifted, START_MS + start_h * float(HOUR_MS), np.nan),
                drift_full_ms=np.where(drifted, START_MS + (start_h + ramp_h) * float(HOUR_MS), np.nan),
                gain=gain,
                offset=offset,
                garbage_readings=(garbage | spikes).sum(axis=1),
            ),
        )


def _ar1(rng: np.random.Generator, n: int, hours: int, phi: float) -> NDArray[np.float64]:
    """Unit-variance AR(1) series, one per row (a loop over hours, vectorised over sensors)."""
    out = np.empty((n, hours))
    out[:, 0] = rng.normal(0.0, 1.0, n)
    shocks = rng.normal(0.0, np.sqrt(1 - phi * phi), (n, hours))
    for h in range(1, hours):
        out[:, h] = phi * out[:, h - 1] + shocks[:, h]
    return out


def _choose_drifted(rng: np.random.Generator, sizes: list[int], share: float) -> NDArray[np.bool_]:
    """About ``share`` of all sensors, at most (size - 1) // 3 per location, chosen at random."""
    out = np.zeros(sum(sizes), dtype=np.bool_)
    start = 0
    for size in sizes:
        k = min(rng.binomial(size, share), (size - 1) // 3)
        out[start + rng.choice(size, k, replace=False)] = True
        start += size
    return out
