"""One window's summary: mergeable state (moments, extremes, ends, gaps, sketch) and the functions over it.

Merging is what makes summaries of summaries correct: counts, sums and extremes add up, moments
combine with Chan's parallel formula (never an average of averages), sketches merge bucket by
bucket, and the gap between one window's last sample and the next window's first is counted at
the merge, so 60 merged minutes equal the hour summarised directly.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

from .errors import SummaryError
from .sketch import DDSketch

BASIC_FUNCTIONS = ("min", "max", "avg", "sum", "count", "stddev", "first", "last")
_QUANTILE = re.compile(r"^p(100|[0-9]{1,2})(\.[0-9]+)?$")


def parse_function(name: str, field: str = "functions") -> float | None:
    """None for a basic function, the quantile (0..1) for ``pNN``; anything else raises naming the field."""
    if name in BASIC_FUNCTIONS:
        return None
    match = _QUANTILE.match(name)
    if match and float(name[1:]) <= 100.0:
        return float(name[1:]) / 100.0
    raise SummaryError(f"{field}: unknown function {name!r}; expected one of {', '.join(BASIC_FUNCTIONS)} or pNN")


@dataclass(slots=True, kw_only=True)
class Summary:
    """Window ``[start_ms, end_ms)``; min/max/first/last/mean mean nothing while ``count`` is 0."""

    start_ms: int
    end_ms: int
    count: int = 0
    skipped: int = 0  # NaN/inf values seen in the window and left out
    sum: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean (Welford)
    first: float = math.nan
    last: float = math.nan
    first_ts_ms: int = 0
    last_ts_ms: int = 0
    gaps: int = 0  # intervals between consecutive samples longer than max_gap_ms
    longest_gap_ms: int = 0  # 0 when there is no gap
    max_gap_ms: int | None = None
    sketch: DDSketch | None = None

    def merge(self, later: Summary) -> Summary:
        """This window followed by ``later``; a new summary, neither input changes."""
        if later.max_gap_ms != self.max_gap_ms:
            raise SummaryError(f"merge at max_gap_ms: {self.max_gap_ms} vs {later.max_gap_ms}")
        if (self.sketch is None) != (later.sketch is None):
            raise SummaryError("merge at sketch: one summary has a sketch and the other none")
        bounds = {"start_ms": min(self.start_ms, later.start_ms), "end_ms": max(self.end_ms, later.end_ms)}
        skipped = self.skipped + later.skipped
        if later.count == 0:
            return replace(self, **bounds, skipped=skipped, sketch=_copy(self.sketch))
        if self.count == 0:
            return replace(later, **bounds, skipped=skipped, sketch=_copy(later.sketch))
        if later.first_ts_ms < self.last_ts_ms:
            raise SummaryError(
                f"merge at first_ts_ms: later window starts at {later.first_ts_ms}, before {self.last_ts_ms}"
            )
        n = self.count + later.count
        delta = later.mean - self.mean
        between = later.first_ts_ms - self.last_ts_ms
        gap = self.max_gap_ms is not None and between > self.max_gap_ms
        sketch = _copy(self.sketch)
        if sketch is not None and later.sketch is not None:
            sketch.merge(later.sketch)
        return Summary(
            **bounds,
            count=n,
            skipped=skipped,
            sum=self.sum + later.sum,
            min=min(self.min, later.min),
            max=max(self.max, later.max),
            mean=self.mean + delta * later.count / n,
            m2=self.m2 + later.m2 + delta * delta * self.count * later.count / n,
            first=self.first,
            last=later.last,
            first_ts_ms=self.first_ts_ms,
            last_ts_ms=later.last_ts_ms,
            gaps=self.gaps + later.gaps + int(gap),
            longest_gap_ms=max(self.longest_gap_ms, later.longest_gap_ms, between if gap else 0),
            max_gap_ms=self.max_gap_ms,
            sketch=sketch,
        )

    @property
    def stddev(self) -> float:
        """Population standard deviation (ddof = 0): a one-sample window has 0."""
        return math.sqrt(max(self.m2, 0.0) / self.count) if self.count else math.nan

    def value(self, function: str) -> float | int | None:
        """One function's result; None when the window holds no value (count is 0)."""
        q = parse_function(function)
        if function == "count":
            return self.count
        if self.count == 0:
            return None
        if q is not None:
            if self.sketch is None:
                raise SummaryError(f"functions: {function} needs a sketch; summarise with quantiles on")
            return self.sketch.quantile(q)
        basic: dict[str, float] = {
            "min": self.min,
            "max": self.max,
            "avg": self.mean,
            "sum": self.sum,
            "stddev": self.stddev,
            "first": self.first,
            "last": self.last,
        }
        return basic[function]

    def values(self, functions: tuple[str, ...] | list[str]) -> dict[str, float | int | None]:
        return {f: self.value(f) for f in functions}

    def metadata(self) -> dict[str, int]:
        return {
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "count": self.count,
            "skipped": self.skipped,
            "gaps": self.gaps,
            "longest_gap_ms": self.longest_gap_ms,
        }

    def to_row(self) -> list[Any]:
        """Compact CBOR-native list for storage; a one-value window is just its time and value."""
        if self.count == 1 and self.skipped == 0:
            return [self.first_ts_ms - self.start_ms, self.first]
        sketch = self.sketch.to_dict() if self.sketch is not None else None
        return [
            self.count, self.skipped, self.sum, self.min, self.max, self.mean, self.m2, self.first, self.last,
            self.first_ts_ms - self.start_ms, self.last_ts_ms - self.start_ms, self.gaps, self.longest_gap_ms, sketch,
        ]  # fmt: skip

    @classmethod
    def from_row(
        cls, row: list[Any], start_ms: int, end_ms: int, max_gap_ms: int | None, alpha: float | None
    ) -> Summary:
        """Inverse of :meth:`to_row` given what the table row keeps (bounds, gap setting, sketch alpha)."""
        if len(row) == 2:
            ts, value = start_ms + int(row[0]), float(row[1])
            sketch = None if alpha is None else DDSketch(alpha)
            if sketch is not None:
                sketch.add(value)
            return cls(
                start_ms=start_ms, end_ms=end_ms, count=1, sum=value, min=value, max=value, mean=value,
                first=value, last=value, first_ts_ms=ts, last_ts_ms=ts, max_gap_ms=max_gap_ms, sketch=sketch,
            )  # fmt: skip
        if len(row) != 14:
            raise SummaryError(f"summary row: expected 2 or 14 fields, got {len(row)}")
        count, skipped, total, lo, hi, mean, m2, first, last, first_ts, last_ts, gaps, longest, sketch_data = row
        return cls(
            start_ms=start_ms, end_ms=end_ms, count=count, skipped=skipped, sum=total, min=lo, max=hi, mean=mean,
            m2=m2, first=first, last=last, first_ts_ms=start_ms + first_ts, last_ts_ms=start_ms + last_ts,
            gaps=gaps, longest_gap_ms=longest, max_gap_ms=max_gap_ms,
            sketch=None if sketch_data is None else DDSketch.from_dict(sketch_data),
        )  # fmt: skip


def _copy(sketch: DDSketch | None) -> DDSketch | None:
    return None if sketch is None else sketch.copy()


def merge_all(summaries: list[Summary]) -> Summary:
    """Merge summaries in time order (at least one)."""
    if not summaries:
        raise SummaryError("merge: no summaries to merge")
    out = summaries[0]
    for s in summaries[1:]:
        out = out.merge(s)
    return out
