"""The durable outbox: committed before counted, drained by priority, thinned then capped, survives kill -9."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymonitor.messages import Event, ReadingBatch, decode_unpacked, encode, encode_packed
from pymonitor.messages.thinning import thin_frame
from pymonitor.store.database import open_store
from pymonitor.store.outbox import NOT_THINNABLE, OUTBOX_MIGRATIONS, DurableOutbox, OutboxError, Priority

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
    box.to_send(T0 + 2000, resend_after_ms=1000)
    assert box.ack(S, [1, 2, 77], now_ms=T0 + 5000) == 2
    assert box.ack(S + 1, [1], now_ms=T0 + 5000) == 0  # another session's seq 1 is not ours
    tallies = box.tallies()
    assert tallies["acked_frames"] == 2 and tallies["acked_readings"] == 10
    assert tallies["unknown_acks"] == 2
    assert tallies["worst_delay_ms"] == 5000
    assert len(box) == 0 and box.size_bytes == 0


def test_an_ack_for_a_frame_never_sent_is_ignored_and_counted(box: DurableOutbox) -> None:
    box.add(S, 1, payload(1), 4, T0)
    box.add(S, 2, payload(2), 6, T0 + 1)
    assert box.ack(S, [1, 2], now_ms=T0 + 10) == 0  # forged: the hub cannot have frames never sent
    assert len(box) == 2 and box.size_bytes == 200
    assert box.tallies()["unsent_acks"] == 2 and "acked_frames" not in box.tallies()
    assert [f.seq for f in box.to_send(T0 + 20, resend_after_ms=1000, limit=1)] == [2]
    box.mark_unsent()  # a reconnect: frame 2 was still sent once, so a late ack for it counts
    assert box.ack(S, [1, 2, 3], now_ms=T0 + 30) == 1
    t = box.tallies()
    assert (t["unsent_acks"], t["unknown_acks"], t["acked_frames"], t["acked_readings"]) == (3, 1, 1, 6)
    assert [f.seq for f in box.to_send(T0 + 40, resend_after_ms=1000)] == [1]


def test_a_limit_sends_at_most_that_many_frames_in_drain_order(box: DurableOutbox) -> None:
    box.add(S, 1, payload(1), 1, T0 + 1, Priority.BACKFILL)
    box.add(S, 2, payload(2), 1, T0 + 2, Priority.LIVE)
    box.add(S, 3, payload(3), 1, T0 + 3, Priority.EVENT)
    box.add(S, 4, payload(4), 1, T0 + 4, Priority.LIVE)
    assert [f.seq for f in box.to_send(T0 + 10, resend_after_ms=1000, limit=1)] == [3]  # a breaker's probe
    assert box.to_send(T0 + 10, resend_after_ms=1000, limit=0) == []
    assert [f.seq for f in box.to_send(T0 + 11, resend_after_ms=1000, budget_bytes=1000, limit=2)] == [4, 2]
    assert [f.seq for f in box.to_send(T0 + 12, resend_after_ms=1000, limit=5)] == [1]
    assert box.to_send(T0 + 13, resend_after_ms=1000, limit=5) == []  # all sent once: nothing due yet


def test_node_state_commits_with_its_frame_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = DurableOutbox(path)
    assert first.state() == {}
    first.save_state({"sampler": b"start", "other": b"kept"})
    first.add(S, 1, payload(1), 1, T0, state={"sampler": b"after-1"})
    first.add(S, 2, payload(2), 1, T0 + 1)  # no state: what was saved stays
    first.close()
    again = DurableOutbox(path)
    try:
        assert again.state() == {"sampler": b"after-1", "other": b"kept"}
        assert len(again) == 2
    finally:
        again.close()


def test_a_refused_frame_leaves_the_node_state_as_it_was(box: DurableOutbox) -> None:
    box.add(S, 1, payload(1), 1, T0, state={"sampler": b"after-1"})
    with pytest.raises(OutboxError, match="already in the outbox"):
        box.add(S, 1, payload(1), 1, T0, state={"sampler": b"after-1-again", "new": b"x"})
    with pytest.raises(OutboxError, match="str to bytes"):
        box.add(S, 2, payload(2), 1, T0, state={"sampler": "text, not bytes"})  # type: ignore[dict-item]
    with pytest.raises(OutboxError, match="str to bytes"):
        box.save_state({"sampler": b"ok", 7: b"bad key"})  # type: ignore[dict-item]
    assert box.state() == {"sampler": b"after-1"}
    assert len(box) == 1 and box.tallies()["frames"] == 1


def test_a_version_1_file_is_migrated_and_keeps_its_frames(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    old = open_store(path, OUTBOX_MIGRATIONS[:1]).db.conn
    old.execute(
        "INSERT INTO frames (session, seq, priority, created_ms, payload, size, readings, attempts)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (S, 1, int(Priority.BACKFILL), T0, payload(1), 100, 5, 1),
    )
    old.close()
    box = DurableOutbox(path, cap_bytes=150, thinner=lambda p: (p[: len(p) // 2], 2))
    try:
        assert box.conn.execute("PRAGMA user_version").fetchone()[0] == len(OUTBOX_MIGRATIONS)
        assert box.state() == {} and box.size_bytes == 100
        box.add(S, 2, payload(2), 5, T0 + 1, Priority.LIVE)  # 200 bytes: the old frame is thinned
        assert box.conn.execute("SELECT size, readings, thinned FROM frames WHERE seq = 1").fetchone() == (50, 2, 1)
        assert box.ack(S, [1], T0 + 2) == 1  # it was sent before the upgrade
    finally:
        box.close()


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


def batch_frame(seq: int, codec: str | None = None, rows: int = 64) -> bytes:
    """A reading batch of two devices, one metric, values that do not compress away."""
    batch = ReadingBatch.build(
        node="gw-1", session=S, seq=seq, devices=["a", "b"], metrics=["t"], device_index=[i % 2 for i in range(rows)],
        device_seq=[i // 2 for i in range(rows)], ts_ms=[T0 + 1000 * i for i in range(rows)],
        values=[[((seq * 7919 + i * 104729) % 100_003) / 7 for i in range(rows)]], backfill=True,
    )  # fmt: skip
    return encode_packed(batch, codec) if codec else encode(batch)


@pytest.mark.parametrize("codec", [None, "zstd"])
def test_over_the_cap_old_backfill_is_thinned_before_anything_is_evicted(tmp_path: Path, codec: str | None) -> None:
    frames = [batch_frame(seq, codec) for seq in (1, 2, 3, 4)]
    cap = sum(len(f) for f in frames) - 1  # the fourth frame goes over by one byte
    box = DurableOutbox(tmp_path / "thin.db", cap_bytes=cap, thinner=thin_frame)
    try:
        for seq, frame in zip((1, 2, 3), frames, strict=False):
            box.add(S, seq, frame, 64, T0 + seq, Priority.BACKFILL)
        box.add(S, 4, frames[3], 64, T0 + 4, Priority.LIVE)
        t = box.tallies()
        assert not any(k.startswith("evicted") for k in t)
        assert (t["downsampled_frames_backfill"], t["downsampled_readings_backfill"]) == (1, 32)
        assert len(box) == 4 and box.size_bytes <= cap
        assert box.status()["pending"]["backfill"]["readings"] == 32 + 64 + 64
        sent = {f.seq: f for f in box.to_send(T0 + 10, resend_after_ms=1000)}
        thinned = decode_unpacked(sent[1].payload)
        assert (thinned.session, thinned.seq, thinned.rows) == (S, 1, 32)  # the oldest, same identity
        assert sent[1].readings == 32 and sent[2].payload == frames[1]
        with pytest.raises(OutboxError, match="already in the outbox"):  # dedup still knows it
            box.add(S, 1, frames[0], 64, T0 + 11, Priority.BACKFILL)
        assert box.ack(S, [1], T0 + 12) == 1
        assert box.tallies()["acked_readings"] == 32
    finally:
        box.close()


def halve(payload: bytes) -> tuple[bytes, int]:
    """A stand-in thinner for frames whose readings are their bytes."""
    return payload[: len(payload) // 2], len(payload) // 2


def pending(box: DurableOutbox) -> dict[int, tuple[int, int]]:
    return {seq: (size, thinned) for seq, size, thinned in box.conn.execute("SELECT seq, size, thinned FROM frames")}


def test_the_least_thinned_oldest_backfill_goes_first_at_most_max_thins_times_then_eviction(tmp_path: Path) -> None:
    asked: list[int] = []

    def thinner(p: bytes) -> tuple[bytes, int]:
        asked.append(p[0])
        return halve(p)

    box = DurableOutbox(tmp_path / "t.db", cap_bytes=1000, thinner=thinner)  # max_thins defaults to 2
    try:
        box.add(S, 1, payload(1, 400), 400, T0 + 1, Priority.BACKFILL)
        box.add(S, 2, payload(2, 400), 400, T0 + 2, Priority.BACKFILL)
        box.add(S, 3, payload(3, 400), 400, T0 + 3, Priority.LIVE)
        assert pending(box) == {1: (200, 1), 2: (400, 0), 3: (400, 0)}
        box.add(S, 4, payload(4, 400), 400, T0 + 4, Priority.EVENT)
        # 2 (never thinned) before 1 (once); then each once more
        assert asked == [1, 2, 1, 2]
        assert pending(box) == {1: (100, 2), 2: (100, 2), 3: (400, 0), 4: (400, 0)}
        box.add(S, 5, payload(5, 100), 100, T0 + 5, Priority.LIVE)  # nothing thinnable left: evict
        assert asked == [1, 2, 1, 2]
        assert pending(box) == {2: (100, 2), 3: (400, 0), 4: (400, 0), 5: (100, 0)}
        t = box.tallies()
        assert (t["downsampled_frames_backfill"], t["downsampled_readings_backfill"]) == (4, 600)
        assert (t["evicted_frames_backfill"], t["evicted_readings_backfill"]) == (1, 100)
        assert box.size_bytes == 1000
    finally:
        box.close()


def test_without_a_thinner_or_with_max_thins_0_the_cap_evicts_as_before(tmp_path: Path) -> None:
    for i, options in enumerate(({}, {"thinner": halve, "max_thins": 0})):
        box = DurableOutbox(tmp_path / f"{i}.db", cap_bytes=250, **options)
        try:
            for seq in (1, 2, 3):
                box.add(S, seq, payload(seq), 100, T0 + seq, Priority.BACKFILL)
            assert sorted(pending(box)) == [2, 3]
            assert box.tallies()["evicted_frames_backfill"] == 1 and "downsampled_frames_backfill" not in box.tallies()
        finally:
            box.close()


def test_a_frame_the_thinner_cannot_shrink_is_not_offered_again_and_is_evicted(tmp_path: Path) -> None:
    asked: list[int] = []

    def refuses(p: bytes) -> tuple[bytes, int] | None:
        asked.append(p[0])
        if p[0] == 3:
            raise RuntimeError("a thinner bug")
        return None if p[0] == 1 else (p + b"longer", 1)

    box = DurableOutbox(tmp_path / "r.db", cap_bytes=350, thinner=refuses)
    try:
        for seq in (1, 2, 3):
            box.add(S, seq, payload(seq), 100, T0 + seq, Priority.BACKFILL)
        box.add(S, 4, payload(4), 100, T0 + 4, Priority.LIVE)  # 400 > 350
        assert asked == [1, 2, 3]
        assert sorted(pending(box)) == [2, 3, 4]
        assert {seq: thinned for seq, (_, thinned) in pending(box).items()} == {
            2: NOT_THINNABLE, 3: NOT_THINNABLE, 4: 0,
        }  # fmt: skip
        t = box.tallies()
        assert (t["evicted_frames_backfill"], t["thin_errors"]) == (1, 1)
        box.add(S, 5, payload(5), 100, T0 + 5, Priority.LIVE)
        assert asked == [1, 2, 3]  # none asked twice
        assert sorted(pending(box)) == [3, 4, 5]
    finally:
        box.close()


def test_events_and_live_frames_are_never_thinned(tmp_path: Path) -> None:
    def event(seq: int) -> bytes:
        text = "battery below 3.3 V for an hour" * 4
        return encode(Event(node="gw-1", ts_ms=T0, kind="battery.low", severity="warning", message=text, seq=seq))

    assert len(event(1)) > 100
    box = DurableOutbox(tmp_path / "e.db", cap_bytes=len(event(1)) + len(batch_frame(2)) + 100, thinner=thin_frame)
    try:
        box.add(S, 1, event(1), 1, T0, Priority.EVENT)
        box.add(S, 2, batch_frame(2), 64, T0 + 1, Priority.LIVE)
        box.add(S, 3, batch_frame(3), 64, T0 + 2, Priority.LIVE)  # over: live is evicted, not thinned
        assert sorted(pending(box)) == [1, 3]
        assert box.tallies()["evicted_frames_live"] == 1 and "downsampled_frames_backfill" not in box.tallies()
        box.demote_live(older_than_ms=T0 + 10)
        box.add(S, 4, event(4), 1, T0 + 3, Priority.EVENT)  # over: 3 is backfill now, and is thinned
        assert sorted(pending(box)) == [1, 3, 4]
        t = box.tallies()
        assert t["downsampled_frames_backfill"] == 1 and t["evicted_frames_live"] == 1
        assert not any(k.startswith("evicted_frames_") and k != "evicted_frames_live" for k in t)
    finally:
        box.close()


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
    box.add(7, seq, (seq.to_bytes(8, "little") * 64), readings=4, now_ms=seq, state={"position": str(seq).encode()})
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
        # the sampling position saved with each frame is the one of the last frame on disk
        assert int(box.state()["position"]) == max(stored) == len(stored)
    finally:
        box.close()


operation = st.one_of(
    st.tuples(st.just("add"), st.integers(1, 300), st.sampled_from(list(Priority))),
    st.tuples(st.just("demote"), st.just(0), st.just(Priority.LIVE)),
    st.tuples(st.just("ack"), st.lists(st.integers(1, 40), max_size=6), st.just(Priority.LIVE)),
    st.tuples(st.just("send"), st.integers(0, 2000), st.just(Priority.LIVE)),
)


@settings(max_examples=40, deadline=None)
@given(cap=st.integers(100, 3000), ops=st.lists(operation, max_size=40), thin=st.booleans())
def test_any_interleaving_keeps_the_books_balanced(
    tmp_path_factory: pytest.TempPathFactory, cap: int, ops: list, thin: bool
) -> None:
    box = DurableOutbox(tmp_path_factory.mktemp("prop") / "o.db", cap_bytes=cap, thinner=halve if thin else None)
    try:
        seq = 0
        now = T0
        for kind, a, priority in ops:
            now += 10
            if kind == "add":
                seq += 1
                box.add(S, seq, b"\x01" * a, readings=a, now_ms=now, priority=priority)
            elif kind == "ack":
                box.ack(S, a, now)
            elif kind == "demote":
                box.demote_live(now)
            else:
                box.to_send(now, resend_after_ms=100, budget_bytes=a or None)
            actual = box.conn.execute("SELECT COALESCE(SUM(size), 0) FROM frames").fetchone()[0]
            assert box.size_bytes == actual
            assert len(box) <= 1 or box.size_bytes <= cap
            t = box.tallies()
            evicted = sum(v for k, v in t.items() if k.startswith("evicted_frames_"))
            assert t.get("frames", 0) == t.get("acked_frames", 0) + evicted + len(box)
            lost = sum(v for k, v in t.items() if k.startswith(("evicted_readings_", "downsampled_readings_")))
            waiting = box.conn.execute("SELECT COALESCE(SUM(readings), 0) FROM frames").fetchone()[0]
            assert t.get("readings", 0) == t.get("acked_readings", 0) + lost + waiting
    finally:
        box.close()


def test_an_urgent_live_frame_stays_live_when_the_others_are_demoted(tmp_path: Path) -> None:
    box = DurableOutbox(tmp_path / "o.db")
    box.add(1, 1, b"old", 1, 1_000)
    box.add(1, 2, b"anomaly", 1, 1_000, urgent=True)
    box.add(1, 3, b"fresh", 1, 9_000)
    assert box.demote_live(5_000) == 1
    streams = {f.seq: f.stream for f in box.to_send(10_000, 60_000)}
    assert streams == {1: "backfill", 2: "readings", 3: "readings"}


def test_reading_the_status_of_an_older_file_does_not_migrate_it(tmp_path: Path) -> None:
    from pymonitor.store.database import open_store
    from pymonitor.store.outbox import read_status

    path = tmp_path / "old.outbox"
    old = open_store(path, OUTBOX_MIGRATIONS[:1]).db.conn
    old.execute(
        "INSERT INTO frames (session, seq, priority, created_ms, payload, size, readings)"
        " VALUES (1, 1, 2, 5, x'00', 1, 3)"
    )
    old.commit()
    old.close()
    status = read_status(path)
    assert status["schema_version"] == 1
    assert status["pending"]["backfill"] == {"frames": 1, "readings": 3, "bytes": 1}
    assert read_status(path)["schema_version"] == 1  # still: a node of that version may be running on it


def test_a_frame_can_travel_on_another_stream_than_its_priority_s(tmp_path: Path) -> None:
    box = DurableOutbox(tmp_path / "o.db")
    box.add(1, 1, b"summary", 0, 1_000, stream="summaries")
    box.add(1, 2, b"batch", 1, 1_000)
    assert {f.seq: f.stream for f in box.to_send(2_000, 60_000)} == {1: "summaries", 2: "readings"}
