"""Per-device exposure features from a fleet's temperature, humidity and vibration series.

Series are ``[devices, samples]`` arrays. Impossible values (outside physical ranges) become NaN
and are counted, NaN samples are ignored, and a device with no valid sample of a variable gets a
NaN feature (it is left out of that exposure's analysis, not guessed). Everything is a handful of
whole-array numpy operations, so 10,000 devices x 90 days of hourly samples take well under a second.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from pymonitor.actors.environment.errors import EnvironmentDataError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
SeriesArray = npt.NDArray[np.floating]
BoolArray = npt.NDArray[np.bool_]

TEMPERATURE_RANGE_C = (-60.0, 125.0)  # industrial electronics rating; beyond it a sensor is broken, not hot
HUMIDITY_RANGE_PCT = (0.0, 100.0)
VIBRATION_RANGE_MS2 = (0.0, 500.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvironmentData:
    """Fleet data: one row per device; failures as (device index, hour) events over the observed period."""

    sites: tuple[str, ...]
    device_site: IntArray  # [D] index into sites
    temperature_c: SeriesArray  # [D, T]
    humidity_pct: SeriesArray  # [D, T]
    vibration_ms2: SeriesArray  # [D, T] RMS acceleration per sample
    sample_interval_h: float
    failure_device: IntArray  # [F]
    failure_hour: FloatArray  # [F] hours since the start


@dataclass(frozen=True, slots=True, kw_only=True)
class Features:
    hot_share: FloatArray  # [D] share of valid samples above the heat threshold
    mean_humidity_pct: FloatArray  # [D]
    vibration_rms_ms2: FloatArray  # [D]
    failures: IntArray  # [D]
    device_days: FloatArray  # [D] time at risk
    quarantined: Counter[str] = field(default_factory=Counter)


def _valid(series: SeriesArray, bounds: tuple[float, float], name: str, quarantined: Counter[str]) -> SeriesArray:
    with np.errstate(invalid="ignore"):
        impossible = (series < bounds[0]) | (series > bounds[1])
    count = int(impossible.sum())
    if count:
        quarantined[f"{name}_impossible"] += count
        series = np.where(impossible, np.nan, series)
    return series


def _check_shapes(data: EnvironmentData) -> tuple[int, int]:
    if data.temperature_c.ndim != 2:
        raise EnvironmentDataError(f"temperature_c: expected [devices, samples], got shape {data.temperature_c.shape}")
    shape = data.temperature_c.shape
    for name in ("humidity_pct", "vibration_ms2"):
        if getattr(data, name).shape != shape:
            raise EnvironmentDataError(
                f"{name}: expected shape {shape} like temperature_c, got {getattr(data, name).shape}"
            )
    if data.device_site.shape != (shape[0],):
        raise EnvironmentDataError(
            f"device_site: expected one site per device ({shape[0]}), got {data.device_site.shape}"
        )
    if data.device_site.size and (data.device_site.min() < 0 or data.device_site.max() >= len(data.sites)):
        raise EnvironmentDataError(f"device_site: expected indices into {len(data.sites)} sites")
    if not data.sample_interval_h > 0:
        raise EnvironmentDataError(f"sample_interval_h: expected a positive duration, got {data.sample_interval_h}")
    if data.failure_device.shape != data.failure_hour.shape:
        raise EnvironmentDataError("failure_hour: expected one hour per failure_device entry")
    return int(shape[0]), int(shape[1])


def features(data: EnvironmentData, *, heat_threshold_c: float = 40.0) -> Features:
    """Exposure features and failure counts per device; bad samples and unknown failure devices are counted."""
    devices, samples = _check_shapes(data)
    quarantined: Counter[str] = Counter()
    temp = _valid(data.temperature_c, TEMPERATURE_RANGE_C, "temperature", quarantined)
    hum = _valid(data.humidity_pct, HUMIDITY_RANGE_PCT, "humidity", quarantined)
    vib = _valid(data.vibration_ms2, VIBRATION_RANGE_MS2, "vibration", quarantined)
    with np.errstate(invalid="ignore", divide="ignore"):
        valid_t = np.isfinite(temp).sum(axis=1)
        hot_share = (temp > heat_threshold_c).sum(axis=1) / valid_t
        valid_h = np.isfinite(hum)
        mean_hum = np.where(valid_h, hum, 0.0).sum(axis=1, dtype=np.float64) / valid_h.sum(axis=1)
        valid_v = np.isfinite(vib)
        vib0 = np.where(valid_v, vib, 0.0)
        vib_rms = np.sqrt((vib0 * vib0).sum(axis=1, dtype=np.float64) / valid_v.sum(axis=1))
    hours = samples * data.sample_interval_h
    known = (data.failure_device >= 0) & (data.failure_device < devices)
    known &= np.isfinite(data.failure_hour) & (data.failure_hour >= 0) & (data.failure_hour <= hours)
    quarantined["failure_invalid"] += int((~known).sum())
    failures = np.bincount(data.failure_device[known], minlength=devices).astype(np.int64)
    return Features(
        hot_share=np.asarray(hot_share, dtype=np.float64),
        mean_humidity_pct=np.asarray(mean_hum, dtype=np.float64),
        vibration_rms_ms2=np.asarray(vib_rms, dtype=np.float64),
        failures=failures,
        device_days=np.full(devices, hours / 24.0),
        quarantined=+quarantined,
    )
