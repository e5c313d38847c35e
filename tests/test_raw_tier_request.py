"""raw.request.v1: the hub (an operator, an anomaly) asks a node for the raw readings of a window."""

from __future__ import annotations

import cbor2
import pytest

from pymonitor.messages import MessageError, RawRequest, decode, encode
from pymonitor.messages.requests import DAY_MS, RAW_WINDOW_MAX_MS

T0_MS = 1_767_225_600_000


def test_raw_request_round_trips_with_defaults() -> None:
    req = RawRequest(id="r1", from_ms=T0_MS, to_ms=T0_MS + 60_000, ts_ms=T0_MS)
    assert req.devices == [] and req.reason == ""
    assert decode(encode(req)) == req


@pytest.mark.parametrize("to_ms", [T0_MS, T0_MS - 1])
def test_raw_request_refuses_an_empty_or_backward_window_naming_from_ms(to_ms: int) -> None:
    with pytest.raises(MessageError) as err:
        RawRequest(id="r1", from_ms=T0_MS, to_ms=to_ms, ts_ms=T0_MS)
    assert err.value.path == "$.from_ms"


def test_raw_request_refuses_a_window_over_the_wire_limit_on_decode() -> None:
    frame = cbor2.dumps(
        {"t": "raw.request.v1", "id": "r1", "from_ms": T0_MS, "to_ms": T0_MS + RAW_WINDOW_MAX_MS + 1, "ts_ms": T0_MS}
    )
    with pytest.raises(MessageError) as err:
        decode(frame)
    assert err.value.tag == "raw.request.v1" and err.value.path == "$.to_ms"
    assert decode(cbor2.dumps({**cbor2.loads(frame), "to_ms": T0_MS + RAW_WINDOW_MAX_MS})).to_ms == T0_MS + 31 * DAY_MS


def test_a_node_can_enforce_a_shorter_window() -> None:
    req = RawRequest(id="r1", from_ms=T0_MS, to_ms=T0_MS + 2 * DAY_MS, ts_ms=T0_MS)
    req.check(2 * DAY_MS)
    with pytest.raises(MessageError, match="over the limit"):
        req.check(DAY_MS)


def test_raw_request_names_a_device_of_the_wrong_type() -> None:
    frame = cbor2.dumps({"t": "raw.request.v1", "id": "r1", "from_ms": 0, "to_ms": 1, "ts_ms": 0, "devices": ["a", 7]})
    with pytest.raises(MessageError) as err:
        decode(frame)
    assert err.value.path == "$.devices[1]"
