"""Calibration history per device and the recalibration schedule that follows from it.

The history is a log of events (drift detected, recalibrated); it is immutable, so the actor keeps
the latest log and the cores stay pure. A device is due ``interval_days`` after its last
recalibration (or installation); a drift detected since then pulls the date in: due within
``drift_urgency_days``, sooner in proportion when the drift is larger than the target.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from .drift import DriftDetected
from .errors import CalibrationError

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Recalibrated:
    """Event: ``device`` was recalibrated at ``ts_ms``; ``offset`` and ``gain`` are the corrections applied."""

    device: str
    ts_ms: int
    offset: float = 0.0
    gain: float = 1.0


CalibrationEvent = DriftDetected | Recalibrated


@dataclass(frozen=True, slots=True, kw_only=True)
class CalibrationLog:
    """Every calibration event, oldest first per device."""

    events: tuple[CalibrationEvent, ...] = ()

    def record(self, *events: CalibrationEvent) -> CalibrationLog:
        """A new log with ``events`` added (kept in time order)."""
        return CalibrationLog(events=tuple(sorted((*self.events, *events), key=lambda e: e.ts_ms)))

    def of(self, device: str) -> tuple[CalibrationEvent, ...]:
        """The events of one device, oldest first."""
        return tuple(e for e in self.events if e.device == device)

    def last_recalibration(self, device: str) -> Recalibrated | None:
        found = [e for e in self.of(device) if isinstance(e, Recalibrated)]
        return found[-1] if found else None

    def open_drift(self, device: str) -> DriftDetected | None:
        """The largest drift detected since the device's last recalibration, if any."""
        last = self.last_recalibration(device)
        since = last.ts_ms if last else -math.inf
        found = [e for e in self.of(device) if isinstance(e, DriftDetected) and e.ts_ms >= since]
        return max(found, key=lambda e: abs(e.deviation)) if found else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleConfig:
    interval_days: float = 365.0
    drift_urgency_days: float = 7.0
    target: float = 0.02  # a drift of this size gets drift_urgency_days; twice as large, half as long

    def __post_init__(self) -> None:
        for name in ("interval_days", "drift_urgency_days", "target"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise CalibrationError(f"ScheduleConfig.{name}: expected a positive number, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class DueCalibration:
    device: str
    due_ms: int
    reason: Literal["interval", "drift"]
    deviation: float | None  # the open drift, if that is the reason
    overdue: bool


def recalibration_schedule(
    log: CalibrationLog,
    installed_ms: Mapping[str, int],
    now_ms: int,
    config: ScheduleConfig | None = None,
    *,
    devices: Iterable[str] | None = None,
) -> list[DueCalibration]:
    """When each device (all of ``installed_ms`` unless ``devices`` is given) is due, soonest first."""
    cfg = config or ScheduleConfig()
    out = []
    for device in devices if devices is not None else installed_ms:
        if device not in installed_ms:
            raise CalibrationError(f"installed_ms: no installation time for device {device!r}")
        last = log.last_recalibration(device)
        base = last.ts_ms if last else installed_ms[device]
        due_ms = base + round(cfg.interval_days * DAY_MS)
        reason: Literal["interval", "drift"] = "interval"
        deviation = None
        drift = log.open_drift(device)
        if drift is not None:
            urgency = cfg.drift_urgency_days * min(1.0, cfg.target / max(abs(drift.deviation), 1e-12))
            by = drift.ts_ms + round(urgency * DAY_MS)
            if by < due_ms:
                due_ms, reason, deviation = by, "drift", drift.deviation
        out.append(
            DueCalibration(device=device, due_ms=due_ms, reason=reason, deviation=deviation, overdue=due_ms <= now_ms)
        )
    out.sort(key=lambda d: (d.due_ms, d.device))
    return out
