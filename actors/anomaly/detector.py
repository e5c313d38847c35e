"""Streaming anomaly scores, one value at a time, with bounded state per series and no look-ahead.

:class:`StreamDetector` is ours: the larger of two views of how unusual the latest value is,
(a) a Gaussian tail probability of a short-term mean against a long history (the idea behind
NAB's windowedGaussian and HTM's anomaly likelihood) and (b) context novelty (the idea behind
contextOSE): how rarely the recent pattern of quantised values has been seen. A fresh alarm is
passed on at full strength; the echoes that follow it are damped, because NAB rewards only the
first detection in a window and charges for every later one outside it.

:class:`WindowedGaussian` is NAB's windowedGaussian baseline, reproduced for comparison.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True, slots=True)
class DetectorParams:
    """Knobs of :class:`StreamDetector`; the defaults were tuned on half of the NAB subset (docs/anomaly.md)."""

    learning_points: int = 750  # scores are 0 while the detector learns (NAB's probation is <= 750 rows)
    short_points: int = 5  # the short-term mean compared against the history
    history_alpha: float = 0.005  # weight of a new value in the long-term mean and variance
    bins: int = 4  # quantisation levels over the range seen so far
    context: int = 2  # quantised values that make one pattern
    novelty_weight: float = 10.0  # a never-seen pattern counts like this many standard deviations
    echo_decay: float = 0.999  # per point, how fast the memory of the last alarm fades
    echo_damp: float = 0.3  # scores below the remembered alarm are multiplied by this


class StreamDetector:
    """Our detector for one series: ``update(value) -> score in [0, 1]``; O(bins ** context) state at most."""

    def __init__(self, params: DetectorParams | None = None) -> None:
        self.params = p = params or DetectorParams()
        self._seen = 0
        self._short: deque[float] = deque(maxlen=p.short_points)
        self._short_sum = 0.0
        self._mean = 0.0
        self._var = 0.0
        self._lo = math.inf
        self._hi = -math.inf
        self._recent: deque[int] = deque(maxlen=p.context)
        self._patterns: dict[tuple[int, ...], int] = {}
        self._peak = 0.0

    def update(self, value: float) -> float:
        p = self.params
        self._seen += 1
        short = self._short
        if len(short) == short.maxlen:
            self._short_sum -= short[0]
        short.append(value)
        self._short_sum += value
        # (a) tail probability of the short-term mean under the long-term Gaussian
        if self._seen == 1:
            self._mean = value
        std = math.sqrt(self._var) if self._var > 0 else 1e-6 * (abs(self._mean) + 1.0)
        z = (self._short_sum / len(short) - self._mean) / std * math.sqrt(len(short))
        delta = value - self._mean
        alpha = max(p.history_alpha, 1.0 / self._seen)
        self._mean += alpha * delta
        self._var = (1.0 - alpha) * (self._var + alpha * delta * delta)
        # (b) novelty of the recent pattern of quantised values; a new extreme is novel by itself
        novel = 0.0
        if value < self._lo or value > self._hi:
            novel = 1.0 if self._seen > 1 else 0.0
            self._lo, self._hi = min(self._lo, value), max(self._hi, value)
        span = self._hi - self._lo
        level = min(int((value - self._lo) / span * p.bins), p.bins - 1) if span > 0 else 0
        self._recent.append(level)
        pattern = tuple(self._recent)
        count = self._patterns.get(pattern, 0)
        self._patterns[pattern] = count + 1
        if count == 0:
            novel = 1.0
        # z / (z + 3) ranks like the tail probability but never rounds to exactly 1.0, so the
        # strongest deviations stay apart instead of tying at the top
        surprise = abs(z) + novel * p.novelty_weight
        score = surprise / (surprise + 3.0)
        if self._seen <= p.learning_points:
            return 0.0
        # echoes of an alarm are damped, so the first detection stands out
        peak = self._peak * p.echo_decay
        if score < peak:
            score *= p.echo_damp
        self._peak = max(peak, score)
        return score


class WindowedGaussian:
    """NAB's windowedGaussian: 1 - the two-sided Gaussian tail probability of the value, over a sliding window.

    As in NAB: a window of the last 6,400 values that, once full, slides by 100 values at a time;
    the mean and standard deviation are those of the window before the current value joins it.
    """

    def __init__(self, window: int = 6400, step: int = 100) -> None:
        self.window = window
        self.step = step
        self._data: list[float] = []
        self._buffer: list[float] = []
        self._mean = 0.0
        self._std = 1.0
        self._m2 = 0.0

    def update(self, value: float) -> float:
        score = 0.0
        if self._data:
            score = 1.0 - 0.5 * math.erfc(abs(value - self._mean) / self._std / SQRT2)
        if len(self._data) < self.window:
            self._data.append(value)  # Welford: the same mean and std numpy would give, without O(n) a row
            delta = value - self._mean if len(self._data) > 1 else value
            if len(self._data) == 1:
                self._mean, self._m2 = value, 0.0
            else:
                self._mean += delta / len(self._data)
                self._m2 += delta * (value - self._mean)
            self._std = math.sqrt(self._m2 / len(self._data)) or 1e-6
        else:
            self._buffer.append(value)
            if len(self._buffer) == self.step:
                self._data = self._data[self.step :] + self._buffer
                self._buffer = []
                window = np.asarray(self._data)
                self._mean = float(window.mean())
                self._std = float(window.std()) or 1e-6
        return score
