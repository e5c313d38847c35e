"""Streaming anomaly scores per series, and the Numenta Anomaly Benchmark to judge them.

Pure cores (no pykka, no clock reads): :func:`score_corpus` scores a detector's output the way
NAB does; the detectors turn one value at a time into a score in [0, 1].

Errors: every bad input (a malformed CSV line, a window out of range, a bad profile) raises the
one :class:`AnomalyError`, a ``ValueError``, saying where.
"""

from .errors import AnomalyError
from .nab_files import Series, load_corpus, load_profiles, read_series_csv
from .nab_score import CorpusScore, CostProfile, LabelledSeries, best_threshold, score_corpus

__all__ = [
    "AnomalyError",
    "CorpusScore",
    "CostProfile",
    "LabelledSeries",
    "Series",
    "best_threshold",
    "load_corpus",
    "load_profiles",
    "read_series_csv",
    "score_corpus",
]
