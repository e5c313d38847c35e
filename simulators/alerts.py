"""Threshold alerts a gateway raises from its devices' samples, as they are taken.

Pure and vectorised: a block of samples goes in, the alerts it crosses into come out. An alert
fires on the sample that *enters* the alarm region (a rising edge per device), not on every
sample inside it, so a device stuck at a low battery raises one alert, not one a minute. The
per-device "in alarm" flags are part of the gateway's saved state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .models import METRICS, SampleBlock


@dataclass(frozen=True, slots=True)
class Threshold:
    kind: str  # the event kind, e.g. "battery.low"
    metric: str
    above: bool  # alarm when the value is above (True) or below (False) the limit
    limit: float
    severity: str


THRESHOLDS: tuple[Threshold, ...] = (
    Threshold("battery.low", "battery_v", above=False, limit=2.8, severity="warning"),
    Threshold("vibration.high", "vibration_g", above=True, limit=2.5, severity="warning"),
)
"""2.8 V is near the knee of a lithium cell's discharge curve (days left, not weeks); 2.5 g is well
above the bursts of normal operation in the simulator's vibration model."""


@dataclass(frozen=True, slots=True)
class Alert:
    device: int  # index into the gateway's device list
    ts_ms: int
    value: float
    threshold: Threshold


class AlertDetector:
    """Rising-edge threshold alerts for all devices of one gateway."""

    def __init__(self, devices: int, thresholds: tuple[Threshold, ...] = THRESHOLDS) -> None:
        self.thresholds = thresholds
        self.in_alarm = np.zeros((len(thresholds), devices), dtype=bool)

    def scan(self, block: SampleBlock) -> list[Alert]:
        """Alerts entered by the samples of ``block`` (rows in time order), oldest first."""
        if block.rows == 0:
            return []
        # Group each device's rows together, in time order, to compare every sample with the one before.
        order = np.lexsort((block.ts_ms, block.device_index))
        device = block.device_index[order].astype(np.intp)
        first = np.ones(len(order), dtype=bool)
        first[1:] = device[1:] != device[:-1]
        last = np.ones(len(order), dtype=bool)
        last[:-1] = first[1:]
        alerts: list[Alert] = []
        for t, threshold in enumerate(self.thresholds):
            values = block.values[METRICS.index(threshold.metric)][order]
            measured = ~np.isnan(values)
            alarm = np.where(measured, values > threshold.limit if threshold.above else values < threshold.limit, False)
            # A missing value keeps the previous state rather than ending the alarm.
            state = _carry_forward(alarm, measured, first, self.in_alarm[t, device[first]])
            before = np.empty_like(state)
            before[1:] = state[:-1]
            before[first] = self.in_alarm[t, device[first]]
            rising = state & ~before & measured
            for i in np.flatnonzero(rising):
                alerts.append(Alert(int(device[i]), int(block.ts_ms[order][i]), float(values[i]), threshold))
            self.in_alarm[t, device[last]] = state[last]
        alerts.sort(key=lambda a: (a.ts_ms, a.device))
        return alerts

    def snapshot(self) -> bytes:
        return np.packbits(self.in_alarm, axis=None).tobytes()

    def restore(self, data: bytes) -> None:
        bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[: self.in_alarm.size]
        if bits.size != self.in_alarm.size:
            raise ValueError(f"AlertDetector.restore: {bits.size} flags for {self.in_alarm.size}")
        self.in_alarm = bits.reshape(self.in_alarm.shape).astype(bool)


def _carry_forward(
    alarm: NDArray[np.bool_], measured: NDArray[np.bool_], first: NDArray[np.bool_], initial: NDArray[np.bool_]
) -> NDArray[np.bool_]:
    """Alarm state per row where an unmeasured row repeats the state of the row before (per device)."""
    state = alarm.copy()
    if measured.all():
        return state
    # Index of the last measured row at or before each row, within the device's group.
    idx = np.where(measured, np.arange(len(alarm)), -1)
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(alarm)), 0))
    np.maximum.accumulate(idx, out=idx)
    known = idx >= group_start
    state[known] = alarm[idx[known]]
    starts = np.flatnonzero(first)
    group_of = np.searchsorted(starts, np.arange(len(alarm)), side="right") - 1
    state[~known] = initial[group_of[~known]]
    return state
