"""NAB's score on series small enough to work out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymonitor.actors.anomaly import AnomalyError, CostProfile, LabelledSeries, best_threshold, score_corpus
from pymonitor.actors.anomaly.nab_score import (
    MAX_TP,
    PROBATION,
    evaluate,
    probation_rows,
    row_weights,
    scaled_sigmoid,
    sweep,
    window_rows,
)

STANDARD = CostProfile("standard", tp_weight=1.0, fp_weight=0.11, fn_weight=1.0)
LOW_FN = CostProfile("reward_low_FN_rate", tp_weight=1.0, fp_weight=0.11, fn_weight=2.0)
SERIES = LabelledSeries("s.csv", rows=100, windows=((40, 49),))  # probation: rows 0..14


def scores_firing_at(*rows: int, n: int = 100) -> np.ndarray:
    scores = np.zeros(n)
    scores[list(rows)] = 1.0
    return scores


def test_scaled_sigmoid_matches_nab_documented_points() -> None:
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert scaled_sigmoid(3.0) == -1.0


def test_probation_is_15_percent_capped_at_750_rows() -> None:
    assert probation_rows(100) == 15
    assert probation_rows(4000) == 600
    assert probation_rows(22_000) == 750


def test_detection_at_window_start_scores_100() -> None:
    result = score_corpus([SERIES], [scores_firing_at(40)], STANDARD, threshold=0.5)
    assert result.raw == pytest.approx(1.0)  # A_TP * scaledSigmoid(-1) / maxTP
    assert result.normalized == pytest.approx(100.0)
    assert result.detected_windows == 1
    assert result.false_positives == 0


def test_detection_at_window_end_earns_almost_nothing() -> None:
    result = score_corpus([SERIES], [scores_firing_at(49)], STANDARD, threshold=0.5)
    expected = scaled_sigmoid(-1 / 10) / MAX_TP  # position -(49 - 49 + 1) / 10
    assert result.raw == pytest.approx(expected)
    assert result.normalized == pytest.approx(100 * (expected + 1) / 2)


def test_only_the_first_detection_in_a_window_counts() -> None:
    late = score_corpus([SERIES], [scores_firing_at(45)], STANDARD, threshold=0.5)
    both = score_corpus([SERIES], [scores_firing_at(45, 48)], STANDARD, threshold=0.5)
    assert both.raw == pytest.approx(late.raw)
    assert late.raw == pytest.approx(scaled_sigmoid(-(49 - 45 + 1) / 10) / MAX_TP)


def test_missed_window_costs_fn_weight_and_scores_0() -> None:
    for profile in (STANDARD, LOW_FN):
        result = score_corpus([SERIES], [np.zeros(100)], profile, threshold=0.5)
        assert result.raw == -profile.fn_weight
        assert result.normalized == 0.0


def test_false_positive_before_any_window_costs_full_fp_weight() -> None:
    result = score_corpus([SERIES], [scores_firing_at(20, 40)], STANDARD, threshold=0.5)
    assert result.raw == pytest.approx(1.0 - 0.11)
    assert result.false_positives == 1


def test_false_positive_right_after_a_window_costs_little_and_far_after_costs_full() -> None:
    near = score_corpus([SERIES], [scores_firing_at(40, 50)], STANDARD, threshold=0.5)
    far = score_corpus([SERIES], [scores_firing_at(40, 99)], STANDARD, threshold=0.5)
    assert near.raw == pytest.approx(1.0 + 0.11 * scaled_sigmoid(1 / 9))  # |49 - 50| / (10 - 1)
    assert far.raw == pytest.approx(1.0 - 0.11)  # 50 rows after: position 5.6 >= 3


def test_detections_in_the_probationary_period_are_ignored() -> None:
    result = score_corpus([SERIES], [scores_firing_at(3, 40)], STANDARD, threshold=0.5)
    assert result.raw == pytest.approx(1.0)
    assert result.false_positives == 0


def test_normalised_score_can_go_below_0_for_a_noisy_detector() -> None:
    noisy = np.ones(100)  # fires everywhere: window found at once, but 75 false positives
    result = score_corpus([SERIES], [noisy], STANDARD, threshold=0.5)
    assert result.normalized < 0


def test_optimal_threshold_separates_true_detection_from_weaker_noise() -> None:
    scores = np.full(100, 0.2)
    scores[40] = 0.9
    scores[[20, 30, 60]] = 0.5
    assert best_threshold([SERIES], [scores], STANDARD) == 0.9
    assert score_corpus([SERIES], [scores], STANDARD).normalized == pytest.approx(100.0)


def test_optimal_threshold_is_shared_across_the_corpus() -> None:
    quiet = LabelledSeries("quiet.csv", rows=100, windows=())
    loud = np.zeros(100)
    loud[range(20, 100, 2)] = 0.95  # a series without windows that would pay 40 false positives at 0.95
    good = np.zeros(100)
    good[40] = 0.9
    result = score_corpus([SERIES, quiet], [good, loud], STANDARD)
    assert result.threshold > 0.95  # 0.9 would buy +2 for 40 * 0.11 = 4.4
    assert result.normalized == pytest.approx(0.0)


def test_window_rows_follow_nab_first_matching_stamp() -> None:
    stamps = np.array(["2020-01-01T00:00", "2020-01-01T01:00", "2020-01-01T01:00", "2020-01-01T03:00"],
                      dtype="datetime64[us]")  # fmt: skip
    assert window_rows(stamps, [("2020-01-01 01:00:00.000000", "2020-01-01 03:00:00.000000")]) == [(1, 3)]
    assert window_rows(stamps, [("2020-01-01 00:30:00", "2020-01-01 02:00:00")]) == [(1, 2)]
    assert window_rows(stamps, [("2021-01-01 00:00:00", "2021-01-02 00:00:00")]) == []


def test_overlapping_windows_are_refused() -> None:
    with pytest.raises(AnomalyError, match="window 1"):
        row_weights(LabelledSeries("x.csv", 100, ((40, 50), (45, 60))), STANDARD)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=4), min_size=120, max_size=120),
    st.sampled_from([((30, 39),), ((20, 25), (60, 80)), ((18, 18), (50, 52), (100, 119)), ()]),
)
def test_sweep_total_equals_direct_score_at_every_threshold(levels: list[int], windows: tuple) -> None:
    series = LabelledSeries("h.csv", 120, windows)
    scores = np.array(levels, dtype=np.float64) / 4
    weights, window_id = row_weights(series, LOW_FN)
    thresholds, totals = sweep(scores, weights, window_id, LOW_FN.fn_weight)
    assert thresholds[0] > scores.max()
    assert list(thresholds[1:]) == sorted(set(scores[window_id != PROBATION]), reverse=True)
    for threshold, total in zip(thresholds, totals):
        assert total == pytest.approx(evaluate(scores, weights, window_id, LOW_FN.fn_weight, threshold)[0])
    assert not math.isnan(totals.max())
