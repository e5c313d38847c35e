"""Node-side persistence of remote-config state, and the hub-side planning and signing of versions."""

from __future__ import annotations

import stat

import cbor2
import pytest

from pymonitor.actors.configsync import ConfigSyncError, ConfigValidationError, ReplayGuard, generate_key, trusted_keys
from pymonitor.actors.configsync.apply import NodeConfigState, Rejection, apply
from pymonitor.actors.configsync.desired import DesiredState, sent_target
from pymonitor.actors.configsync.files import replace_file
from pymonitor.actors.configsync.history import rollback
from pymonitor.actors.configsync.hub import DESIRED_TTL_MS, plan_desired, signed_for_node
from pymonitor.actors.configsync.node_state import load_node_state, save_node_state
from pymonitor.messages import decode, encode

NOW = 1_800_000_000_000
LOCAL = {"node": {"name": "gw-1"}, "broker": {"url": "mqtt://hub:1883"}}
SITE = {"broker": {"url": "mqtt://site:1883"}, "hub": {"raw_days": 7.0}}


def test_absent_state_file_is_the_never_configured_state(tmp_path):
    state, guard = load_node_state(tmp_path / "config.state", LOCAL)
    assert state == NodeConfigState(local=LOCAL) and guard.snapshot() == {}


def test_state_round_trips_with_replay_window_and_last_rejection(tmp_path):
    path = tmp_path / "config.state"
    guard = ReplayGuard()
    guard.record("k1", 41)
    memo = Rejection(version=3, hash="ab", reason="invalid", detail="hub.raw_days: expected float >= 0.0")
    save_node_state(path, NodeConfigState(local=LOCAL, base=SITE, base_version=2, last_rejection=memo), guard)
    state, restored = load_node_state(path, LOCAL)
    assert (state.base, state.base_version, state.last_rejection) == (SITE, 2, memo)
    assert restored.snapshot() == {"k1": 41}
    save_node_state(path, NodeConfigState(local=LOCAL), ReplayGuard())
    assert load_node_state(path, LOCAL)[0].last_rejection is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe garbage", "not a node config state file"),
        (cbor2.dumps({"format": 99}), "of format 1"),
        (cbor2.dumps({"format": 1, "base": [], "base_version": 0, "replay": {}}), "wrong type"),
        (cbor2.dumps({"format": 1, "base": {}, "base_version": 0, "replay": {"k": "x"}}), "replay: expected"),
        (cbor2.dumps({"format": 1, "base": {}, "base_version": 0, "replay": {}, "rejection": [1]}), "rejection"),
    ],
)
def test_corrupt_state_file_is_refused_with_the_reason(tmp_path, content, message):
    path = tmp_path / "config.state"
    path.write_bytes(content)
    with pytest.raises(ConfigSyncError, match=message):
        load_node_state(path, LOCAL)


def test_unreadable_state_file_is_refused(tmp_path):
    (tmp_path / "config.state").mkdir()
    with pytest.raises(ConfigSyncError, match="cannot read"):
        load_node_state(tmp_path / "config.state", LOCAL)


def test_replace_file_forces_a_given_mode_even_over_a_leftover_temp_file(tmp_path):
    path = tmp_path / "secret"
    leftover = tmp_path / ".secret.new"
    leftover.write_bytes(b"old")
    leftover.chmod(0o644)
    replace_file(path, b"new", mode=0o600)
    assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == 0o600


# ---------------------------------------------------------------- hub side


def test_first_plan_is_version_one_of_the_sent_history():
    state = plan_desired("gw-1", [SITE], {"node": {"name": "gw-1"}}, None, created_ms=5, author="ops")
    assert state is not None and state.target == sent_target("gw-1") and state.version == 1
    assert state.doc == {"broker": {"url": "mqtt://site:1883"}, "hub": {"raw_days": 7.0}, "node": {"name": "gw-1"}}


def test_plan_is_none_when_the_effective_document_did_not_change():
    first = plan_desired("gw-1", [SITE], {"node": {"name": "gw-1"}}, None, created_ms=5)
    assert first is not None
    assert plan_desired("gw-1", [SITE], {"node": {"name": "gw-1"}}, first, created_ms=6) is None
    second = plan_desired("gw-1", [SITE], {"node": {"name": "gw-1"}, "hub": {"raw_days": 1.0}}, first, created_ms=6)
    assert second is not None and second.version == 2


def test_plan_refuses_what_the_node_would_refuse_with_the_field():
    with pytest.raises(ConfigValidationError, match=r"^broker.url: "):
        plan_desired("gw-1", [{"broker": {"url": "mqtt://"}}], {"node": {"name": "gw-1"}}, None, created_ms=0)
    last = DesiredState.initial(sent_target("gw-1"), {"node": {"name": "gw-1"}})
    with pytest.raises(ConfigValidationError, match="renaming 'gw-1' to 'gw-2'"):
        plan_desired("gw-1", [], {"node": {"name": "gw-2"}}, last, created_ms=0)


def test_planned_and_signed_version_is_applied_by_the_node_and_a_rollback_too():
    key = generate_key()
    trusted = trusted_keys([key.public_key()])
    guard = ReplayGuard()
    v1 = plan_desired("gw-1", [SITE], {"node": {"name": "gw-1"}}, None, created_ms=NOW)
    assert v1 is not None
    v2 = plan_desired("gw-1", [SITE], {"node": {"name": "gw-1"}, "hub": {"raw_days": 2.0}}, v1, created_ms=NOW)
    assert v2 is not None
    state = NodeConfigState(local=LOCAL)
    for seq, version in enumerate([v1, v2, rollback([v1, v2], 1, created_ms=NOW)], start=1):
        msg = decode(encode(signed_for_node(version, "gw-1", key, now_ms=NOW, ttl_ms=DESIRED_TTL_MS, seq=seq)))
        assert msg.expires_ms == NOW + DESIRED_TTL_MS
        result = apply(msg, state, trusted, NOW + 1, replay=guard)
        assert result.applied, result.report
        state = result.state
    assert state.base_version == 3 and state.local["hub"] == {"raw_days": 7.0}
