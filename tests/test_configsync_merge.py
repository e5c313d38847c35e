"""Three-way merge of config documents: changes on one side merge, real conflicts are reported."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pymonitor.actors.configsync.merge import ABSENT, Conflict, three_way_merge

BASE = {"node": {"name": "gw-1"}, "hub": {"raw_days": 7.0, "minute_days": 90.0}, "broker": {"url": "mqtt://a"}}

keys = st.sampled_from(["a", "b", "c", "d"])
leaves = st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-2, 2) | st.text(max_size=2)
docs = st.dictionaries(
    keys, st.recursive(leaves, lambda c: st.dictionaries(keys, c, max_size=3), max_leaves=8), max_size=4
)


def _edit(base, changes):
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for section, key, value in changes:
        out.setdefault(section, {})[key] = value
    return out


def test_changes_on_different_leaves_both_merge_without_conflict():
    local = _edit(BASE, [("hub", "raw_days", 3.0)])
    remote = _edit(BASE, [("broker", "url", "mqtt://b")])
    result = three_way_merge(BASE, local, remote)
    assert result.conflicts == [] and not result.refused
    assert result.doc["hub"]["raw_days"] == 3.0 and result.doc["broker"]["url"] == "mqtt://b"


def test_same_change_on_both_sides_is_no_conflict():
    both = _edit(BASE, [("hub", "raw_days", 3.0)])
    assert three_way_merge(BASE, both, both).conflicts == []


def test_removal_on_one_side_merges():
    remote = {k: v for k, v in BASE.items() if k != "broker"}
    assert "broker" not in three_way_merge(BASE, BASE, remote).doc
    local = {**BASE, "hub": {"raw_days": 7.0}}
    assert three_way_merge(BASE, local, BASE).doc["hub"] == {"raw_days": 7.0}


def test_local_edit_while_offline_merges_against_the_base_version():
    # The node tuned minute_days offline; the hub meanwhile changed raw_days.
    local = _edit(BASE, [("hub", "minute_days", 30.0)])
    remote = _edit(BASE, [("hub", "raw_days", 14.0)])
    assert three_way_merge(BASE, local, remote).doc["hub"] == {"raw_days": 14.0, "minute_days": 30.0}


@pytest.mark.parametrize(
    ("policy", "kept"),
    [("hub-wins", 5.0), ("node-wins", 3.0)],
)
def test_conflicting_leaf_is_reported_and_settled_by_policy(policy, kept):
    local = _edit(BASE, [("hub", "raw_days", 3.0), ("hub", "minute_days", 30.0)])
    remote = _edit(BASE, [("hub", "raw_days", 5.0), ("broker", "url", "mqtt://b")])
    result = three_way_merge(BASE, local, remote, policy)
    assert result.conflicts == [Conflict(path="hub.raw_days", base=7.0, local=3.0, remote=5.0)]
    assert result.doc["hub"] == {"raw_days": kept, "minute_days": 30.0}
    assert result.doc["broker"]["url"] == "mqtt://b"  # the non-conflicting remote change still merges
    assert not result.refused


def test_refuse_policy_keeps_local_whole_and_reports():
    local = _edit(BASE, [("hub", "raw_days", 3.0)])
    remote = _edit(BASE, [("hub", "raw_days", 5.0), ("broker", "url", "mqtt://b")])
    result = three_way_merge(BASE, local, remote, "refuse")
    assert result.refused and result.doc == local
    assert [c.path for c in result.conflicts] == ["hub.raw_days"]


def test_delete_against_change_is_a_conflict_with_an_absent_side():
    local = {k: v for k, v in BASE.items() if k != "broker"}
    remote = _edit(BASE, [("broker", "url", "mqtt://b")])
    result = three_way_merge(BASE, local, remote, "node-wins")
    assert result.conflicts == [Conflict(path="broker", base=BASE["broker"], local=ABSENT, remote={"url": "mqtt://b"})]
    assert "broker" not in result.doc
    assert result.conflicts[0].to_wire() == {
        "path": "broker",
        "base": {"url": "mqtt://a"},
        "remote": {"url": "mqtt://b"},
    }
    assert repr(ABSENT) == "<absent>"


def test_both_sides_adding_a_table_merge_inside_it():
    local = {**BASE, "clock": {"speed": 2.0}}
    remote = {**BASE, "clock": {"start_ms": 5}}
    assert three_way_merge(BASE, local, remote).doc["clock"] == {"speed": 2.0, "start_ms": 5}


def test_int_and_float_of_equal_value_are_different_changes():
    result = three_way_merge({"a": 0}, {"a": 1}, {"a": 1.0})
    assert [c.path for c in result.conflicts] == ["a"]


def test_nan_equals_nan_so_it_never_conflicts_with_itself():
    nan = {"a": math.nan}
    assert three_way_merge(nan, nan, nan).conflicts == []


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="merge policy: expected one of hub-wins, node-wins, refuse"):
        three_way_merge({}, {}, {}, "coin-flip")  # type: ignore[arg-type]


@given(docs)
def test_merge_of_identical_sides_is_identity(doc):
    assert three_way_merge(doc, doc, doc).doc == doc


@given(docs, docs)
def test_one_sided_change_takes_that_side(base, changed):
    assume(not any(isinstance(v, float) and v != v for v in changed.values()))
    assert three_way_merge(base, base, changed).doc == changed
    assert three_way_merge(base, changed, base).doc == changed


@given(docs, docs, docs)
def test_merges_without_conflict_commute(base, local, remote):
    forward = three_way_merge(base, local, remote, "refuse")
    backward = three_way_merge(base, remote, local, "refuse")
    assert bool(forward.conflicts) == bool(backward.conflicts)
    if not forward.conflicts:
        assert forward.doc == backward.doc


@given(docs, docs, docs)
def test_conflicts_are_never_silently_overwritten(base, local, remote):
    result = three_way_merge(base, local, remote, "hub-wins")
    node_result = three_way_merge(base, local, remote, "node-wins")
    assert [c.path for c in result.conflicts] == [c.path for c in node_result.conflicts]
    if result.doc != node_result.doc:
        assert result.conflicts


def test_lists_merge_as_whole_values_compared_element_by_element():
    assert three_way_merge({"a": [1, 2]}, {"a": [1, 2]}, {"a": [1, 2.0]}).doc == {"a": [1, 2.0]}
    assert three_way_merge({"a": [1]}, {"a": [1, 2]}, {"a": [1, 3]}).conflicts[0].path == "a"
