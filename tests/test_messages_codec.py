"""The CBOR codec of pymonitor.messages: round trips, errors that say where, fuzzing, registry rules.

Registration is global for the whole test session, so every throwaway message class defined here
uses a unique ``test.*`` tag, and "every tag" means every tag registered by a ``pymonitor.`` module.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import math
import struct
import uuid
from decimal import Decimal
from typing import Any

import cbor2
import pytest
from conftest import product_tags
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pymonitor.messages import (
    MAX_FRAME_BYTES,
    SEVERITIES,
    CborValue,
    Command,
    CommandAck,
    DeadLetter,
    DeliveryAck,
    Event,
    MessageError,
    NodeBirth,
    NodeDeath,
    ReadingBatch,
    SummaryBatch,
    decode,
    decode_as,
    encode,
    message,
    registered_tags,
    to_ranges,
)
from pymonitor.messages.columns import (
    pack_deltas,
    pack_floats,
    pack_indexes,
    unpack_deltas,
    unpack_floats,
    unpack_indexes,
)
from pymonitor.messages.config import CONFIG_REPORT_STATUSES, REFUSAL_REASONS, ConfigDesired, ConfigReport
from pymonitor.messages.packing import PackedFrame
from pymonitor.messages.registry import spec_for_tag
from pymonitor.messages.requests import RAW_WINDOW_MAX_MS, RawRequest
from pymonitor.messages.signed import SignedCommand
from pymonitor.messages.validate import INT_MAX, INT_MIN, MAX_NESTING

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
DELTA_SAFE_MIN = -(2**62)
DELTA_SAFE_MAX = 2**62 - 1  # any two values in this range differ by at most INT64_MAX

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROUND_TRIP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def unique_tag(what: str) -> str:
    return f"test.{what}_{uuid.uuid4().hex}.v1"


def frame_of(body: dict[str, Any]) -> bytes:
    return cbor2.dumps(body)


def body_of(msg: object) -> dict[str, Any]:
    body = cbor2.loads(encode(msg))
    assert isinstance(body, dict)
    return body


def assert_refused(frame: bytes, *fragments: str) -> MessageError:
    with pytest.raises(MessageError) as info:
        decode(frame)
    for fragment in fragments:
        assert fragment in str(info.value)
    return info.value


# ---------------------------------------------------------------- strategies

texts = st.text(max_size=12)
int64s = st.integers(INT64_MIN, INT64_MAX)
seq_ints = st.integers(0, INT64_MAX)  # frame session/seq: signed 64-bit, never negative
wire_ints = st.integers(INT_MIN, INT_MAX)
delta_safe_ints = st.integers(DELTA_SAFE_MIN, DELTA_SAFE_MAX)
finite_or_inf_floats = st.floats(allow_nan=False)

cbor_scalars = st.none() | st.booleans() | wire_ints | finite_or_inf_floats | texts | st.binary(max_size=12)
cbor_values: st.SearchStrategy[CborValue] = st.recursive(
    cbor_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)
cbor_maps = st.dictionaries(texts, cbor_values, max_size=4)
quantum_scales = st.sampled_from([0.001, 0.01, 0.1, 0.5, 1.0, 2.5, 1e-9]) | st.floats(1e-6, 1e6)


def quantizable(scale: float) -> st.SearchStrategy[float]:
    """Values whose step count fits int64: whole steps (up to 2**50 of them) or anything in between."""
    return st.integers(-(2**50), 2**50).map(lambda q: q * scale) | st.floats(-1e12 * scale, 1e12 * scale)


@st.composite
def reading_batches(draw: st.DrawFn) -> ReadingBatch:
    devices = draw(st.lists(texts, max_size=5))
    metrics = draw(st.lists(texts, max_size=4))
    rows = draw(st.integers(0, 16)) if devices else 0

    def column(elements: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(elements, min_size=rows, max_size=rows))

    scales = draw(st.none() | st.lists(quantum_scales, min_size=len(metrics), max_size=len(metrics)))
    if scales:  # int64 steps: values on the grid of their scale or between steps (rounded), or not measured
        values = [column(st.none() | st.just(math.nan) | quantizable(scale)) for scale in scales]
    else:
        values = [column(st.none() | st.floats()) for _ in metrics]
    return ReadingBatch.build(
        node=draw(texts),
        session=draw(seq_ints),
        seq=draw(seq_ints),
        devices=devices,
        metrics=metrics,
        device_index=column(st.integers(0, len(devices) - 1)) if devices else [],
        device_seq=column(delta_safe_ints),
        ts_ms=column(delta_safe_ints),
        values=values,
        backfill=draw(st.booleans()),
        value_scale=scales,
    )


@st.composite
def delivery_acks(draw: st.DrawFn) -> DeliveryAck:
    pairs = draw(st.lists(st.tuples(int64s, int64s), max_size=6))
    return DeliveryAck(
        node=draw(texts),
        session=draw(int64s),
        ranges=[[min(a, b), max(a, b)] for a, b in pairs],
        hub_ts_ms=draw(int64s),
    )


@st.composite
def summary_batches(draw: st.DrawFn) -> SummaryBatch:
    """Windows the summarizer closes over a few random samples of two devices (float64 or quantized)."""
    from pymonitor.actors.summary.summarizer import Summarizer, to_batch

    n = draw(st.integers(0, 8))
    ts = sorted(draw(st.lists(st.integers(0, 10**10), min_size=n, max_size=n)))
    scale = draw(st.none() | st.just(0.01))
    floats = st.floats(-1e6, 1e6) if scale is None else st.integers(-(10**6), 10**6).map(lambda k: k / 100)
    batch = ReadingBatch.build(
        node="gw", session=1, seq=1, devices=["d0", "d1"], metrics=["m"],
        device_index=draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), device_seq=list(range(n)),
        ts_ms=ts, values=[draw(st.lists(floats, min_size=n, max_size=n))],
        value_scale=None if scale is None else [scale],
    )  # fmt: skip
    core = Summarizer(node="gw", window_ms=draw(st.sampled_from([60_000, 3_600_000])))
    core.add(batch, 2**62)
    out = core.flush() or to_batch("gw", 0, 0, core.window_ms, core.alpha, [], {})
    return dataclasses.replace(out, node=draw(texts), session=draw(seq_ints), seq=draw(seq_ints))


STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "reading.batch.v1": reading_batches(),
    "summary.batch.v1": summary_batches(),
    "raw.request.v1": st.integers(-(2**62), 2**62).flatmap(
        lambda start: st.builds(
            RawRequest,
            id=texts,
            from_ms=st.just(start),
            to_ms=st.integers(start + 1, start + RAW_WINDOW_MAX_MS),
            ts_ms=int64s,
            devices=st.lists(texts, max_size=4),
            reason=texts,
        )
    ),
    "frame.packed.v1": st.builds(
        PackedFrame, codec=st.sampled_from(["zstd", "zlib"]), size=st.integers(0, 2**31), body=st.binary(max_size=64)
    ),
    "event.v1": st.builds(
        Event,
        node=texts,
        ts_ms=int64s,
        kind=texts,
        severity=st.sampled_from(SEVERITIES),
        message=texts,
        source=texts,
        value=st.none() | finite_or_inf_floats,
        labels=st.dictionaries(texts, texts, max_size=4),
        details=cbor_maps,
    ),
    "dead.letter.v1": st.builds(
        DeadLetter,
        node=texts,
        ts_ms=int64s,
        topic=texts,
        reason=texts,
        payload=st.binary(max_size=64),
        payload_size=wire_ints,
    ),
    "command.v1": st.builds(Command, id=texts, name=texts, ts_ms=int64s, args=cbor_maps, issuer=texts),
    "ack.command.v1": st.builds(
        CommandAck,
        node=texts,
        id=texts,
        ts_ms=int64s,
        status=st.sampled_from(["ok", "refused", "failed"]),
        detail=texts,
        result=cbor_maps,
    ),
    "ack.delivery.v1": delivery_acks(),
    "node.birth.v1": st.builds(
        NodeBirth,
        node=texts,
        session=wire_ints,
        ts_ms=int64s,
        role=texts,
        version=texts,
        connects=wire_ints,
        devices=wire_ints,
        capabilities=st.lists(texts, max_size=4),
    ),
    "node.death.v1": st.builds(NodeDeath, node=texts, session=wire_ints, reason=texts, ts_ms=st.none() | int64s),
    "command.signed.v1": st.builds(
        SignedCommand, body=st.binary(min_size=1, max_size=64), key_id=texts, issued_ms=int64s, expires_ms=int64s,
        seq=wire_ints, signature=st.binary(max_size=64),
    ),
    "config.desired.v1": st.builds(
        ConfigDesired, node=texts, version=st.integers(1, 2**62), hash=texts, doc=cbor_maps, key_id=texts,
        issued_ms=int64s, expires_ms=int64s, seq=wire_ints, signature=st.binary(max_size=64),
    ),
    "config.report.v1": st.sampled_from(CONFIG_REPORT_STATUSES).flatmap(
        lambda status: st.builds(
            ConfigReport, node=texts, version=wire_ints, hash=texts, status=st.just(status), ts_ms=int64s,
            reason=st.sampled_from([r for r in REFUSAL_REASONS if r or status != "rejected"]), detail=texts,
            previous_version=wire_ints, conflicts=st.lists(cbor_maps, max_size=3),
            failed_checks=st.lists(texts, max_size=3),
        )
    ),
}  # fmt: skip

FUZZ_BASE_BATCH = ReadingBatch.build(
    node="gw-7",
    session=3,
    seq=99,
    devices=["d0", "d1", "d2"],
    metrics=["volts", "temp_c"],
    device_index=[0, 1, 2, 1],
    device_seq=[5, 9, 1, 10],
    ts_ms=[1_767_225_600_000, 1_767_225_600_010, 1_767_225_600_020, 1_767_225_600_030],
    values=[[3.7, 3.6, None, 3.5], [20.0, math.nan, 21.0, 22.0]],
)

any_message = st.sampled_from(sorted(STRATEGIES)).flatmap(lambda tag: STRATEGIES[tag])


# ---------------------------------------------------------------- round trips


def test_every_registered_tag_has_a_round_trip_strategy() -> None:
    assert set(product_tags()) == set(STRATEGIES)


@pytest.mark.parametrize("tag", sorted(STRATEGIES))
def test_strategy_builds_messages_of_its_tag(tag: str) -> None:
    spec = spec_for_tag(tag)
    assert spec is not None

    @given(STRATEGIES[tag])
    @settings(max_examples=5, deadline=None)
    def check(msg: object) -> None:
        assert type(msg) is spec.cls

    check()


@pytest.mark.parametrize("tag", sorted(STRATEGIES))
def test_decode_of_encode_gives_the_same_message(tag: str) -> None:
    @given(STRATEGIES[tag])
    @ROUND_TRIP
    def check(msg: object) -> None:
        frame = encode(msg)
        back = decode(frame)
        assert back == msg
        assert encode(back) == frame
        assert cbor2.loads(frame)["t"] == tag

    check()


@given(reading_batches())
@ROUND_TRIP
def test_reading_batch_columns_survive_the_wire(batch: ReadingBatch) -> None:
    cols = decode_as(encode(batch), ReadingBatch).columns()
    want = batch.columns()
    assert list(cols.device_index) == list(want.device_index)
    assert cols.device_seq == want.device_seq
    assert cols.ts_ms == want.ts_ms
    assert [col.tobytes() for col in cols.values] == [col.tobytes() for col in want.values]  # type: ignore[attr-defined]


def test_reading_batch_build_packs_plain_columns() -> None:
    batch = ReadingBatch.build(
        node="gw-1",
        session=7,
        seq=42,
        devices=["a", "b"],
        metrics=["volts", "temp_c"],
        device_index=[0, 1, 0],
        device_seq=[10, 5, 11],
        ts_ms=[1_767_225_600_000, 1_767_225_600_500, 1_767_225_601_000],
        values=[[3.7, None, 3.6], [21.5, 22.0, math.nan]],
    )
    cols = decode_as(encode(batch), ReadingBatch).columns()
    assert batch.rows == 3
    assert list(cols.device_index) == [0, 1, 0]
    assert cols.device_seq == [10, 5, 11]
    assert cols.ts_ms == [1_767_225_600_000, 1_767_225_600_500, 1_767_225_601_000]
    volts, temps = (list(col) for col in cols.values)
    assert volts[0] == 3.7
    assert math.isnan(volts[1])
    assert volts[2] == 3.6
    assert temps[:2] == [21.5, 22.0]
    assert math.isnan(temps[2])
    assert batch.reading_count() == 4


@given(st.floats(allow_nan=True) | st.just(math.nan))
@settings(max_examples=50, deadline=None)
def test_event_value_nan_survives_as_nan(value: float) -> None:
    event = Event(node="n", ts_ms=1, kind="k", severity="info", message="m", value=value)
    frame = encode(event)
    back = decode_as(frame, Event)
    assert back.value is not None
    assert math.isnan(back.value) == math.isnan(value)
    if not math.isnan(value):
        assert back.value == value
    assert encode(back) == frame


def test_int_that_fits_a_float_is_read_as_float() -> None:
    body = body_of(Event(node="n", ts_ms=1, kind="k", severity="info", message="m"))
    back = decode_as(frame_of({**body, "value": 3}), Event)
    assert back.value == 3.0
    assert type(back.value) is float


def test_64_bit_boundaries_are_accepted() -> None:
    for session in (INT_MIN, INT_MAX):
        death = NodeDeath(node="n", session=session, reason="shutdown")
        assert decode(encode(death)) == death


# ---------------------------------------------------------------- errors that say where


def test_unknown_tag_is_refused_at_t() -> None:
    assert_refused(frame_of({"t": "no.such.thing.v1", "node": "n"}), "at $.t", "unknown message tag 'no.such.thing.v1'")


def test_missing_tag_is_refused_at_t() -> None:
    assert_refused(frame_of({"node": "n"}), "at $.t", "expected str")


def test_missing_required_field_names_tag_and_path() -> None:
    body = body_of(FUZZ_BASE_BATCH)
    del body["node"]
    assert_refused(frame_of(body), "reading.batch.v1 at $.node: missing required field")


def test_missing_field_with_default_takes_the_default() -> None:
    death = NodeDeath(node="n", session=1, reason="connection lost")
    body = body_of(death)
    del body["ts_ms"]
    assert decode(frame_of(body)) == death
    batch = ReadingBatch.build(
        node="n", session=1, seq=1, devices=[], metrics=[], device_index=[], device_seq=[], ts_ms=[], values=[]
    )
    body = body_of(batch)
    del body["backfill"]
    assert decode_as(frame_of(body), ReadingBatch).backfill is False


def test_wrong_type_deep_in_a_list_names_the_element() -> None:
    body = body_of(DeliveryAck(node="n", session=1, ranges=[[1, 2]], hub_ts_ms=5))
    body["ranges"] = [[1, "2"]]
    assert_refused(frame_of(body), "ack.delivery.v1 at $.ranges[0][1]: expected int, got str")


def test_bool_is_not_an_int() -> None:
    body = body_of(NodeDeath(node="n", session=1, reason="x", ts_ms=1))
    assert_refused(frame_of({**body, "ts_ms": True}), "node.death.v1 at $.ts_ms: expected int, got bool")


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, 2**200])
def test_int_beyond_64_bits_is_refused(value: int) -> None:
    body = body_of(NodeDeath(node="n", session=1, reason="x"))
    assert_refused(frame_of({**body, "session": value}), "node.death.v1 at $.session", "does not fit in 64 bits")


def test_int_beyond_64_bits_inside_a_cbor_value_is_refused() -> None:
    body = body_of(Command(id="c1", name="reboot", ts_ms=1))
    assert_refused(frame_of({**body, "args": {"n": [1, 2**70]}}), "command.v1 at $.args.n[1]", "64 bits")


def test_frame_longer_than_max_bytes_is_refused_before_parsing() -> None:
    frame = encode(NodeDeath(node="n", session=1, reason="x"))
    assert decode(frame, max_bytes=len(frame)) == NodeDeath(node="n", session=1, reason="x")
    with pytest.raises(MessageError, match=rf"frame of {len(frame)} bytes exceeds the limit of {len(frame) - 1}"):
        decode(frame, max_bytes=len(frame) - 1)
    with pytest.raises(MessageError, match="exceeds the limit"):
        decode(b"\x00" * (MAX_FRAME_BYTES + 1))


@pytest.mark.parametrize("top", [[1, 2], 5, "t", b"t", None, 1.5])
def test_top_level_that_is_not_a_map_is_refused(top: object) -> None:
    assert_refused(cbor2.dumps(top), "at $:", "expected a map with a 't' tag", f"got {type(top).__name__}")


def test_not_cbor_at_all_is_refused() -> None:
    assert_refused(b"", "not a CBOR frame")
    assert_refused(b"\xff", "not a CBOR frame")
    assert_refused(encode(NodeDeath(node="n", session=1, reason="x"))[:-1], "not a CBOR frame")


def test_non_str_key_in_a_cbor_value_map_is_refused() -> None:
    body = body_of(Command(id="c1", name="set", ts_ms=1))
    assert_refused(frame_of({**body, "args": {"a": {1: "x"}}}), "command.v1 at $.args.a: map keys must be str, got int")
    assert_refused(frame_of({**body, "args": {2: "x"}}), "command.v1 at $.args: map keys must be str, got int")
    body = body_of(Event(node="n", ts_ms=1, kind="k", severity="info", message="m"))
    assert_refused(frame_of({**body, "labels": {b"k": "v"}}), "event.v1 at $.labels: map keys must be str, got bytes")


def test_cbor_value_nested_too_deep_is_refused() -> None:
    deep: Any = 1
    for _ in range(MAX_NESTING + 2):
        deep = [deep]
    body = body_of(Command(id="c1", name="set", ts_ms=1))
    assert_refused(frame_of({**body, "args": {"a": deep}}), "command.v1 at $.args.a[0]", "nested deeper")


def test_datetime_semantic_tag_is_refused_where_a_str_is_expected() -> None:
    when = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    body = body_of(Event(node="n", ts_ms=1, kind="k", severity="info", message="m"))
    assert cbor2.dumps(when)[0] == 0xC0  # tag 0: a datetime string
    assert_refused(frame_of({**body, "message": when}), "event.v1 at $.message: expected str, got datetime")
    epoch = cbor2.CBORTag(1, 1_767_225_600)  # tag 1: seconds since the epoch
    assert_refused(frame_of({**body, "message": epoch}), "event.v1 at $.message: expected str, got datetime")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC), "datetime"),
        (Decimal("1.5"), "Decimal"),
        ({1, 2}, "set"),
        (uuid.UUID(int=1), "UUID"),
    ],
)
def test_semantic_tags_are_refused_inside_cbor_values(value: object, shown: str) -> None:
    body = body_of(Event(node="n", ts_ms=1, kind="k", severity="info", message="m"))
    assert_refused(
        frame_of({**body, "details": {"x": value}}),
        "event.v1 at $.details.x: expected a CBOR-native value",
        f"got {shown}",
    )


def test_decimal_is_not_a_float() -> None:
    body = body_of(Event(node="n", ts_ms=1, kind="k", severity="info", message="m"))
    assert_refused(frame_of({**body, "value": Decimal("1.5")}), "event.v1 at $.value: expected float, got Decimal")


def test_unknown_semantic_tag_is_refused() -> None:
    body = body_of(NodeDeath(node="n", session=1, reason="x"))
    assert_refused(frame_of({**body, "reason": cbor2.CBORTag(999, "x")}))


def test_unknown_semantic_tag_reason_names_the_tag() -> None:
    body = body_of(NodeDeath(node="n", session=1, reason="x"))
    assert_refused(frame_of({**body, "reason": cbor2.CBORTag(999, "x")}), "CBOR tag 999 is not allowed")


def test_reading_batch_with_short_ts_column_is_refused_at_ts_ms() -> None:
    batch = ReadingBatch.build(
        node="n", session=1, seq=1, devices=["d"], metrics=[], device_index=[0, 0], device_seq=[1, 2],
        ts_ms=[10, 20], values=[],
    )  # fmt: skip
    body = body_of(batch)
    body["ts_ms"] = pack_deltas([10])
    assert_refused(frame_of(body), "reading.batch.v1 at $.ts_ms", "do not hold 2 rows")


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"device_seq": [1]}, "$.device_seq"),
        ({"device_index": [0]}, "$.device_index"),
        ({"values": [[1.0]]}, "$.values[0]"),
        ({"values": []}, "$.values"),
    ],
)
def test_reading_batch_with_inconsistent_columns_is_refused(change: dict[str, Any], path: str) -> None:
    columns: dict[str, Any] = {"device_index": [0, 0], "device_seq": [1, 2], "ts_ms": [10, 20], "values": [[1.0, 2.0]]}
    columns.update(change)
    with pytest.raises(MessageError) as info:
        ReadingBatch.build(node="n", session=1, seq=1, devices=["d"], metrics=["m"], **columns)
    assert info.value.path == path
    assert f"at {path}:" in str(info.value)


def test_reading_batch_with_negative_rows_is_refused() -> None:
    body = body_of(FUZZ_BASE_BATCH)
    assert_refused(frame_of({**body, "rows": -1}), "reading.batch.v1 at $.rows: must not be negative")


def test_reading_batch_device_index_out_of_range_is_refused() -> None:
    with pytest.raises(MessageError, match=r"at \$\.device_index: index beyond the 2 devices"):
        ReadingBatch.build(
            node="n", session=1, seq=1, devices=["a", "b"], metrics=[], device_index=[0, 2], device_seq=[1, 1],
            ts_ms=[1, 2], values=[],
        )  # fmt: skip
    batch = ReadingBatch.build(
        node="n", session=1, seq=1, devices=["a", "b"], metrics=[], device_index=[0, 1], device_seq=[1, 1],
        ts_ms=[1, 2], values=[],
    )  # fmt: skip
    body = body_of(batch)
    assert_refused(frame_of({**body, "devices": ["a"]}), "reading.batch.v1 at $.device_index", "beyond the 1 devices")


@pytest.mark.parametrize("severity", ["fatal", "", "INFO"])
def test_event_with_unknown_severity_is_refused(severity: str) -> None:
    body = body_of(Event(node="n", ts_ms=1, kind="k", severity="info", message="m"))
    assert_refused(frame_of({**body, "severity": severity}), "event.v1 at $.severity", f"got {severity!r}")
    with pytest.raises(MessageError, match=r"at \$\.severity"):
        Event(node="n", ts_ms=1, kind="k", severity=severity, message="m")


@pytest.mark.parametrize("pair", [[3, 1], [1], [1, 2, 3], []])
def test_delivery_ack_range_must_be_first_then_last(pair: list[int]) -> None:
    body = body_of(DeliveryAck(node="n", session=1, ranges=[[0, 0]], hub_ts_ms=1))
    assert_refused(frame_of({**body, "ranges": [[0, 0], pair]}), "ack.delivery.v1 at $.ranges[1]", "first <= last")


def test_decode_as_refuses_another_message_class() -> None:
    frame = encode(NodeDeath(node="n", session=1, reason="x"))
    with pytest.raises(MessageError, match=r"at \$\.t: expected a node\.birth\.v1 frame, got NodeDeath"):
        decode_as(frame, NodeBirth)


def test_encode_refuses_unregistered_objects_and_unencodable_values() -> None:
    with pytest.raises(MessageError, match="not a registered message"):
        encode(object())
    with pytest.raises(MessageError, match=r"command\.v1 at \$: cannot encode"):
        encode(Command(id="c", name="n", ts_ms=1, args={"x": object()}))  # type: ignore[dict-item]


# ---------------------------------------------------------------- fuzzing: only MessageError, ever

ANY_TAG = st.sampled_from(sorted(STRATEGIES))


def decode_or_refuse(frame: bytes) -> None:
    try:
        msg = decode(frame)
    except MessageError:
        return  # refused, as it should be: anything else propagates and fails the test
    assert type(msg).__module__.startswith("pymonitor.")


@given(st.binary(max_size=256))
@FUZZ
def test_arbitrary_bytes_only_ever_raise_message_error(frame: bytes) -> None:
    decode_or_refuse(frame)


FUZZ_BASE = encode(FUZZ_BASE_BATCH)


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    frame = bytearray(FUZZ_BASE)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "overwrite"]))
        pos = draw(st.integers(0, max(0, len(frame) - 1)))
        if op == "flip" and frame:
            frame[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del frame[pos:]
        elif op == "insert":
            frame[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del frame[pos : pos + draw(st.integers(1, 8))]
        elif op == "overwrite" and frame:
            frame[pos] = draw(st.integers(0, 255))
    return bytes(frame)


@given(mutated_frames())
@FUZZ
def test_mutated_reading_batch_frames_only_ever_raise_message_error(frame: bytes) -> None:
    decode_or_refuse(frame)


@st.composite
def well_formed_maps_with_wrong_values(draw: st.DrawFn) -> bytes:
    tag = draw(ANY_TAG)
    spec = spec_for_tag(tag)
    assert spec is not None
    body = body_of(draw(STRATEGIES[tag]))
    for name in draw(st.lists(st.sampled_from([f.name for f in spec.fields]), max_size=3)):
        if draw(st.booleans()):
            body[name] = draw(cbor_values)
        else:
            body.pop(name, None)
    return frame_of(body)


@given(well_formed_maps_with_wrong_values())
@FUZZ
def test_frames_with_wrong_field_values_only_ever_raise_message_error(frame: bytes) -> None:
    decode_or_refuse(frame)


# ---------------------------------------------------------------- evolution and the registry


@given(any_message, st.dictionaries(st.text(min_size=1).filter(lambda k: k != "t"), cbor_values, max_size=3))
@settings(max_examples=50, deadline=None)
def test_frame_with_extra_unknown_fields_still_decodes(msg: object, extra: dict[str, Any]) -> None:
    body = body_of(msg)
    known = set(body)
    body.update({f"future_{k}": v for k, v in extra.items() if f"future_{k}" not in known})
    assert decode(frame_of(body)) == msg


def test_registry_refuses_a_duplicate_tag() -> None:
    tag = unique_tag("dup")

    @message(tag)
    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class First:
        a: int

    with pytest.raises(ValueError, match="already registered by First"):

        @message(tag)
        @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
        class Second:
            a: int

    spec = spec_for_tag(tag)
    assert spec is not None
    assert spec.cls is First
    assert decode(encode(First(a=1))) == First(a=1)


def test_registry_refuses_a_product_tag_again() -> None:
    with pytest.raises(ValueError, match="already registered by DeliveryAck"):

        @message("ack.delivery.v1")
        @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
        class Impostor:
            node: str

    spec = spec_for_tag("ack.delivery.v1")
    assert spec is not None
    assert spec.cls is DeliveryAck


@pytest.mark.parametrize(
    "tag",
    ["", "reading", "reading.batch", "reading.batch.v0", "reading.batch.V1", "Reading.batch.v1", "1reading.v1",
     "reading..batch.v1", "reading batch.v1", "reading/batch.v1", "reading.batch.v1.", "reading.batch.v01"],
)  # fmt: skip
def test_registry_refuses_a_badly_formed_tag(tag: str) -> None:
    with pytest.raises(ValueError, match=r"must look like 'kind\.name\.v1'"):
        message(tag)


def test_registry_refuses_a_tag_with_a_trailing_newline() -> None:
    with pytest.raises(ValueError, match="must look like"):
        message(unique_tag("newline") + "\n")


def test_registry_refuses_a_non_frozen_or_unslotted_dataclass_or_a_plain_class() -> None:
    with pytest.raises(TypeError, match="must be frozen=True, slots=True"):

        @message(unique_tag("mutable"))
        @dataclasses.dataclass(slots=True, kw_only=True)
        class Mutable:
            a: int

    with pytest.raises(TypeError, match="must be frozen=True, slots=True"):

        @message(unique_tag("unslotted"))
        @dataclasses.dataclass(frozen=True, kw_only=True)
        class Unslotted:
            a: int

    with pytest.raises(TypeError, match="must decorate a dataclass"):

        @message(unique_tag("plain"))
        class Plain:
            a: int


def test_registry_refuses_the_reserved_field_name_t() -> None:
    with pytest.raises(TypeError, match="'t' is reserved"):

        @message(unique_tag("reserved"))
        @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
        class Reserved:
            t: str


@pytest.mark.parametrize(
    "hint",
    [set[int], tuple[int, int], datetime.datetime, int | str, dict[int, str], list, Any, Decimal, bytearray],
    ids=repr,
)
def test_registry_refuses_an_unsupported_field_type(hint: object) -> None:
    cls = dataclasses.make_dataclass("Unsupported", [("a", hint)], frozen=True, slots=True, kw_only=True)
    tag = unique_tag("unsupported")
    with pytest.raises(TypeError, match="unsupported message field type"):
        message(tag)(cls)
    assert spec_for_tag(tag) is None


def test_registered_tags_are_sorted_and_include_every_product_message() -> None:
    tags = registered_tags()
    assert tags == sorted(tags)
    assert {"reading.batch.v1", "event.v1", "command.v1", "ack.delivery.v1", "node.birth.v1"} <= set(tags)


# ---------------------------------------------------------------- columns


@given(st.lists(delta_safe_ints, max_size=64))
@settings(max_examples=200, deadline=None)
def test_deltas_round_trip(values: list[int]) -> None:
    packed = pack_deltas(values)
    assert len(packed) == 8 * len(values)
    assert unpack_deltas(packed) == values


def test_deltas_of_a_regular_series_are_repeated_small_values() -> None:
    packed = pack_deltas([1_000, 1_010, 1_020, 1_030])
    assert struct.unpack("<4q", packed) == (1_000, 10, 10, 10)
    assert pack_deltas([]) == b""
    assert unpack_deltas(b"") == []


@given(st.lists(st.integers(0, 2**32 - 1), max_size=64))
@settings(max_examples=200, deadline=None)
def test_indexes_round_trip(values: list[int]) -> None:
    packed = pack_indexes(values)
    assert len(packed) == 4 * len(values)
    assert list(unpack_indexes(packed)) == values


@given(st.lists(st.none() | st.floats(), max_size=64))
@settings(max_examples=200, deadline=None)
def test_floats_round_trip_with_none_as_nan(values: list[float | None]) -> None:
    packed = pack_floats(values)
    assert len(packed) == 8 * len(values)
    back = list(unpack_floats(packed))
    assert len(back) == len(values)
    for got, want in zip(back, values, strict=True):
        if want is None or math.isnan(want):
            assert math.isnan(got)
        else:
            assert struct.pack("<d", got) == struct.pack("<d", want)  # -0.0 stays -0.0


# ---------------------------------------------------------------- delivery ranges


@given(st.lists(int64s, max_size=40) | st.lists(st.integers(-20, 20), max_size=40))
@settings(max_examples=200, deadline=None)
def test_to_ranges_are_sorted_disjoint_and_cover_exactly_the_seqs(seqs: list[int]) -> None:
    ranges = to_ranges(seqs)
    for first, last in ranges:
        assert first <= last
    for (_, last), (first, _) in itertools.pairwise(ranges):
        assert first > last + 1  # adjacent runs are merged
    assert DeliveryAck(node="n", session=1, ranges=ranges, hub_ts_ms=0).seqs() == sorted(set(seqs))


def test_to_ranges_collapses_runs() -> None:
    assert to_ranges([]) == []
    assert to_ranges([5, 3, 4, 4, 9, 11, 10, -1]) == [[-1, -1], [3, 5], [9, 11]]
    assert DeliveryAck(node="n", session=1, ranges=[[3, 5], [9, 9]], hub_ts_ms=0).seqs() == [3, 4, 5, 9]


@given(delivery_acks())
@settings(max_examples=100, deadline=None)
def test_ranges_survive_the_wire(ack: DeliveryAck) -> None:
    assert decode_as(encode(ack), DeliveryAck).ranges == ack.ranges
