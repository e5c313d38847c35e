"""The Numenta Anomaly Benchmark score, written from NAB's documented method (nab/sweeper.py).

Every row gets a weight: inside a labelled window, the scaled sigmoid of its relative position
(detecting at the window's left edge earns the full A_TP, at its right edge about 0); outside,
a false positive costs A_FP, scaled by how far it lies after the preceding window (-A_FP before
any window or 3+ window-widths after one). A window with no detection costs A_FN. Rows in the
probationary period (the first 15% of a series, at most 750 rows) are not scored. The threshold
is the one that maximises the score of the whole corpus, found by sweeping every distinct score
value, as NAB's sweep optimizer does. Normalised: never firing = 0, a perfect detector = 100.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .errors import AnomalyError

PROBATION_PERCENT = 0.15
OUTSIDE = -1  # window id of a row outside every window
PROBATION = -2  # window id of a row in the probationary period: not scored
NO_DETECTION_THRESHOLD = 1.1  # NAB's "above every score" start of the sweep (scores are in [0, 1])

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class CostProfile:
    """One of NAB's cost matrices: what a detected window earns, a missed one and a false positive cost."""

    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


@dataclass(frozen=True, slots=True)
class LabelledSeries:
    """A series' length and its labelled windows as inclusive row ranges ``(first, last)``, in order."""

    name: str
    rows: int
    windows: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class CorpusScore:
    """A detector's score over a corpus under one profile, at one threshold."""

    profile: str
    threshold: float
    raw: float
    null: float  # a detector that never fires
    perfect: float  # one that fires exactly at every window's first scored row
    normalized: float  # 100 * (raw - null) / (perfect - null)
    windows: int
    detected_windows: int
    false_positives: int  # rows


def scaled_sigmoid(position: float) -> float:
    """NAB's scaled sigmoid: 0.987 at -1 (window start), 0 at 0 (window end), -1 from 3 on."""
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


MAX_TP = scaled_sigmoid(-1.0)


def _scaled_sigmoids(position: FloatArray) -> FloatArray:
    sig = 2.0 / (1.0 + np.exp(np.minimum(5.0 * position, 700.0))) - 1.0
    return np.where(position >= 3.0, -1.0, sig)


def probation_rows(rows: int, percent: float = PROBATION_PERCENT) -> int:
    """Rows at the start of a series that are not scored: 15% of it, at most 750 (NAB's rule)."""
    return math.ceil(min(math.floor(percent * rows), percent * 5000))


def window_rows(timestamps: npt.NDArray[np.datetime64], windows: Sequence[tuple[str, str]]) -> list[tuple[int, int]]:
    """Row ranges of windows given as ``[start, end]`` timestamps, as NAB finds them.

    NAB enters a window at the first row stamped ``start`` and leaves it at the first row stamped
    ``end``; when a stamp is not in the series, the first row at or after ``start`` and the last
    row at or before ``end`` stand in. Timestamps need not be sorted (NAB's own files are not all).
    """
    found = []
    for start, end in windows:
        lo, hi = np.datetime64(start), np.datetime64(end)
        exact = np.flatnonzero(timestamps == lo)
        after = np.flatnonzero(timestamps >= lo)
        first = int(exact[0]) if len(exact) else int(after[0]) if len(after) else len(timestamps)
        exact = np.flatnonzero(timestamps == hi)
        before = np.flatnonzero(timestamps <= hi)
        last = int(exact[0]) if len(exact) else int(before[-1]) if len(before) else -1
        if first <= last:
            found.append((first, last))
    return found


def row_weights(series: LabelledSeries, profile: CostProfile) -> tuple[FloatArray, IntArray]:
    """Per row: what a detection there is worth (NAB's sweep score) and its window id (or OUTSIDE / PROBATION)."""
    weights = np.empty(series.rows, dtype=np.float64)
    window_id = np.full(series.rows, OUTSIDE, dtype=np.int64)
    prev_last: int | None = None
    prev_width = 0
    cursor = 0
    for k, (first, last) in enumerate(series.windows):
        if first < cursor or last < first or last >= series.rows:
            raise AnomalyError(f"{series.name}: window {k} rows {first}..{last} overlaps, is reversed or out of range")
        _fill_outside(weights, cursor, first, prev_last, prev_width, profile)
        width = last - first + 1
        idx = np.arange(first, last + 1)
        position = -(last - idx + 1) / width
        weights[first : last + 1] = _scaled_sigmoids(position) * profile.tp_weight / MAX_TP
        window_id[first : last + 1] = k
        prev_last, prev_width, cursor = last, width, last + 1
    _fill_outside(weights, cursor, series.rows, prev_last, prev_width, profile)
    window_id[: probation_rows(series.rows)] = PROBATION
    return weights, window_id


def _fill_outside(
    weights: FloatArray, start: int, stop: int, prev_last: int | None, prev_width: int, profile: CostProfile
) -> None:
    if start >= stop:
        return
    if prev_last is None or prev_width <= 1:  # NAB divides by (width - 1); a 1-row window counts as "far"
        weights[start:stop] = -profile.fp_weight
        return
    position = np.abs(prev_last - np.arange(start, stop)) / (prev_width - 1)
    weights[start:stop] = _scaled_sigmoids(position) * profile.fp_weight


def sweep(
    scores: FloatArray, weights: FloatArray, window_id: IntArray, fn_weight: float
) -> tuple[FloatArray, FloatArray]:
    """Total score at every candidate threshold, highest threshold first (NAB's calcScoreByThreshold).

    Window ids must be unique across the corpus. The first candidate fires nowhere; the others are
    the distinct scores, a row being a detection when its score >= the threshold.
    """
    keep = window_id != PROBATION
    s, w, wid = scores[keep], weights[keep], window_id[keep]
    order = np.argsort(-s, kind="stable")
    s, w, wid = s[order], w[order], wid[order]
    delta = np.where(wid == OUTSIDE, w, 0.0)
    in_window = np.flatnonzero(wid >= 0)
    windows = np.unique(wid[in_window])
    base = -fn_weight * len(windows)
    if len(in_window):
        # Per window, the best weight among its detections so far (the earliest detection) in sweep order:
        # a segmented running maximum, done as one running maximum over segments lifted apart.
        by_window = in_window[np.lexsort((in_window, wid[in_window]))]
        seg = np.searchsorted(windows, wid[by_window])
        lift = (np.abs(w).max() + abs(fn_weight) + 1.0) * 2.0 * seg
        best = np.maximum(np.maximum.accumulate(w[by_window] + lift) - lift, -fn_weight)
        before = np.concatenate(([-fn_weight], best[:-1]))
        before[np.flatnonzero(np.diff(seg, prepend=-1) != 0)] = -fn_weight
        delta[by_window] = best - before
    totals = base + np.cumsum(delta)
    ends = np.flatnonzero(np.diff(s, append=-np.inf) != 0)
    top = max(NO_DETECTION_THRESHOLD, float(np.nextafter(s[0], np.inf))) if len(s) else NO_DETECTION_THRESHOLD
    return np.concatenate(([top], s[ends])), np.concatenate(([base], totals[ends]))


def evaluate(
    scores: FloatArray, weights: FloatArray, window_id: IntArray, fn_weight: float, threshold: float
) -> tuple[float, int, int, int]:
    """Score at one threshold, directly: (total, windows, detected windows, false-positive rows)."""
    fired = (scores >= threshold) & (window_id != PROBATION)
    fp = fired & (window_id == OUTSIDE)
    total = float(weights[fp].sum())
    windows = np.unique(window_id[window_id >= 0])
    detected = 0
    for k in windows:
        hits = np.flatnonzero(fired & (window_id == k))
        if len(hits):
            total += float(weights[hits[0]])
            detected += 1
        else:
            total -= fn_weight
    return total, len(windows), detected, int(fp.sum())


def _corpus_rows(
    corpus: Sequence[LabelledSeries], scores: Sequence[FloatArray], profile: CostProfile
) -> tuple[FloatArray, FloatArray, IntArray]:
    if len(corpus) != len(scores):
        raise AnomalyError(f"{len(corpus)} series but {len(scores)} score arrays")
    all_w, all_id = [], []
    offset = 0
    for series, series_scores in zip(corpus, scores, strict=True):
        if len(series_scores) != series.rows:
            raise AnomalyError(f"{series.name}: {len(series_scores)} scores for {series.rows} rows")
        w, wid = row_weights(series, profile)
        all_w.append(w)
        all_id.append(np.where(wid >= 0, wid + offset, wid))
        offset += len(series.windows)
    return (
        np.concatenate([np.asarray(x, dtype=np.float64) for x in scores]) if scores else np.empty(0),
        np.concatenate(all_w) if all_w else np.empty(0),
        np.concatenate(all_id) if all_id else np.empty(0, dtype=np.int64),
    )


def best_threshold(corpus: Sequence[LabelledSeries], scores: Sequence[FloatArray], profile: CostProfile) -> float:
    """The threshold that maximises the corpus score (the highest one among equals, as NAB picks)."""
    s, w, wid = _corpus_rows(corpus, scores, profile)
    thresholds, totals = sweep(s, w, wid, profile.fn_weight)
    return float(thresholds[int(np.argmax(totals))])


def score_corpus(
    corpus: Sequence[LabelledSeries],
    scores: Sequence[FloatArray],
    profile: CostProfile,
    threshold: float | None = None,
) -> CorpusScore:
    """NAB's score of a detector's output; ``threshold`` None: the corpus-optimal one, as NAB reports."""
    if threshold is None:
        threshold = best_threshold(corpus, scores, profile)
    s, w, wid = _corpus_rows(corpus, scores, profile)
    raw, windows, detected, fps = evaluate(s, w, wid, profile.fn_weight, threshold)
    perfect_scores = np.where(wid >= 0, 1.0, 0.0)
    perfect = evaluate(perfect_scores, w, wid, profile.fn_weight, 1.0)[0]
    null = -profile.fn_weight * windows
    normalized = 100.0 * (raw - null) / (perfect - null) if perfect > null else 0.0
    return CorpusScore(profile.name, threshold, raw, null, perfect, normalized, windows, detected, fps)


def profiles_from_json(data: Mapping[str, Mapping[str, Mapping[str, float]]]) -> dict[str, CostProfile]:
    """NAB's profiles.json: ``{name: {"CostMatrix": {"tpWeight", "fpWeight", "fnWeight", ...}}}``."""
    found = {}
    for name, body in data.items():
        try:
            matrix = body["CostMatrix"]
            found[name] = CostProfile(
                name, float(matrix["tpWeight"]), float(matrix["fpWeight"]), float(matrix["fnWeight"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise AnomalyError(f"profiles.json at {name}: expected CostMatrix with tp/fp/fnWeight ({exc})") from None
    return found
