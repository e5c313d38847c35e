"""Partial updates (set/remove on dotted paths), desired versions and effective config layering."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymonitor.actors.configsync import PatchError
from pymonitor.actors.configsync.canonical import content_hash
from pymonitor.actors.configsync.desired import (
    DesiredState,
    PendingDesired,
    desired_message,
    effective,
    group_target,
    node_target,
    overlay,
    sent_target,
    update,
)
from pymonitor.actors.configsync.patch import PatchOp, apply_patch, diff, parse_patch, patch_to_wire, split_path

DOC = {"node": {"name": "gw-1"}, "broker": {"url": "mqtt://hub:1883", "ca_file": "/etc/ca.pem"}}

keys = st.text(alphabet="abcxyz_-", min_size=1, max_size=4)
leaves = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=4)
docs = st.recursive(leaves, lambda c: st.dictionaries(keys, c, max_size=4), max_leaves=12).filter(
    lambda d: isinstance(d, dict)
)


def test_set_replaces_a_leaf_and_creates_missing_tables():
    out = apply_patch(
        DOC,
        [
            PatchOp(op="set", path="broker.url", value="mqtts://b:8883"),
            PatchOp(op="set", path="hub.raw_days", value=3.0),
        ],
    )
    assert out["broker"]["url"] == "mqtts://b:8883"
    assert out["hub"] == {"raw_days": 3.0}
    assert DOC["broker"]["url"] == "mqtt://hub:1883"  # input untouched


def test_remove_deletes_a_key():
    out = apply_patch(DOC, [PatchOp(op="remove", path="broker.ca_file")])
    assert out["broker"] == {"url": "mqtt://hub:1883"}


def test_failing_operation_applies_nothing_and_names_index_and_path():
    ops = [PatchOp(op="set", path="broker.url", value="x"), PatchOp(op="remove", path="broker.nope")]
    with pytest.raises(PatchError, match=r"patch\[1\] \(remove broker.nope\): no such key"):
        apply_patch(DOC, ops)


def test_path_through_a_scalar_or_missing_table_is_refused():
    with pytest.raises(PatchError, match=r"broker.url is a str, not a table"):
        apply_patch(DOC, [PatchOp(op="set", path="broker.url.host", value="x")])
    with pytest.raises(PatchError, match=r"hub is nothing, not a table"):
        apply_patch(DOC, [PatchOp(op="remove", path="hub.raw_days")])


@pytest.mark.parametrize("path", ["", "a..b", "a.b c", ".a", "a."])
def test_malformed_paths_are_refused(path):
    with pytest.raises(PatchError, match="patch\\[0\\]"):
        apply_patch(DOC, [PatchOp(op="set", path=path, value=1)])


def test_split_path_splits_on_dots():
    assert split_path("hub.raw_days") == ("hub", "raw_days")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"op": "set"}, "expected a list of operations, got dict"),
        ([3], r"patch\[0\]: expected a map"),
        ([{"op": "set", "path": "a", "value": 1, "extra": 2}], r"patch\[0\]: unknown key 'extra'"),
        ([{"op": "add", "path": "a"}], r"patch\[0\].op: expected one of set, remove, got 'add'"),
        ([{"op": "remove", "path": 5}], r"patch\[0\].path: expected a dotted path string"),
        ([{"op": "set", "path": "a"}], r"patch\[0\].value: a set needs a value"),
    ],
)
def test_bad_wire_patches_are_refused_with_where_and_why(raw, message):
    with pytest.raises(PatchError, match=message):
        parse_patch(raw)


def test_wire_patch_round_trips():
    ops = [PatchOp(op="set", path="a.b", value=[1, 2]), PatchOp(op="remove", path="c")]
    assert parse_patch(patch_to_wire(ops)) == ops


@given(docs, docs)
def test_diff_then_patch_turns_old_into_new(old, new):
    assert apply_patch(old, diff(old, new)) == new


def test_diff_sees_int_and_float_as_different_values():
    assert diff({"a": 1}, {"a": 1.0}) == [PatchOp(op="set", path="a", value=1.0)]
    assert diff({"a": {"b": 1}}, {"a": {"b": 1}}) == []


def test_update_makes_the_next_version_with_the_content_hash():
    v1 = DesiredState.initial(node_target("gw-1"), DOC, created_ms=5, author="ops")
    v2 = update(v1, [PatchOp(op="set", path="broker.url", value="mqtt://b")], created_ms=6, note="move broker")
    assert (v1.version, v2.version) == (1, 2)
    assert v2.hash == content_hash(v2.doc) != v1.hash
    assert (v2.target, v2.created_ms, v2.note, v2.restores) == ("node:gw-1", 6, "move broker", 0)


def test_content_hash_ignores_key_order():
    assert content_hash({"a": 1, "b": {"c": 2, "d": 3}}) == content_hash({"b": {"d": 3, "c": 2}, "a": 1})


def test_node_overrides_win_over_later_groups_over_earlier_groups():
    site = {"broker": {"url": "mqtt://site", "ca_file": "/ca"}, "hub": {"raw_days": 7.0}}
    region = {"broker": {"url": "mqtt://region"}}
    node = {"node": {"name": "gw-1"}, "hub": {"raw_days": 1.0}}
    eff = effective([site, region], node)
    assert eff == {
        "broker": {"url": "mqtt://region", "ca_file": "/ca"},
        "hub": {"raw_days": 1.0},
        "node": {"name": "gw-1"},
    }
    assert site["broker"]["url"] == "mqtt://site"


def test_overlay_replaces_lists_and_scalars_whole():
    assert overlay({"a": [1, 2], "b": {"c": 1}}, {"a": [3], "b": 2}) == {"a": [3], "b": 2}


def test_target_names():
    assert (node_target("n"), group_target("g"), sent_target("n")) == ("node:n", "group:g", "sent:n")


def test_pending_keeps_only_the_newest_version_per_node_until_reported():
    pending = PendingDesired()
    pending.enqueue(desired_message("gw-1", 2, DOC))
    pending.enqueue(desired_message("gw-1", 1, DOC))  # older: ignored
    pending.enqueue(desired_message("gw-2", 1, DOC))
    assert [(m.node, m.version) for m in pending.due(["gw-1", "gw-9"])] == [("gw-1", 2)]
    assert pending.lagging() == ["gw-1", "gw-2"]
    pending.confirm("gw-1", 1)  # a report of an older version does not settle version 2
    assert pending.lagging() == ["gw-1", "gw-2"]
    pending.confirm("gw-1", 2)
    pending.confirm("gw-7", 2)
    assert pending.lagging() == ["gw-2"]
