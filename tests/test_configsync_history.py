"""Config history: every version kept in SQLite, rollback as a new version, automatic rollback on bad health."""

from __future__ import annotations

import sqlite3

import pytest

from pymonitor.actors.configsync import ConfigSyncError
from pymonitor.actors.configsync.desired import DesiredState, sent_target, successor
from pymonitor.actors.configsync.history import RollbackDecision, decide_rollback, find_version, rollback
from pymonitor.messages.config import ConfigReport
from pymonitor.store.config_store import ConfigStore, VersionConflictError

T = sent_target("gw-1")


def _history(*docs):
    states = [DesiredState.initial(T, docs[0], created_ms=1)]
    for i, doc in enumerate(docs[1:], start=2):
        states.append(successor(states[-1], doc, created_ms=i))
    return states


def _report(version, previous, failed=("broker_reachable",), status="applied"):
    return ConfigReport(
        node="gw-1",
        version=version,
        hash="",
        status=status,
        ts_ms=9,
        reason="" if status == "applied" else "invalid",
        previous_version=previous,
        failed_checks=list(failed),
    )


H = _history({"hub": {"raw_days": 7.0}}, {"hub": {"raw_days": 3.0}}, {"hub": {"raw_days": 1.0}})


def test_rollback_is_a_new_version_with_the_old_content():
    back = rollback(H, 1, created_ms=50, author="ops")
    assert back.version == 4 and back.doc == H[0].doc and back.hash == H[0].hash
    assert (back.restores, back.note, back.author, back.created_ms) == (1, "rollback to version 1", "ops", 50)


def test_rollback_refuses_unknown_latest_and_empty_history():
    with pytest.raises(ConfigSyncError, match="sent:gw-1 has no version 9"):
        rollback(H, 9, created_ms=0)
    with pytest.raises(ConfigSyncError, match="version 3 of sent:gw-1 is already the latest"):
        rollback(H, 3, created_ms=0)
    with pytest.raises(ConfigSyncError, match="the history is empty"):
        rollback([], 1, created_ms=0)


def test_failing_health_after_apply_rolls_back_to_the_previous_version():
    decision = decide_rollback(_report(3, 2, failed=("broker_reachable", "disk_free")), H)
    assert decision == RollbackDecision(
        node="gw-1",
        from_version=3,
        to_version=2,
        reason="health checks failed after applying version 3: broker_reachable, disk_free",
    )


@pytest.mark.parametrize(
    ("report", "history"),
    [
        (_report(3, 2, failed=()), H),  # healthy
        (_report(3, 2, status="rejected"), H),  # nothing was applied
        (_report(2, 1), H),  # the hub already moved past version 2
        (_report(3, 0), H),  # no previous version: first config
        (_report(3, 7), H),  # previous version not in the history
        (_report(1, 1), _history({"a": 1})),  # previous is not older
        (_report(3, 2), []),
    ],
)
def test_no_automatic_rollback_when_it_would_not_help(report, history):
    assert decide_rollback(report, history) is None


def test_no_rollback_to_identical_content_or_of_a_rollback():
    same = _history({"a": 1}, {"a": 1})
    assert decide_rollback(_report(2, 1), same) is None
    rolled = [*H, rollback(H, 1, created_ms=5)]
    assert decide_rollback(_report(4, 3), rolled) is None  # no ping-pong: a human decides


def test_find_version():
    assert find_version(H, 2) is H[1]
    assert find_version(H, 5) is None


def test_store_keeps_every_version_and_reads_them_back(tmp_path):
    store = ConfigStore(tmp_path / "config.db")
    for state in H:
        store.append(state)
    back = store.append(rollback(store.history(T), 1, created_ms=60, author="ops"))
    store.close()
    reopened = ConfigStore(tmp_path / "config.db")
    assert [s.version for s in reopened.history(T)] == [1, 2, 3, 4]
    assert reopened.history(T)[:3] == H
    assert reopened.latest(T) == back
    assert reopened.get(T, 2) == H[1]
    assert reopened.get(T, 9) is None and reopened.latest("sent:other") is None
    assert reopened.targets() == [T]
    reopened.close()


def test_store_uses_wal(tmp_path):
    ConfigStore(tmp_path / "config.db").close()
    conn = sqlite3.connect(tmp_path / "config.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_store_refuses_a_version_that_is_not_next(tmp_path):
    store = ConfigStore(tmp_path / "config.db")
    store.append(H[0])
    with pytest.raises(VersionConflictError, match="sent:gw-1 is at version 1, cannot store version 3"):
        store.append(H[2])
    with pytest.raises(VersionConflictError):
        store.append(H[0])  # two editors both made version 1: the second must redo its change
    assert [s.version for s in store.history(T)] == [1]


def test_signing_sequence_grows_and_survives_reopen(tmp_path):
    store = ConfigStore(tmp_path / "config.db")
    assert [store.next_seq("k1"), store.next_seq("k1"), store.next_seq("k2")] == [1, 2, 1]
    store.close()
    assert ConfigStore(tmp_path / "config.db").next_seq("k1") == 3


def test_reports_are_kept_newest_first(tmp_path):
    store = ConfigStore(tmp_path / "config.db")
    first = _report(2, 1, failed=())
    second = ConfigReport(
        node="gw-1",
        version=3,
        hash="h",
        status="rejected",
        ts_ms=10,
        reason="conflict",
        detail="d",
        previous_version=2,
        conflicts=[{"path": "hub.raw_days", "local": 1.0}],
    )
    store.record_report(first)
    store.record_report(second)
    assert store.reports("gw-1") == [second, first]
    assert store.reports("gw-1", limit=1) == [second]
    assert store.reports("gw-2") == []
