"""Wire format of config.desired.v1 and config.report.v1."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymonitor.messages import MessageError, decode, encode
from pymonitor.messages.config import ConfigDesired, ConfigReport

DESIRED = ConfigDesired(
    node="gw-1",
    version=4,
    hash="ab" * 32,
    doc={"node": {"name": "gw-1"}, "hub": {"raw_days": 3.5}},
    key_id="0123456789abcdef",
    issued_ms=1,
    expires_ms=2,
    seq=9,
    signature=b"\x01" * 64,
)


def test_desired_config_round_trips_with_its_signature():
    assert decode(encode(DESIRED)) == DESIRED


def test_report_round_trips_with_conflicts():
    report = ConfigReport(
        node="gw-1",
        version=4,
        hash="ab" * 32,
        status="rejected",
        ts_ms=5,
        reason="conflict",
        detail="1 conflict",
        conflicts=[{"path": "hub.raw_days", "base": 7.0, "local": 3.0, "remote": 5.0}],
    )
    assert decode(encode(report)) == report


def test_report_status_and_reason_are_checked():
    with pytest.raises(MessageError, match=r"\$.status: expected one of applied, rejected"):
        ConfigReport(node="n", version=1, hash="", status="maybe", ts_ms=0)
    with pytest.raises(MessageError, match=r"\$.reason: unknown refusal reason"):
        ConfigReport(node="n", version=1, hash="", status="rejected", ts_ms=0, reason="because")
    with pytest.raises(MessageError, match=r"\$.reason: a rejected config needs a reason"):
        ConfigReport(node="n", version=1, hash="", status="rejected", ts_ms=0)


def test_desired_version_zero_is_refused_on_decode():
    frame = cbor2.dumps({"t": "config.desired.v1", "node": "n", "version": 0, "hash": "", "doc": {}})
    with pytest.raises(MessageError, match=r"\$.version: expected a version >= 1"):
        decode(frame)


def test_desired_with_doc_of_wrong_type_is_refused():
    frame = cbor2.dumps({"t": "config.desired.v1", "node": "n", "version": 1, "hash": "", "doc": [1]})
    with pytest.raises(MessageError, match="config.desired.v1 at \\$.doc"):
        decode(frame)


@given(st.binary(max_size=200))
def test_garbage_frames_raise_only_message_error(data):
    try:
        decode(data)
    except MessageError:
        pass
