"""Quantized value columns: int64 steps of each metric's resolution, read back as floats.

A reading batch with ``value_scale`` carries ``round(v / scale)`` per cell (INT64_MIN where not
measured). What must hold: the steps survive the wire exactly, any value comes back within half a
step, decimal resolutions read back as the decimal, what does not fit int64 is refused at build
with a path, bad scales are refused on both sides, and consumers (views, the hub's store) see
floats as before.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

import cbor2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymonitor.actors.hub.core import HubCore
from pymonitor.messages import MessageError, ReadingBatch, decode, decode_as, encode, to_view
from pymonitor.messages.columns import NOT_MEASURED, dequantize, quantize
from pymonitor.store import HubStore

T0 = 1_767_225_600_000
ROUND_TRIP = settings(max_examples=200, deadline=None)

scales = st.sampled_from([0.001, 0.01, 0.1, 0.5, 1.0, 2.5, 1e-9]) | st.floats(1e-6, 1e6)
step_counts = st.integers(-(2**50), 2**50) | st.just(NOT_MEASURED)


def one_column(values: list[Any], scale: float | None, **kwargs: Any) -> ReadingBatch:
    rows = len(values)
    return ReadingBatch.build(
        node="gw-1", session=1, seq=1, devices=["d"], metrics=["m"], device_index=[0] * rows,
        device_seq=list(range(rows)), ts_ms=[T0 + i for i in range(rows)], values=[values],
        value_scale=None if scale is None else [scale], **kwargs,
    )  # fmt: skip


def wire_ints(batch: ReadingBatch, column: int = 0) -> list[int]:
    return list(struct.unpack(f"<{batch.rows}q", batch.steps[column]))


def body_of(batch: ReadingBatch) -> dict[str, Any]:
    body = cbor2.loads(encode(batch))
    assert isinstance(body, dict)
    return body


THREE = ReadingBatch.build(
    node="gw-1", session=1, seq=1, devices=["a", "b"], metrics=["temperature_c", "humidity_pct", "battery_v"],
    device_index=[0, 1, 0], device_seq=[1, 1, 2], ts_ms=[T0, T0 + 10, T0 + 60_000],
    values=[[21.51, -0.05, 21.49], [55.3, None, 54.9], [3.301, 3.299, math.nan]], value_scale=[0.01, 0.1, 0.001],
)  # fmt: skip


# ---------------------------------------------------------------- exact round trips


@given(scale=scales, steps=st.lists(step_counts, max_size=32))
@ROUND_TRIP
def test_steps_survive_the_wire_exactly_and_re_encode_without_drift(scale: float, steps: list[int]) -> None:
    floats = dequantize(np.array(steps, dtype=np.int64), scale)
    batch = one_column(floats.tolist(), scale)
    assert wire_ints(batch) == steps  # the float of a step quantizes back to that step
    back = decode_as(encode(batch), ReadingBatch)
    assert wire_ints(back) == steps
    assert back.columns().values[0].tobytes() == floats.tobytes()  # type: ignore[attr-defined]
    again = one_column(list(back.columns().values[0]), scale)  # decode, build again: the same bytes
    assert again.steps == batch.steps
    assert back.reading_count() == sum(s != NOT_MEASURED for s in steps)


@given(scale=scales, data=st.data())
@ROUND_TRIP
def test_any_value_comes_back_within_half_a_step(scale: float, data: st.DataObject) -> None:
    values = data.draw(st.lists(st.floats(-1e12 * scale, 1e12 * scale), min_size=1, max_size=16))
    back = list(decode_as(encode(one_column(values, scale)), ReadingBatch).columns().values[0])
    for got, want in zip(back, values, strict=True):
        assert abs(got - want) <= scale / 2 + abs(want) * 1e-15 + 1e-300


def test_decimal_resolutions_read_back_as_the_decimal_people_wrote() -> None:
    # 2151 * 0.1 is 215.10000000000002 and 2151 * 0.001 is 2.1510000000000002: division by 10**k is not
    battery = one_column([2.151, 3.7, 0.3], 0.001)
    humidity = one_column([215.1, 0.7, 99.9], 0.1)
    assert wire_ints(battery) == [2151, 3700, 300]
    assert list(battery.columns().values[0]) == [2.151, 3.7, 0.3]
    assert list(humidity.columns().values[0]) == [215.1, 0.7, 99.9]
    assert [list(col) for col in THREE.columns().values][0] == [21.51, -0.05, 21.49]


def test_values_between_steps_are_rounded_to_the_nearest_step_half_to_even() -> None:
    batch = one_column([21.514, 21.516, 0.25, 0.35, -0.004], 0.01)
    assert wire_ints(batch) == [2151, 2152, 25, 35, 0]
    assert wire_ints(one_column([0.5, 1.5, 2.5, -0.5], 1.0)) == [0, 2, 2, 0]
    assert struct.pack("<d", batch.columns().values[0][4]) == struct.pack("<d", 0.0)  # no -0.0 on the way back


def test_a_scale_that_is_not_one_over_an_integer_multiplies() -> None:
    batch = one_column([-95.5, -71.0, -70.4], 0.5)
    assert wire_ints(batch) == [-191, -142, -141]
    assert list(batch.columns().values[0]) == [-95.5, -71.0, -70.5]


# ---------------------------------------------------------------- not measured


def test_not_measured_is_int64_min_on_the_wire_and_nan_back() -> None:
    batch = one_column([None, 1.25, math.nan, 0.0], 0.01)
    assert wire_ints(batch) == [NOT_MEASURED, 125, NOT_MEASURED, 0]
    back = list(decode_as(encode(batch), ReadingBatch).columns().values[0])
    assert math.isnan(back[0]) and math.isnan(back[2])
    assert back[1] == 1.25 and back[3] == 0.0
    assert batch.reading_count() == 2


def test_measured_says_where_values_are_for_either_encoding() -> None:
    quantized = one_column([None, 1.25, math.nan, 0.0], 0.01)
    plain = one_column([None, 1.25, math.nan, 0.0], None)
    assert quantized.measured().tolist() == plain.measured().tolist() == [[False, True, False, True]]
    assert THREE.measured().tolist() == [[True, True, True], [True, False, True], [True, True, False]]
    assert THREE.reading_count() == 7


# ---------------------------------------------------------------- what does not fit is refused


@pytest.mark.parametrize(
    ("value", "scale", "why"),
    [
        (1e17, 0.01, "row 2: 1e+17 is 2**63 or more steps of 0.01"),
        (-(2.0**63), 1.0, "is 2**63 or more steps"),  # would be the not-measured sentinel
        (2.0**63, 1.0, "is 2**63 or more steps"),
        (math.inf, 0.01, "row 2: inf is not finite"),
        (-math.inf, 1.0, "row 2: -inf is not finite"),
        (1e300, 1e-300, "is 2**63 or more steps"),  # the division itself overflows to inf
    ],
)
def test_a_value_beyond_int64_steps_is_refused_at_build_with_its_column(value: float, scale: float, why: str) -> None:
    with pytest.raises(MessageError) as info:
        ReadingBatch.build(
            node="n", session=1, seq=1, devices=["d"], metrics=["ok", "big"], device_index=[0, 0, 0],
            device_seq=[1, 2, 3], ts_ms=[1, 2, 3], values=[[1.0, 2.0, 3.0], [1.0, 2.0, value]],
            value_scale=[1.0, scale],
        )  # fmt: skip
    assert info.value.path == "$.steps[1]"
    assert str(info.value).startswith("reading.batch.v1 at $.steps[1]: does not fit int64 steps")
    assert why in str(info.value)


def test_the_largest_step_counts_a_float_can_say_are_accepted() -> None:
    top = 2.0**63 - 1024  # the float just below 2**63
    batch = one_column([top, -top], 1.0)
    assert wire_ints(batch) == [2**63 - 1024, -(2**63) + 1024]


@pytest.mark.parametrize("bad", [0.0, -0.01, math.inf, -math.inf, math.nan])
def test_a_scale_that_is_not_positive_and_finite_is_refused_at_build_and_on_the_wire(bad: float) -> None:
    columns: dict[str, Any] = {"device_index": [0], "device_seq": [1], "ts_ms": [1], "values": [[1.0], [2.0], [3.0]]}
    with pytest.raises(MessageError, match=r"^at \$\.value_scale\[2\]: must be positive and finite"):
        ReadingBatch.build(
            node="n", session=1, seq=1, devices=["d"], metrics=["a", "b", "c"], value_scale=[1.0, 0.1, bad], **columns
        )  # fmt: skip
    body = body_of(THREE)
    body["value_scale"][2] = bad
    with pytest.raises(MessageError, match=r"^reading\.batch\.v1 at \$\.value_scale\[2\]: must be positive and finite"):
        decode(cbor2.dumps(body))


def test_one_scale_per_metric_or_none_at_all() -> None:
    with pytest.raises(MessageError, match=r"at \$\.value_scale: 2 scales for 3 metrics"):
        ReadingBatch.build(
            node="n", session=1, seq=1, devices=["d"], metrics=["a", "b", "c"], device_index=[0], device_seq=[1],
            ts_ms=[1], values=[[1.0], [2.0], [3.0]], value_scale=[1.0, 1.0],
        )  # fmt: skip
    with pytest.raises(MessageError, match=r"at \$\.steps: 2 columns for 3 metrics"):
        ReadingBatch.build(
            node="n", session=1, seq=1, devices=["d"], metrics=["a", "b", "c"], device_index=[0], device_seq=[1],
            ts_ms=[1], values=[[1.0], [2.0]], value_scale=[1.0, 1.0, 1.0],
        )  # fmt: skip
    body = body_of(THREE)
    body["value_scale"].append(1.0)
    with pytest.raises(MessageError, match=r"^reading\.batch\.v1 at \$\.value_scale: 4 scales for 3 metrics"):
        decode(cbor2.dumps(body))


def test_a_quantized_column_of_the_wrong_length_is_refused_naming_it() -> None:
    body = body_of(THREE)
    body["steps"][1] = body["steps"][1][:-8]
    with pytest.raises(MessageError, match=r"at \$\.steps\[1\]: 16 bytes do not hold 3 int64 rows"):
        decode(cbor2.dumps(body))


def test_a_frame_without_value_scale_is_read_as_float64() -> None:
    plain = one_column([1.5, None], None)
    body = body_of(plain)
    assert body["value_scale"] == []
    del body["value_scale"]  # as a node from before the field sends it
    back = decode_as(cbor2.dumps(body), ReadingBatch)
    assert back == plain
    assert back.columns().values[0][0] == 1.5


# ---------------------------------------------------------------- consumers see floats


def test_the_json_view_shows_the_decimals_and_null_where_not_measured() -> None:
    view = to_view(THREE)
    assert view["rows"] == [
        ["a", 1, T0, 21.51, 55.3, 3.301],
        ["b", 1, T0 + 10, -0.05, None, 3.299],
        ["a", 2, T0 + 60_000, 21.49, 54.9, None],
    ]


def test_the_hub_store_keeps_the_readings_of_a_quantized_frame(tmp_path: Path) -> None:
    store = HubStore(tmp_path / "hub.db")
    try:
        result = store.write_frames([THREE], T0 + 120_000)
        assert result.readings == 7
        stored = store.conn.execute(
            "SELECT m.name, r.ts_ms, r.value FROM readings r JOIN metrics m ON m.id = r.metric_id"
            " ORDER BY m.name, r.ts_ms"
        ).fetchall()
    finally:
        store.close()
    assert stored == [
        ("battery_v", T0, 3.301), ("battery_v", T0 + 10, 3.299),
        ("humidity_pct", T0, 55.3), ("humidity_pct", T0 + 60_000, 54.9),
        ("temperature_c", T0, 21.51), ("temperature_c", T0 + 10, -0.05), ("temperature_c", T0 + 60_000, 21.49),
    ]  # fmt: skip


def test_the_hub_counts_only_measured_readings_with_out_of_range_timestamps() -> None:
    old = ReadingBatch.build(
        node="gw-1", session=1, seq=1, devices=["d"], metrics=["a", "b"], device_index=[0, 0], device_seq=[1, 2],
        ts_ms=[1_000, 2_000], values=[[1.0, None], [None, None]], value_scale=[0.01, 0.01],
    )  # fmt: skip
    hub = HubCore("f", "hub")
    hub.stamp(old, T0)
    assert hub.counters.ts_out_of_range == 1


def test_quantize_and_dequantize_agree_with_the_wire() -> None:
    steps = quantize(np.array([21.51, np.nan, -0.05]), 0.01)
    assert steps.tolist() == [2151, NOT_MEASURED, -5]
    back = dequantize(steps, 0.01)
    assert back[0] == 21.51 and math.isnan(back[1]) and back[2] == -0.05


def test_a_receiver_from_before_value_scale_refuses_a_quantized_frame_rather_than_misreading_it() -> None:
    """What an older decoder sees: no ``steps``, no ``value_scale``; its ``values`` cannot match."""
    body = body_of(THREE)
    del body["steps"], body["value_scale"]
    with pytest.raises(MessageError, match=r"at \$\.values: 0 columns for 3 metrics"):
        decode(cbor2.dumps(body))
