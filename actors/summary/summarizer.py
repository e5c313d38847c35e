"""The summarizer: reading batches in, closed tumbling windows out as ``summary.batch.v1`` frames.

Pure (no pykka, no clock reads): the caller passes its ``now_ms``. Per (device, metric) the core
keeps the open windows; a window ``[s, s + w)`` closes once the watermark passes ``s + w``. The
watermark is the latest sample time seen (never ahead of ``now_ms``, so one device with a clock
in the future cannot close everyone's windows) minus ``lateness_ms``. A sample for a window that
already closed is **late**: counted (``counters.late`` and the next batch's ``late``), not added,
since the window it belongs to is already on its way.

Each batch's rows are summarised in one vectorised pass (:func:`summarise` over a synthetic
timeline that puts every (device, window) group in its own window), then merged into the open
state with :meth:`Summary.merge` (moments, not averages). State is bounded by
``max_open_windows``: past it the oldest windows close early (counted in ``forced``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from pymonitor.messages import ReadingBatch
from pymonitor.messages.columns import quantize
from pymonitor.messages.summaries import STAT_COLUMNS, SummaryBatch, pack_sketch, sketch_bases

from .aggregate import summarise
from .errors import SummaryError
from .sketch import DEFAULT_ALPHA, DDSketch
from .summary import Summary
from .windows import Tumbling

HOUR_MS = 3_600_000
DEFAULT_WINDOW_MS = HOUR_MS  # a remote site: an hour of a series in one row
DEFAULT_LATENESS_MS = 300_000
DEFAULT_MAX_OPEN_WINDOWS = 200_000

SeriesKey = tuple[str, str, int]  # device, metric, window start


@dataclass
class SummarizerCounters:
    samples: int = 0  # measured values folded into a window
    late: int = 0  # measured values whose window had already closed: counted, not added
    windows_closed: int = 0
    forced: int = 0  # windows closed early because max_open_windows was reached
    disordered: int = 0  # merges where a batch's samples interleave with a window's earlier ones


@dataclass
class Summarizer:
    """Open windows of one node's series; see the module docstring."""

    node: str
    session: int = 0
    window_ms: int = DEFAULT_WINDOW_MS
    lateness_ms: int = DEFAULT_LATENESS_MS
    alpha: float = DEFAULT_ALPHA
    max_open_windows: int = DEFAULT_MAX_OPEN_WINDOWS
    min_rows: int = 1  # closed windows held back until this many (fewer, larger frames compress better)
    include: frozenset[str] | None = None  # the metrics this summarizer folds (None: all but ``exclude``)
    exclude: frozenset[str] = frozenset()
    unsketched: frozenset[str] = frozenset()  # metrics whose windows carry no quantile sketch
    seq: int = 0  # of the last batch made
    watermark_ms: int | None = None
    counters: SummarizerCounters = field(default_factory=SummarizerCounters)
    _open: dict[SeriesKey, Summary] = field(default_factory=dict)
    _closed: list[tuple[SeriesKey, Summary]] = field(default_factory=list)
    _scales: dict[str, float | None] = field(default_factory=dict)
    _late_unreported: int = 0

    def __post_init__(self) -> None:
        if self.window_ms <= 0:
            raise SummaryError(f"window_ms: expected > 0, got {self.window_ms}")
        if self.lateness_ms < 0:
            raise SummaryError(f"lateness_ms: expected >= 0, got {self.lateness_ms}")
        if self.max_open_windows < 1:
            raise SummaryError(f"max_open_windows: expected >= 1, got {self.max_open_windows}")
        DDSketch(self.alpha)  # validates alpha

    @property
    def open_windows(self) -> int:
        return len(self._open)

    def _closed_before(self, start_ms: int) -> bool:
        return self.watermark_ms is not None and start_ms + self.window_ms <= self.watermark_ms

    def add(self, batch: ReadingBatch, now_ms: int) -> SummaryBatch | None:
        """Fold a batch in; the windows this closes, as one frame (None when none closed)."""
        cols = batch.columns()
        if batch.rows:
            ts = np.asarray(cols.ts_ms, dtype=np.int64)
            dev = np.asarray(cols.device_index, dtype=np.int64)
            for m, metric in enumerate(batch.metrics):
                if metric in self.exclude or (self.include is not None and metric not in self.include):
                    continue
                scale = batch.value_scale[m] if batch.value_scale else None
                self._scales[metric] = scale if self._scales.get(metric, scale) == scale else None
                self._fold(batch.devices, metric, dev, ts, np.asarray(cols.values[m], dtype=np.float64))
            self._advance(min(int(ts.max()), now_ms) - self.lateness_ms)
        return self._emit()

    def tick(self, now_ms: int) -> SummaryBatch | None:
        """Close what is due by ``now_ms`` when no sample has moved the watermark (idle series)."""
        self._advance(now_ms - self.lateness_ms - self.window_ms)
        return self._emit()

    def flush(self) -> SummaryBatch | None:
        """Close every open window now (shutdown)."""
        self._close(list(self._open))
        return self._emit(everything=True)

    def _fold(self, devices: list[str], metric: str, dev: np.ndarray, ts: np.ndarray, values: np.ndarray) -> None:
        ok = ~np.isnan(values)
        w = self.window_ms
        start = ts - ts % w
        if self.watermark_ms is not None:
            late = ok & (start + w <= self.watermark_ms)
            n_late = int(np.count_nonzero(late))
            if n_late:
                self.counters.late += n_late
                self._late_unreported += n_late
                ok &= ~late
        if not ok.any():
            return
        dev, ts, start, values = dev[ok], ts[ok], start[ok], values[ok]
        group_keys, group = np.unique(np.stack([dev, start]), axis=1, return_inverse=True)
        group = group.ravel()
        order = np.lexsort((ts, group))
        # A synthetic timeline: group g occupies [g*w, (g+1)*w), its samples at their offset in the window.
        fake_ts = group[order] * w + (ts[order] - start[order])
        quantiles = metric not in self.unsketched
        parts = summarise(fake_ts, values[order], Tumbling(w), quantiles=quantiles, alpha=self.alpha)
        self.counters.samples += int(ok.sum())
        for part in parts:
            if part.count == 0:
                continue
            g = part.start_ms // w
            d, s = int(group_keys[0, g]), int(group_keys[1, g])
            shift = s - g * w
            part = replace(
                part, start_ms=s, end_ms=s + w, first_ts_ms=part.first_ts_ms + shift, last_ts_ms=part.last_ts_ms + shift
            )
            key = (devices[d], metric, s)
            held = self._open.get(key)
            self._open[key] = part if held is None else self._combine(held, part)
        if len(self._open) > self.max_open_windows:
            oldest = sorted(self._open, key=lambda k: k[2])[: len(self._open) - self.max_open_windows]
            self.counters.forced += len(oldest)
            self._close(oldest)

    def _combine(self, held: Summary, part: Summary) -> Summary:
        if part.first_ts_ms >= held.last_ts_ms:
            return held.merge(part)
        if held.first_ts_ms >= part.last_ts_ms:
            return part.merge(held)
        # Interleaved (a backfill replay): moments and sketches still merge exactly; first and last by time.
        self.counters.disordered += 1
        merged = held.merge(
            replace(part, first_ts_ms=held.last_ts_ms, last_ts_ms=max(part.last_ts_ms, held.last_ts_ms))
        )
        first = held if held.first_ts_ms <= part.first_ts_ms else part
        last = held if held.last_ts_ms >= part.last_ts_ms else part
        return replace(
            merged, first=first.first, first_ts_ms=first.first_ts_ms, last=last.last, last_ts_ms=last.last_ts_ms
        )

    def _advance(self, watermark_ms: int) -> None:
        if self.watermark_ms is not None and watermark_ms <= self.watermark_ms:
            return
        self.watermark_ms = watermark_ms
        self._close([k for k in self._open if k[2] + self.window_ms <= watermark_ms])

    def _close(self, keys: list[SeriesKey]) -> None:
        for key in keys:
            self._closed.append((key, self._open.pop(key)))
        self.counters.windows_closed += len(keys)

    def _emit(self, everything: bool = False) -> SummaryBatch | None:
        if not self._closed and not self._late_unreported:
            return None
        if self._closed and len(self._closed) < self.min_rows and not everything:
            return None
        closed, self._closed = sorted(self._closed, key=lambda item: item[0]), []
        late, self._late_unreported = self._late_unreported, 0
        self.seq += 1
        return to_batch(self.node, self.session, self.seq, self.window_ms, self.alpha, closed, self._scales, late)


def to_batch(
    node: str,
    session: int,
    seq: int,
    window_ms: int,
    alpha: float,
    closed: list[tuple[SeriesKey, Summary]],
    scales: dict[str, float | None],
    late: int = 0,
) -> SummaryBatch:
    """Pack closed windows (sorted by device, metric, start) into one frame."""
    devices = list(dict.fromkeys(k[0] for k, _ in closed))
    metrics = list(dict.fromkeys(k[1] for k, _ in closed))
    metric_scales = [scales.get(m) for m in metrics]
    quantized = bool(metrics) and all(s is not None for s in metric_scales)
    if quantized:  # and m2 in squared steps stays an integer a float holds exactly (else float64 columns)
        per_row = np.array([scales.get(k[1]) or 1.0 for k, _ in closed], dtype=np.float64)
        squared = np.array([s.m2 * s.count for _, s in closed], dtype=np.float64) / (per_row * per_row)
        quantized = bool(np.all(np.abs(squared) < 2.0**53))
    dev_of, met_of = {d: i for i, d in enumerate(devices)}, {m: i for i, m in enumerate(metrics)}
    met_index = np.array([met_of[k[1]] for k, _ in closed], dtype="<u4")
    starts = np.array([k[2] for k, _ in closed], dtype=np.int64)
    deltas = np.diff(starts, prepend=np.int64(0)).astype("<i8")
    stats = {
        "min": [s.min for _, s in closed],
        "max": [s.max for _, s in closed],
        "sum": [s.sum for _, s in closed],
        "first": [s.first for _, s in closed],
        "last": [s.last for _, s in closed],
    }
    counts = np.array([s.count for _, s in closed], dtype=np.int64)
    stats["m2"] = [s.m2 for _, s in closed]
    packed: dict[str, bytes] = {}
    for name in (*STAT_COLUMNS, "m2"):
        column = np.asarray(stats[name], dtype=np.float64)
        if quantized and name == "m2":
            steps = np.empty(column.size, dtype="<i8")
            for m, scale in enumerate(metric_scales):
                assert scale is not None
                sel = met_index == m
                steps[sel] = np.rint(column[sel] * counts[sel] / (scale * scale))
            packed[name] = steps.tobytes()
        elif quantized:
            steps = np.empty(column.size, dtype="<i8")
            for m, scale in enumerate(metric_scales):
                assert scale is not None
                sel = met_index == m
                steps[sel] = quantize(column[sel], scale)
            packed[name] = steps.tobytes()
        else:
            packed[name] = column.astype("<f8").tobytes()
    sketches = []
    for _, s in closed:
        if s.sketch is None:
            sketches.append(b"")  # no quantiles asked of this metric
            continue
        pos, neg, zero = s.sketch.buckets()
        sketches.append(pack_sketch(pos, neg, zero, sketch_bases(alpha, s.min, s.max)))
    return SummaryBatch(
        node=node,
        session=session,
        seq=seq,
        devices=devices,
        metrics=metrics,
        window_ms=window_ms,
        alpha=alpha,
        rows=len(closed),
        device_index=np.array([dev_of[k[0]] for k, _ in closed], dtype="<u4").tobytes(),
        metric_index=met_index.tobytes(),
        window_start_ms=deltas.tobytes(),
        count=counts.astype("<i8").tobytes(),
        sketches=sketches,
        value_scale=[s for s in metric_scales if s is not None] if quantized else [],
        late=late,
        **packed,
    )


def to_summaries(batch: SummaryBatch) -> list[tuple[str, str, Summary]]:
    """A frame's rows as mergeable :class:`Summary` objects (device, metric, summary).

    The frame carries no sample times, so ``first_ts_ms``/``last_ts_ms`` are the window bounds.
    """
    out = []
    for row in batch.unpacked():
        sketch = None
        if row.sketched:
            sketch = DDSketch(batch.alpha)
            sketch.add_buckets(row.positive, row.negative, row.zero, row.min, row.max)
        summary = Summary(
            start_ms=row.start_ms, end_ms=row.start_ms + batch.window_ms, count=row.count, sum=row.sum,
            min=row.min, max=row.max, mean=row.mean, m2=row.m2, first=row.first, last=row.last,
            first_ts_ms=row.start_ms, last_ts_ms=row.start_ms + batch.window_ms - 1, sketch=sketch,
        )  # fmt: skip
        out.append((row.device, row.metric, summary))
    return out
