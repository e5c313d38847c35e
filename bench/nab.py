"""NAB score of our streaming detector against NAB's windowedGaussian, scored the same way in one run.

Both detectors see every series of the NAB subset one value at a time (the probationary length
is given to ours as its learning period, as NAB gives it to its detectors). The detector's
defaults were tuned on the even-numbered series (in name order); the odd-numbered ones are the
holdout, scored both with a threshold optimised on the holdout itself (NAB's rule) and with the
threshold the tuning half chose (no peeking at the holdout at all).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pymonitor.actors.anomaly import CostProfile, Series, best_threshold, load_corpus, load_profiles, score_corpus
from pymonitor.actors.anomaly.detector import DetectorParams, StreamDetector, WindowedGaussian
from pymonitor.actors.anomaly.nab_score import FloatArray, probation_rows

from .common import emit_result, progress, python_version

Detector = StreamDetector | WindowedGaussian


def run_detector(corpus: Sequence[Series], make: Callable[[Series], Detector]) -> tuple[list[FloatArray], float]:
    """Scores of every series, and the detector's own speed in points per second (one core)."""
    out = []
    points = 0
    spent = 0.0
    for series in corpus:
        values = series.values.tolist()
        detector = make(series)
        update = detector.update
        start = time.perf_counter()
        scores = [update(v) for v in values]
        spent += time.perf_counter() - start
        out.append(np.asarray(scores, dtype=np.float64))
        points += len(values)
    return out, points / spent if spent > 0 else 0.0


def profile_scores(
    corpus: Sequence[Series], scores: Sequence[FloatArray], profiles: dict[str, CostProfile]
) -> dict[str, float]:
    labels = [s.labels for s in corpus]
    return {name: round(score_corpus(labels, scores, p).normalized, 2) for name, p in profiles.items()}


def holdout_scores(
    corpus: Sequence[Series], scores: Sequence[FloatArray], profiles: dict[str, CostProfile]
) -> dict[str, Any]:
    """Tuning half (even index) and holdout (odd index), the holdout also at the tuning half's threshold."""
    tune, hold = list(corpus[0::2]), list(corpus[1::2])
    tune_scores, hold_scores = list(scores[0::2]), list(scores[1::2])
    fixed = {}
    for name, p in profiles.items():
        threshold = best_threshold([s.labels for s in tune], tune_scores, p)
        fixed[name] = round(score_corpus([s.labels for s in hold], hold_scores, p, threshold).normalized, 2)
    return {
        "tune": profile_scores(tune, tune_scores, profiles),
        "holdout": profile_scores(hold, hold_scores, profiles),
        "holdout_at_tune_threshold": fixed,
        "tune_series": len(tune),
        "holdout_series": len(hold),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pymonitor bench nab", description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/nab"), help="NAB folder (data/, *.json)")
    parser.add_argument("--json", action="store_true", help="Only the JSON result on stdout (always the last line).")
    parser.add_argument("--out", type=Path, default=None, help="Also write the JSON result here.")
    args = parser.parse_args(argv)
    root: Path = args.data
    if not (root / "combined_windows.json").is_file() or not (root / "profiles.json").is_file():
        progress(f"error: no NAB data at {root} (expected data/, combined_windows.json, profiles.json)")
        return 2
    corpus = load_corpus(root)
    profiles = load_profiles(root)
    points = sum(s.labels.rows for s in corpus)
    progress(f"nab: {len(corpus)} series, {points:,} points, {sum(len(s.labels.windows) for s in corpus)} windows")

    ours, ours_pps = run_detector(
        corpus, lambda s: StreamDetector(DetectorParams(learning_points=probation_rows(s.labels.rows)))
    )
    progress(f"ours: {ours_pps:,.0f} points/s")
    baseline, baseline_pps = run_detector(corpus, lambda s: WindowedGaussian())
    progress(f"windowedGaussian: {baseline_pps:,.0f} points/s")

    result: dict[str, Any] = {"bench": "nab", **profile_scores(corpus, ours, profiles)}
    result["baseline_windowed_gaussian"] = profile_scores(corpus, baseline, profiles)
    result["points_per_s"] = round(ours_pps)
    result["baseline_points_per_s"] = round(baseline_pps)
    result["split"] = {"ours": holdout_scores(corpus, ours, profiles),
                       "baseline_windowed_gaussian": holdout_scores(corpus, baseline, profiles)}  # fmt: skip
    result.update(series=len(corpus), points=points, python=python_version())
    if not args.json:
        base = result["baseline_windowed_gaussian"]
        for name in profiles:
            progress(f"  {name:<20} ours {result[name]:6.2f}   windowedGaussian {base[name]:6.2f}")
    emit_result(result, out=args.out)
    return 0
