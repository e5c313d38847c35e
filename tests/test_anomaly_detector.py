"""The streaming detectors: bounded, causal, quiet while learning, loud at the first sign of trouble."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pymonitor.actors.anomaly.detector import DetectorParams, StreamDetector, WindowedGaussian


def run(detector: StreamDetector | WindowedGaussian, values: list[float]) -> list[float]:
    return [detector.update(v) for v in values]


def noisy(n: int, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    return (10 + np.sin(np.arange(n) / 20) + rng.normal(0, 0.1, n)).tolist()


def test_scores_are_0_while_learning() -> None:
    scores = run(StreamDetector(DetectorParams(learning_points=100)), [0.0, 1e9, -1e9, *noisy(97)])
    assert scores[:100] == [0.0] * 100


def test_a_spike_scores_above_every_normal_point() -> None:
    values = noisy(3000)
    values[2500] = 25.0
    scores = run(StreamDetector(DetectorParams(learning_points=500)), values)
    assert scores[2500] > max(scores[:2500])
    assert scores[2500] > 0.5


def test_a_level_shift_is_flagged_at_once_and_its_echoes_are_damped() -> None:
    values = noisy(3000)
    values[2500:] = [v + 3 for v in values[2500:]]
    damped = run(StreamDetector(DetectorParams(learning_points=500)), values)
    undamped = run(StreamDetector(DetectorParams(learning_points=500, echo_damp=1.0)), values)
    alarm = max(damped[2500:2510])
    assert alarm > max(damped[:2500])
    # the long-term mean needs hundreds of points to catch up: undamped, that whole stretch scores high
    loud = sum(x > 0.5 * alarm for x in damped[2510:2700])
    assert loud < sum(x > 0.5 * alarm for x in undamped[2510:2700]) / 3


def test_no_look_ahead_prefix_scores_do_not_depend_on_later_values() -> None:
    head = noisy(1200, seed=1)
    a = run(StreamDetector(DetectorParams(learning_points=200)), [*head, *noisy(300, seed=2)])
    b = run(StreamDetector(DetectorParams(learning_points=200)), [*head, 1e6, -1e6])
    assert a[:1200] == b[:1200]


def test_pattern_memory_stays_bounded_on_endless_noise() -> None:
    params = DetectorParams(learning_points=0)
    detector = StreamDetector(params)
    run(detector, np.random.default_rng(3).standard_cauchy(20_000).tolist())
    assert len(detector._patterns) <= sum(params.bins**k for k in range(1, params.context + 1))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False), min_size=1, max_size=300))
def test_every_score_is_in_0_1(values: list[float]) -> None:
    for detector in (StreamDetector(DetectorParams(learning_points=5)), WindowedGaussian(window=20, step=4)):
        for score in run(detector, values):
            assert 0.0 <= score <= 1.0
            assert not math.isnan(score)


def nab_windowed_gaussian(values: list[float], window: int, step: int) -> list[float]:
    """NAB's windowedGaussian_detector.py, literally (lists and numpy per record)."""
    data: list[float] = []
    buffer: list[float] = []
    mean, std = 0.0, 1.0
    out = []
    for x in values:
        score = 0.0
        if data:
            z = abs(x - mean) / std
            score = 1 - 0.5 * math.erfc(z / math.sqrt(2))
        if len(data) < window:
            data.append(x)
            mean, std = float(np.mean(data)), float(np.std(data)) or 0.000001
        else:
            buffer.append(x)
            if len(buffer) == step:
                data = data[step:] + buffer
                buffer = []
                mean, std = float(np.mean(data)), float(np.std(data)) or 0.000001
        out.append(score)
    return out


def test_windowed_gaussian_matches_nab_reference() -> None:
    values = noisy(400, seed=4)
    values[300] = 20.0
    ours = run(WindowedGaussian(window=50, step=7), values)
    reference = nab_windowed_gaussian(values, 50, 7)
    np.testing.assert_allclose(ours, reference, atol=1e-9)
    assert ours[300] > 0.999


def test_windowed_gaussian_on_constant_input_scores_half_as_nab_does() -> None:
    scores = run(WindowedGaussian(window=10, step=2), [5.0] * 30)
    assert scores == [0.0] + [0.5] * 29  # 1 - Q(0); std 0 is replaced by 1e-6, as in NAB
