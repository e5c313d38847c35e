"""The durable outbox: committed before counted, drained by priority, capped, and it survives kill -9."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymonitor.store.outbox import DurableOutbox, OutboxError, Priority

T0 = 1_767_225_600_000
S = 3


def payload(seq: int, size: int = 100) -> bytes:
    return (seq.to_bytes(8, "little") * (size // 8 + 1))[:size]


@pytest.fixture
def box(tmp_path: Path) -> DurableOutbox:
    outbox = DurableOutbox(tmp_path / "outbox.db")
    yield outbox
    outbox.close()


def test_a_committed_frame_is_there_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    first = DurableOutbox(path)
    first.add(S, 1, payload(1), readings=4, now_ms=T0)
    first.add(S, 2, payload(2), readings=4, now_ms=T0 + 1, priority=Priority.EVENT)
    first.close()
    again = DurableOutbox(path)
    try:
        assert len(again) == 2
        assert again.size_bytes == 200
        sent = again.to_send(T0 + 10, resend_after_ms=1000)
        assert [(f.seq, f.payload, f.stream) for f in sent] == [(2, payload(2), "events"), (1, payload(1), "readings")]
        assert again.tallies()["frames"] == 2
    finally:
        again.close()


def test_a_duplicate_frame_is_refused_and_changes_nothing(box: DurableOutbox) -> None:
    box.add(S, 1, payload(1), readings=1, now_ms=T0)
    with pytest.raises(OutboxError, match=r"\(3, 1\) is already in the outbox"):
        box.add(S, 1, payload(9, 500), readings=9, now_ms=T0)
    assert len(box) == 1 and box.size_bytes == 100
    assert box.tallies()["frames"] == 1


def test_bad_arguments_are_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(OutboxError, match="durability"):
        DurableOutbox(tmp_path / "a.db", durability="sometimes")
    with pytest.raises(OutboxError, match="cap_bytes"):
        DurableOutbox(tmp_path / "b.db", cap_bytes=0)
    box = DurableOutbox(tmp_path / "c.db")
    try:
        with pytest.raises(OutboxError, match="priority"):
            box.add(S, 1, b"x", readings=1, now_ms=T0, priority=7)  # type: ignore[arg-type]
        with pytest.raises(OutboxError, match="readings"):
            box.add(S, 1, b"x", readings=-1, now_ms=T0)
        assert len(box) == 0
    finally:
        box.close()


def test_drain_order_is_events_then_newest_live_then_oldest_backfill(box: DurableOutbox) -> None:
    box.add(S, 1, payload(1), 1, T0 + 1, Priority.BACKFILL)
    box.add(S, 2, payload(2), 1, T0 + 2, Priority.LIVE)
    box.add(S, 3, payload(3), 1, T0 + 3, Priority.EVENT)
    box.add(S, 4, payload(4), 1, T0 + 4, Priority.BACKFILL)
    box.add(S, 5, payload(5), 1, T0 + 5, Priority.LIVE)
    box.add(S, 6, payload(6), 1, T0 + 6, Priority.EVENT)
    order = [f.seq for f in box.to_send(T0 + 10, resend_after_ms=1000)]
    assert order == [3, 6, 5, 2, 1, 4]


def test_backfill_gets_only_its_share_of_the_budget_while_live_waits(box: DurableOutbox) -> None:
    for seq in range(1, 11):
        box.add(S, seq, payload(seq), 1, T0 + seq, Priority.BACKFILL)
    box.add(S, 100, payload(100), 1, T0 + 100, Priority.LIVE)
    sent = box.to_send(T0 + 200, resend_after_ms=1000, budget_bytes=1000)  # backfill share 30% = 300 bytes
    assert [f.priority for f in sent] == [Priority.LIVE, Priority.BACKFILL, Priority.BACKFILL, Priority.BACKFILL]
    rest = box.to_send(T0 + 201, resend_after_ms=1000, budget_bytes=1000)  # no live waiting: the whole budget
    assert len(rest) == 7 and all(f.priority is Priority.BACKFILL for f in rest)


def test_one_frame_always_goes_even_over_the_budget(box: DurableOutbox) -> None:
    box.add(S, 1, payload(1, 5000), 1, T0)
    assert [f.seq for f in box.to_send(T0, resend_after_ms=1000, budget_bytes=10)] == [1]


def test_unacknowledged_frames_are_resent_after_the_timeout_and_counted(box: DurableOutbox) -> None:
    box.add(S, 1, payload(1), 1, T0)
    assert len(box.to_send(T0, resend_after_ms=1000)) == 1
    assert box.to_send(T0 + 999, resend_after_ms=1000) == []
    again = box.to_send(T0 + 1000, resend_after_ms=1000)
    assert [f.attempts for f in again] == [2]
    assert box.tallies()["resends"] == 1


def test_a_reconnect_resends_only_what_went_out_on_earlier_connections(box: DurableOutbox) -> None:
    box.add(S, 1, payload(1), 1, T0)
    box.to_send(T0, resend_after_ms=60_000, connection=1)
    box.add(S, 2, payload(2), 1, T0 + 1)
    box.to_send(T0 + 1, resend_after_ms=60_000, connection=2)
    box.mark_unsent(before_connection=2)
    assert [f.seq for f in box.to_send(T0 + 2, resend_after_ms=60_000, connection=2)] == [1]


def test_ack_deletes_confirmed_frames_and_counts_unknown_ones(box: DurableOutbox) -> None:
    box.add(S, 1, payload(1), 4, T0)
    box.add(S, 2, payload(2), 6, T0 + 1000)
    assert box.ack(S, [1, 2, 77], now_ms=T0 + 5000) == 2
    assert box.ack(S + 1, [1], now_ms=T0 + 5000) == 0  # another session's seq 1 is not ours
    tallies = box.tallies()
    assert tallies["acked_frames"] == 2 and tallies["acked_readings"] == 10
    assert tallies["unknown_acks"] == 2
    assert tallies["worst_delay_ms"] == 5000
    assert len(box) == 0 and box.size_bytes == 0


def test_the_cap_evicts_lowest_priority_oldest_first_and_counts_it(tmp_path: Path) -> None:
    path = tmp_path / "capped.db"
    box = DurableOutbox(path, cap_bytes=450)
    box.add(S, 1, payload(1), 2, T0 + 1, Priority.EVENT)
    box.add(S, 2, payload(2), 3, T0 + 2, Priority.BACKFILL)
    box.add(S, 3, payload(3), 4, T0 + 3, Priority.LIVE)
    box.add(S, 4, payload(4), 5, T0 + 4, Priority.BACKFILL)
    box.add(S, 5, payload(5), 6, T0 + 5, Priority.LIVE)  # 500 bytes > 450: the oldest backfill goes
    assert box.size_bytes <= 450
    assert sorted(f.seq for f in box.to_send(T0 + 10, resend_after_ms=1000)) == [1, 3, 4, 5]
    box.close()
    reopened = DurableOutbox(path, cap_bytes=450)
    try:
        tallies = reopened.tallies()
        assert tallies["evicted_frames_backfill"] == 1 and tallies["evicted_readings_backfill"] == 3
        status = reopened.status()
        assert status["pending"]["event"]["frames"] == 1 and status["pending"]["backfill"]["frames"] == 1
        assert status["size_bytes"] == 400
    finally:
        reopened.close()


def test_old_live_frames_become_backfill(box: DurableOutbox) -> None:
    box.add(S, 1, payload(1), 1, T0)
    box.add(S, 2, payload(2), 1, T0 + 60_000)
    assert box.demote_live(older_than_ms=T0 + 30_000) == 1
    assert [(f.seq, f.stream) for f in box.to_send(T0 + 70_000, 1000)] == [(2, "readings"), (1, "backfill")]


def test_a_corrupt_outbox_is_set_aside_and_a_fresh_one_starts(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    path.write_bytes(b"garbage, not SQLite" * 100)
    box = DurableOutbox(path)
    try:
        assert box.set_aside is not None and box.set_aside.exists()
        assert box.set_aside.read_bytes().startswith(b"garbage")
        box.add(S, 1, payload(1), 1, T0)
        assert len(box) == 1
    finally:
        box.close()


def test_full_durability_syncs_every_commit(tmp_path: Path) -> None:
    box = DurableOutbox(tmp_path / "full.db", durability="full")
    try:
        assert box.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        box.add(S, 1, payload(1), 1, T0)
    finally:
        box.close()


WRITER = """
import sys
from pymonitor.store.outbox import DurableOutbox
box = DurableOutbox(sys.argv[1])
seq = 0
while True:
    seq += 1
    box.add(7, seq, (seq.to_bytes(8, "little") * 64), readings=4, now_ms=seq)
    print(seq, flush=True)
"""


def test_every_frame_reported_committed_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    committed = []
    for line in proc.stdout:
        committed.append(int(line))
        if len(committed) >= 300:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    box = DurableOutbox(path)
    try:
        assert box.set_aside is None  # a torn write never corrupts the file
        stored = {f.seq: f.payload for f in box.to_send(10**9, resend_after_ms=0)}
        for seq in committed:
            assert stored[seq] == seq.to_bytes(8, "little") * 64
        assert box.size_bytes == sum(len(p) for p in stored.values())
    finally:
        box.close()


operation = st.one_of(
    st.tuples(st.just("add"), st.integers(1, 300), st.sampled_from(list(Priority))),
    st.tuples(st.just("ack"), st.lists(st.integers(1, 40), max_size=6), st.just(Priority.LIVE)),
    st.tuples(st.just("send"), st.integers(0, 2000), st.just(Priority.LIVE)),
)


@settings(max_examples=40, deadline=None)
@given(cap=st.integers(100, 3000), ops=st.lists(operation, max_size=40))
def test_any_interleaving_keeps_the_books_balanced(
    tmp_path_factory: pytest.TempPathFactory, cap: int, ops: list
) -> None:
    box = DurableOutbox(tmp_path_factory.mktemp("prop") / "o.db", cap_bytes=cap)
    try:
        seq = 0
        now = T0
        for kind, a, priority in ops:
            now += 10
            if kind == "add":
                seq += 1
                box.add(S, seq, b"\x01" * a, readings=1, now_ms=now, priority=priority)
            elif kind == "ack":
                box.ack(S, a, now)
            else:
                box.to_send(now, resend_after_ms=100, budget_bytes=a or None)
            actual = box.conn.execute("SELECT COALESCE(SUM(size), 0) FROM frames").fetchone()[0]
            assert box.size_bytes == actual
            assert len(box) <= 1 or box.size_bytes <= cap
            t = box.tallies()
            evicted = sum(v for k, v in t.items() if k.startswith("evicted_frames_"))
            assert t.get("frames", 0) == t.get("acked_frames", 0) + evicted + len(box)
    finally:
        box.close()
