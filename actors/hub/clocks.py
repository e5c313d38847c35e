"""Device clock reconciliation: estimate each device's clock offset and drift, correct its timestamps.

Pure core. Each observation pairs a device timestamp with a trusted arrival time (a gateway or
hub clock synchronised by NTP) for a sample sent live. The lag ``arrival - device_ts`` is the
clock error plus a transport delay that is never negative; the minimum lag over a stretch of time
is therefore the best view of the clock error (NTP's minimum filter). The estimator keeps one
minimum per bucket of device time and fits a line through the recent bucket minima, so both
offset and drift (up to hundreds of ppm) are followed with a few numbers of state per device.

A reboot that resets the device clock shows up as a new ``epoch`` (the node's session) or as a
lag that jumps by more than ``jump_ms`` from the line; either starts the device's estimate over.
Corrected timestamps are ``device_ts + correction(device_ts)``; the original is always kept.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

BUCKET_MS = 10 * 60 * 1000
"""Device time per minimum: long enough to contain a low-delay sample, short against drift."""
BUCKETS_KEPT = 36
"""Six hours of bucket minima: enough to see 1 ppm of drift, little enough to follow a changing rate."""
JUMP_MS = 5_000
"""A lag this far below the line (the clock jumped) starts the estimate over. Above it is just delay."""
MIN_SPAN_FOR_DRIFT_MS = 30 * 60 * 1000


@dataclass
class DeviceClock:
    """What is known about one device's clock: recent per-bucket minimum lags."""

    epoch: int
    minima: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=BUCKETS_KEPT))  # (bucket start, lag)
    slope: float = 0.0  # lag change per ms of device time (drift, negated)
    intercept: float = 0.0  # lag at device time 0 (offset, negated), relative to anchor
    anchor_ms: int = 0
    resets: int = 0
    above: int = 0  # consecutive closed buckets far above the line

    def correction(self, device_ts: int) -> float:
        """ms to add to a device timestamp to get the reference time."""
        return self.intercept + self.slope * (device_ts - self.anchor_ms)

    def observe(self, device_ts: int, lag: int, jump_ms: int) -> None:
        bucket = device_ts - device_ts % BUCKET_MS
        if self.minima and self.minima[-1][0] == bucket:
            if lag >= self.minima[-1][1]:
                return
            self.minima[-1] = (bucket, lag)
        elif self.minima and bucket < self.minima[-1][0]:
            return  # a late sample from an older bucket: its minimum was already decided
        else:
            self._close_bucket(jump_ms)
            self.minima.append((bucket, lag))
        self._fit()

    def _close_bucket(self, jump_ms: int) -> None:
        """A bucket whose best lag sits far above the line is a clock stepped back, if the next one agrees."""
        if len(self.minima) < 2:
            return
        bucket, lag = self.minima[-1]
        if lag - self.correction(bucket) <= jump_ms:
            self.above = 0
            return
        self.above += 1
        if self.above >= 2:  # two buckets in a row: not a burst of delay, the clock moved
            recent = list(self.minima)[-2:]
            self.minima.clear()
            self.minima.extend(recent)
            self.above = 0
            self.resets += 1

    def _fit(self) -> None:
        points = list(self.minima)
        self.anchor_ms = points[-1][0]
        if len(points) < 3 or points[-1][0] - points[0][0] < MIN_SPAN_FOR_DRIFT_MS:
            self.slope = 0.0
            self.intercept = float(min(lag for _, lag in points))
            return
        xs = [x - self.anchor_ms for x, _ in points]
        ys = [float(y) for _, y in points]
        n = len(xs)
        mean_x, mean_y = sum(xs) / n, sum(ys) / n
        var = sum((x - mean_x) ** 2 for x in xs)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var
        # Lower envelope: shift the line down so no minimum lies below it.
        intercept = min(y - slope * x for x, y in zip(xs, ys, strict=True))
        self.slope, self.intercept = slope, intercept


@dataclass
class ClockReconciler:
    """Per-device clock estimates for a fleet; feed live observations, correct any timestamp."""

    jump_ms: int = JUMP_MS
    devices: dict[str, DeviceClock] = field(default_factory=dict)

    def observe(self, device: str, device_ts: int, arrival_ts: int, epoch: int = 0) -> None:
        """A live sample of ``device`` stamped ``device_ts`` arrived at trusted time ``arrival_ts``.

        ``epoch`` changes when the device restarts (its sample sequence started over).
        """
        lag = arrival_ts - device_ts
        clock = self.devices.get(device)
        stepped_forward = clock is not None and bool(clock.minima) and lag < clock.correction(device_ts) - self.jump_ms
        if clock is None or clock.epoch != epoch or stepped_forward:
            resets = 0 if clock is None else clock.resets + 1
            clock = DeviceClock(epoch=epoch, resets=resets)
            self.devices[device] = clock
        clock.observe(device_ts, lag, self.jump_ms)

    def correct(self, device: str, device_ts: int) -> int:
        """The best estimate of when ``device_ts`` happened on the reference clock (unchanged if unknown)."""
        clock = self.devices.get(device)
        return device_ts if clock is None or not clock.minima else round(device_ts + clock.correction(device_ts))
