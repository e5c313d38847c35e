"""DDSketch: relative error within alpha, exact merges, a serialised form that round-trips."""

from __future__ import annotations

import math

import cbor2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymonitor.actors.summary import DDSketch, SummaryError, sketch_of

finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)


def _true_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


@settings(max_examples=200, deadline=None)
@given(st.lists(finite, min_size=1, max_size=300), st.floats(min_value=0.0, max_value=1.0))
def test_quantile_is_within_alpha_of_the_true_quantile(values: list[float], q: float) -> None:
    sketch = sketch_of(values, alpha=0.01)
    true = _true_quantile(values, q)
    assert abs(sketch.quantile(q) - true) <= 0.01 * abs(true) * (1 + 1e-9)


@settings(max_examples=100, deadline=None)
@given(st.lists(finite, max_size=200), st.lists(finite, max_size=200))
def test_merge_has_the_buckets_of_the_union(left: list[float], right: list[float]) -> None:
    merged = sketch_of(left)
    merged.merge(sketch_of(right))
    assert merged == sketch_of(left + right)
    assert merged.count == len(left) + len(right)


def test_bucket_bound_folds_the_smallest_magnitudes_and_stays_mergeable() -> None:
    values = np.geomspace(1e-6, 1e6, 5_000)
    small = DDSketch(0.01, max_buckets=64)
    small.add_many(values)
    assert len(small.buckets()[0]) == 64
    assert abs(small.quantile(0.99) - np.sort(values)[math.floor(0.99 * 4999)]) <= 0.01 * 1e6
    halves = DDSketch(0.01, max_buckets=64)
    halves.add_many(values[:2500])
    other = DDSketch(0.01, max_buckets=64)
    other.add_many(values[2500:])
    halves.merge(other)
    assert halves == small


def test_zero_and_negative_values_sort_below_positive_ones() -> None:
    sketch = sketch_of([-5.0, -1.0, 0.0, 0.0, 2.0])
    assert sketch.quantile(0.0) == -5.0
    assert sketch.quantile(0.5) == 0.0
    assert sketch.quantile(1.0) == 2.0
    assert abs(sketch.quantile(0.25) - -1.0) <= 0.01


def test_scalar_and_vector_adds_land_in_the_same_buckets() -> None:
    values = [0.1 * k for k in range(-50, 51)]
    one_by_one = DDSketch()
    for v in values:
        one_by_one.add(v)
    assert one_by_one == sketch_of(values)


def test_serialised_sketch_round_trips_through_cbor() -> None:
    sketch = sketch_of([-3.5, 0.0, 1.0, 2.0, 1e9])
    data = sketch.to_dict()
    assert set(map(type, data.values())) <= {int, float, bytes}
    back = DDSketch.from_dict(cbor2.loads(cbor2.dumps(data)))
    assert back == sketch
    assert back.quantile(0.5) == sketch.quantile(0.5)
    assert DDSketch.from_dict(DDSketch().to_dict()).count == 0


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"v": 2}, "at v"),
        ({"v": 1, "a": 0.01, "m": 2048, "z": -1}, "at z"),
        ({"v": 1, "a": 0.01, "m": 2048, "z": 0, "p": b"\x02"}, "at p: truncated"),
        ({"v": 1, "a": 0.01, "m": 2048, "z": 0, "p": b"\x02\x00"}, "count 0"),
        ({"v": 1, "a": 0.01, "m": 2048, "z": 0, "p": b"\x02\x01"}, "at lo"),
        ({"v": 1, "a": "x", "m": 2048, "z": 0}, "at a"),
    ],
)
def test_malformed_serialised_sketch_is_refused_naming_the_key(data: dict[str, object], where: str) -> None:
    with pytest.raises(SummaryError, match=where):
        DDSketch.from_dict(data)


def test_empty_sketch_has_no_quantile() -> None:
    with pytest.raises(SummaryError, match="empty"):
        DDSketch().quantile(0.5)


def test_non_finite_value_is_refused_naming_its_index() -> None:
    with pytest.raises(SummaryError, match=r"values\[2\]"):
        DDSketch().add_many([1.0, 2.0, math.nan])


def test_sketches_of_different_accuracy_do_not_merge() -> None:
    with pytest.raises(SummaryError, match="cannot merge"):
        DDSketch(0.01).merge(DDSketch(0.02))
