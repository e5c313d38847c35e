"""Window kinds and how samples are assigned to them, as integer window ids (vectorised).

Every kind reduces to one array: the window id of each sample (-1 for none), non-decreasing over
the samples that are in a window, plus each window's bounds. The aggregate pass then reduces
runs of equal ids with ``numpy.ufunc.reduceat``. Sliding windows are built from tumbling panes of
``gcd(size, step)`` and merged, so each sample is reduced once whatever the overlap.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .errors import SummaryError

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Tumbling:
    """Back-to-back windows ``[origin + k*size, origin + (k+1)*size)``; epoch-aligned by default."""

    size_ms: int
    origin_ms: int = 0

    def __post_init__(self) -> None:
        _positive("size_ms", self.size_ms)


@dataclass(frozen=True, slots=True)
class Sliding:
    """Windows of ``size_ms`` starting every ``step_ms`` (``step_ms <= size_ms``)."""

    size_ms: int
    step_ms: int
    origin_ms: int = 0

    def __post_init__(self) -> None:
        _positive("size_ms", self.size_ms)
        _positive("step_ms", self.step_ms)
        if self.step_ms > self.size_ms:
            raise SummaryError(f"window at step_ms: {self.step_ms} is more than size_ms {self.size_ms}")

    @property
    def pane_ms(self) -> int:
        return math.gcd(self.size_ms, self.step_ms)


@dataclass(frozen=True, slots=True)
class CountWindow:
    """Windows of ``n`` consecutive valid samples (the last one may hold fewer)."""

    n: int

    def __post_init__(self) -> None:
        _positive("n", self.n)


@dataclass(frozen=True, slots=True)
class Condition:
    """Windows are the maximal runs of samples where ``predicate(values)`` is true.

    A NaN/inf sample takes the state of the valid sample before it, so a missing value neither
    opens nor closes a run. Bounds are sample times: first sample of the run to the first sample
    after it (or the run's last sample + 1 ms at the end of the data).
    """

    predicate: Callable[[Floats], Bools]
    label: str = "condition"


@dataclass(frozen=True, slots=True)
class StateSeries:
    """Another series' on/off state, as changes at times (a step function): "while the pump is on"."""

    ts_ms: Ints
    on: Bools

    def at(self, ts_ms: Ints) -> Bools:
        """The state at each time: the last change at or before it; off before the first."""
        idx = np.searchsorted(self.ts_ms, ts_ms, side="right") - 1
        state = np.asarray(self.on, dtype=np.bool_)[np.maximum(idx, 0)]
        return np.where(idx >= 0, state, False)


@dataclass(frozen=True, slots=True)
class WhileState:
    """Windows are the runs of samples taken while ``state`` is on."""

    state: StateSeries
    label: str = "while"


Window = Tumbling | Sliding | CountWindow | Condition | WhileState


def above(threshold: float) -> Condition:
    return Condition(lambda v: v > threshold, f"above {threshold}")


def below(threshold: float) -> Condition:
    return Condition(lambda v: v < threshold, f"below {threshold}")


def _positive(field: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise SummaryError(f"window at {field}: expected an integer > 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class Assignment:
    """Window id per sample (-1: in none) and each window's ``[start, end)`` in ms."""

    wid: Ints
    starts_ms: Ints
    ends_ms: Ints


def _runs(ts: Ints, keys: Ints) -> tuple[Ints, Ints]:
    """Compact ids for a non-decreasing key array, and the first index of each id."""
    change = np.empty(keys.size, dtype=np.bool_)
    change[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=change[1:])
    return np.cumsum(change) - 1, np.flatnonzero(change)


def assign(window: Window, ts: Ints, values: Floats, finite: Bools) -> Assignment:
    """Assign sorted samples to windows (sliding windows are assigned to their panes)."""
    if ts.size == 0:
        empty = np.empty(0, dtype=np.int64)
        return Assignment(empty, empty, empty)
    if isinstance(window, Tumbling | Sliding):
        size = window.size_ms if isinstance(window, Tumbling) else window.pane_ms
        keys = (ts - window.origin_ms) // size
        wid, first = _runs(ts, keys)
        starts = keys[first] * size + window.origin_ms
        return Assignment(wid, starts, starts + size)
    if isinstance(window, CountWindow):
        valid_before: Ints = np.cumsum(finite, dtype=np.int64) - finite.astype(np.int64)  # valid before each
        rank = np.where(finite, valid_before, np.maximum(valid_before - 1, 0))
        wid, first = _runs(ts, rank // window.n)
        last = np.append(first[1:] - 1, ts.size - 1)
        return Assignment(wid, ts[first], ts[last] + 1)
    mask = _condition_mask(window, ts, values, finite)
    opens = mask & ~np.concatenate(([False], mask[:-1]))
    wid = np.where(mask, np.cumsum(opens) - 1, -1)
    first = np.flatnonzero(opens)
    closes = np.flatnonzero(mask & ~np.concatenate((mask[1:], [False])))
    after = np.minimum(closes + 1, ts.size - 1)
    ends = np.where(closes + 1 < ts.size, ts[after], ts[closes] + 1)
    return Assignment(wid, ts[first], ends)


def _condition_mask(window: Condition | WhileState, ts: Ints, values: Floats, finite: Bools) -> Bools:
    if isinstance(window, WhileState):
        return window.state.at(ts)
    result = np.asarray(window.predicate(np.where(finite, values, 0.0)), dtype=np.bool_)
    if result.shape != values.shape:
        raise SummaryError(f"window at predicate: {window.label} gave shape {result.shape}, expected {values.shape}")
    # A non-finite sample carries the state of the last valid one before it (off if none).
    last_valid = np.maximum.accumulate(np.where(finite, np.arange(ts.size), -1))
    return np.where(last_valid >= 0, result[np.maximum(last_valid, 0)], False)
