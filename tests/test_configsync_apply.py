"""Node-side apply: verify, check, merge, validate; a rejection changes nothing; the file is replaced whole."""

from __future__ import annotations

import dataclasses
import math
import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymonitor.actors.configsync import ConfigSyncError, ReplayGuard, generate_key, trusted_keys
from pymonitor.actors.configsync.apply import NodeConfigState, apply, rejected
from pymonitor.actors.configsync.canonical import content_hash
from pymonitor.actors.configsync.desired import desired_message, sign_desired
from pymonitor.actors.configsync.tomlfile import to_toml, write_config_file
from pymonitor.deploy.config import load_config
from pymonitor.messages import decode, encode

NOW = 1_800_000_000_000
HUB_KEY = generate_key()
TRUSTED = trusted_keys([HUB_KEY.public_key()])
LOCAL = {"node": {"name": "gw-1"}, "broker": {"url": "mqtt://hub:1883"}, "hub": {"raw_days": 7.0}}


def _desired(doc, version=1, node="gw-1", seq=None, key=HUB_KEY, issued=NOW, expires=NOW + 60_000):
    msg = desired_message(node, version, doc)
    return sign_desired(msg, key, issued_ms=issued, expires_ms=expires, seq=seq if seq is not None else version)


def _apply(msg, state=None, guard=None, **kw):
    state = state or NodeConfigState(local=LOCAL, base=LOCAL, base_version=0)
    return apply(msg, state, TRUSTED, NOW, replay=guard or ReplayGuard(), **kw)


def test_signed_valid_change_is_applied_and_reported_with_the_new_hash():
    remote = {**LOCAL, "hub": {"raw_days": 3.0}}
    result = _apply(_desired(remote))
    assert result.applied and result.changed
    assert result.state.local == remote and result.state.base == remote and result.state.base_version == 1
    assert result.config is not None and result.config.hub is not None and result.config.hub.raw_days == 3.0
    assert result.report.status == "applied" and result.report.hash == content_hash(remote)
    assert result.report.previous_version == 0
    assert decode(encode(result.report)) == result.report


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda m: dataclasses.replace(m, signature=b""), "unsigned"),
        (lambda m: sign_desired(m, generate_key(), issued_ms=NOW, expires_ms=NOW + 1, seq=1), "unknown_key"),
        (lambda m: dataclasses.replace(m, doc={**m.doc, "hub": {"raw_days": 0.0}}), "forged"),
        (lambda m: dataclasses.replace(m, node="gw-2"), "forged"),
        (lambda m: sign_desired(m, HUB_KEY, issued_ms=NOW - 10, expires_ms=NOW, seq=1), "stale"),
    ],
)
def test_signature_refusals_reject_and_change_nothing(tamper, reason):
    result = _apply(tamper(_desired({**LOCAL, "hub": {"raw_days": 3.0}})))
    assert not result.applied and not result.changed
    assert result.report.status == "rejected" and result.report.reason == reason
    assert result.state.local == LOCAL


def test_replayed_message_is_rejected():
    guard = ReplayGuard()
    msg = _desired({**LOCAL, "hub": {"raw_days": 3.0}}, version=2, seq=5)
    state = NodeConfigState(local=LOCAL, base=LOCAL, base_version=1)
    first = _apply(msg, state, guard)
    assert first.applied
    # a replay against the old state (e.g. after the node reverted its file by hand) is refused
    assert _apply(msg, state, guard).report.reason == "replayed"


def test_retained_message_redelivered_after_apply_is_a_no_op():
    guard = ReplayGuard()
    msg = _desired({**LOCAL, "hub": {"raw_days": 3.0}})
    first = _apply(msg, guard=guard)
    again = _apply(msg, first.state, guard)
    assert again.applied and not again.changed and again.state == first.state
    assert again.report.detail == "already applied"


def test_message_for_another_node_is_rejected():
    result = _apply(_desired({**LOCAL, "node": {"name": "gw-2"}}, node="gw-2"))
    assert result.report.reason == "wrong_node" and "this node is 'gw-1'" in result.report.detail


def test_hash_not_matching_the_doc_is_rejected():
    msg = dataclasses.replace(desired_message("gw-1", 1, LOCAL), hash="00" * 32)
    msg = sign_desired(msg, HUB_KEY, issued_ms=NOW, expires_ms=NOW + 1, seq=1)
    assert _apply(msg).report.reason == "hash_mismatch"


def test_version_not_newer_than_applied_is_rejected_as_outdated():
    state = NodeConfigState(local=LOCAL, base=LOCAL, base_version=4)
    result = _apply(_desired({**LOCAL, "hub": {"raw_days": 1.0}}, version=3), state)
    assert result.report.reason == "outdated" and result.report.previous_version == 4


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"broker": {"url": "mqtt://"}}, "broker.url"),
        ({"hub": {"raw_days": -1.0}}, "hub.raw_days"),
        ({"hub": {"rawdays": 1.0}}, "hub.rawdays"),
        ({"node": {"name": ""}}, "node.name"),
        ({"node": {"name": "gw-9"}}, "node.name"),
    ],
)
def test_invalid_result_is_rejected_with_the_field(change, field):
    result = _apply(_desired({**LOCAL, **change}))
    assert result.report.reason == "invalid"
    assert result.report.detail.startswith(f"{field}: ")
    assert result.state.local == LOCAL


def test_local_offline_edit_merges_with_the_hub_change():
    base = LOCAL
    local = {**LOCAL, "hub": {"raw_days": 7.0, "minute_days": 30.0}}
    remote = {**LOCAL, "broker": {"url": "mqtt://hub2:1883"}}
    result = _apply(_desired(remote, version=2), NodeConfigState(local=local, base=base, base_version=1))
    assert result.state.local == {**local, "broker": {"url": "mqtt://hub2:1883"}}
    assert result.report.hash == content_hash(result.state.local) != result.report.hash[:0] + content_hash(remote)


def test_conflict_under_node_wins_keeps_local_leaf_and_reports_it():
    local = {**LOCAL, "hub": {"raw_days": 1.0}}
    remote = {**LOCAL, "hub": {"raw_days": 3.0}}
    state = NodeConfigState(local=local, base=LOCAL, base_version=1)
    result = _apply(_desired(remote, version=2), state, policy="node-wins")
    assert result.applied and result.state.local["hub"]["raw_days"] == 1.0
    assert result.report.conflicts == [{"path": "hub.raw_days", "base": 7.0, "local": 1.0, "remote": 3.0}]
    assert "1 conflict(s) settled by node-wins" == result.report.detail


def test_conflict_under_refuse_rejects_and_keeps_local():
    local = {**LOCAL, "hub": {"raw_days": 1.0}}
    state = NodeConfigState(local=local, base=LOCAL, base_version=1)
    result = _apply(_desired({**LOCAL, "hub": {"raw_days": 3.0}}, version=2), state, policy="refuse")
    assert result.report.reason == "conflict" and result.state.local == local and result.state.base == LOCAL
    assert [c.path for c in result.conflicts] == ["hub.raw_days"]


def test_rejected_helper_reports_write_failures_for_the_shell():
    msg = _desired(LOCAL)
    result = rejected(msg, NodeConfigState(local={}), "write_failed", "disk full", NOW)
    assert result.report.node == "gw-1" and result.report.reason == "write_failed"


# ---------------------------------------------------------------- the config file


def test_written_file_loads_back_as_the_same_node_config(tmp_path):
    path = tmp_path / "node.toml"
    doc = {**LOCAL, "simulator": {"compression": "zstd", "devices": 10, "gateways": 2}, "clock": {"start_ms": None}}
    write_config_file(path, doc)
    config = load_config(path)
    assert config.node.name == "gw-1" and config.simulator is not None and config.simulator.compression == "zstd"
    assert config.clock.start_ms is None


def test_write_replaces_the_file_whole_and_keeps_its_mode(tmp_path):
    path = tmp_path / "node.toml"
    path.write_text('[node]\nname = "old"\n')
    path.chmod(0o640)
    write_config_file(path, LOCAL)
    assert tomllib.loads(path.read_text()) == LOCAL
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["node.toml"]


def test_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "node.toml"
    path.write_text('[node]\nname = "old"\n')
    with pytest.raises(ConfigSyncError, match="cannot be written to TOML"):
        write_config_file(path, {"node": {"name": object()}})
    assert path.read_text() == '[node]\nname = "old"\n'
    occupied = tmp_path / "conf.d"
    (occupied / "x").mkdir(parents=True)  # the rename onto a non-empty directory fails
    with pytest.raises(ConfigSyncError, match="conf.d: cannot write the new file"):
        write_config_file(occupied, LOCAL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conf.d", "node.toml"]  # no temp file left


def test_toml_writer_refuses_what_toml_cannot_hold():
    with pytest.raises(ConfigSyncError, match=r"a.b: integer .* does not fit"):
        to_toml({"a": {"b": 2**70}})
    with pytest.raises(ConfigSyncError, match="key 1 is not a string"):
        to_toml({1: 2})  # type: ignore[dict-item]


def test_toml_writer_handles_special_floats_and_odd_keys():
    text = to_toml({"x": {"a b": math.inf, "n": -math.inf, "q": "tab\there \x7f", "l": [{"k": 1, "z": None}]}})
    back = tomllib.loads(text)["x"]
    assert back["a b"] == math.inf and back["n"] == -math.inf and back["q"] == "tab\there \x7f"
    assert back["l"] == [{"k": 1}]
    assert math.isnan(tomllib.loads(to_toml({"v": math.nan}))["v"])


scalars = st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text()
toml_docs = st.recursive(
    st.dictionaries(st.text(min_size=1), scalars | st.lists(scalars, max_size=3), max_size=3),
    lambda c: st.dictionaries(st.text(min_size=1), c | scalars, max_size=3),
    max_leaves=10,
)


@given(toml_docs)
def test_toml_writer_round_trips_through_tomllib(doc):
    assert tomllib.loads(to_toml(doc)) == doc


def test_redelivered_rejected_message_gets_the_same_answer_not_replayed():
    guard = ReplayGuard()
    msg = _desired({**LOCAL, "hub": {"raw_days": -1.0}})
    first = _apply(msg, guard=guard)
    assert first.report.reason == "invalid" and first.state.last_rejection is not None
    again = _apply(msg, first.state, guard)
    assert (again.report.reason, again.report.detail) == (first.report.reason, first.report.detail)
    fixed = _apply(_desired({**LOCAL, "hub": {"raw_days": 1.0}}, version=2), first.state, guard)
    assert fixed.applied and fixed.state.last_rejection is None


def test_signature_refusals_are_not_remembered():
    result = _apply(dataclasses.replace(_desired(LOCAL), signature=b""))
    assert result.state.last_rejection is None
