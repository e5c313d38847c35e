"""The gateway outbox: frames stay until acknowledged, resends are counted, the cap evicts the oldest.

Acks free only frames that were sent: an ack for a frame never sent is ignored and counted.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymonitor.simulators.outbox import Outbox

T0 = 1_767_225_600_000
S = 7  # the sender's session
RESEND_MS = 10_000


def filled(n: int, size: int = 100, cap_bytes: int = 1 << 20) -> Outbox:
    box = Outbox(cap_bytes=cap_bytes)
    for seq in range(1, n + 1):
        box.add(S, seq, bytes([seq % 256]) * size, readings=10, now_ms=T0)
    return box


def test_added_frames_are_pending_and_counted() -> None:
    box = filled(3)
    assert len(box) == 3
    assert box.size_bytes == 300
    assert (box.counters.frames, box.counters.readings) == (3, 30)


def test_new_frames_are_sent_once_then_wait_for_the_resend_timeout() -> None:
    box = filled(3)
    first = box.to_send(T0, RESEND_MS)
    assert [f.seq for f in first] == [1, 2, 3]
    assert all(f.sent_ms == T0 and f.attempts == 1 for f in first)
    assert box.to_send(T0 + RESEND_MS - 1, RESEND_MS) == []
    assert box.counters.resends == 0


def test_unacknowledged_frames_are_resent_after_the_timeout_and_counted() -> None:
    box = filled(3)
    box.to_send(T0, RESEND_MS)
    box.ack(S, [2], T0 + 50)
    again = box.to_send(T0 + RESEND_MS, RESEND_MS)
    assert [f.seq for f in again] == [1, 3]
    assert all(f.attempts == 2 for f in again)
    assert box.counters.resends == 2
    box.to_send(T0 + 2 * RESEND_MS, RESEND_MS)
    assert box.counters.resends == 4


def test_after_a_reconnect_every_unacknowledged_frame_goes_again_at_once() -> None:
    box = filled(3)
    box.to_send(T0, RESEND_MS)
    box.mark_unsent()
    again = box.to_send(T0 + 1, RESEND_MS)
    assert [f.seq for f in again] == [1, 2, 3]
    assert box.counters.resends == 0  # a reconnect resend is a fresh send, not a timeout resend
    assert all(f.attempts == 2 for f in again)


def test_ack_forgets_frames_and_keeps_the_worst_delay() -> None:
    box = Outbox()
    box.add(S, 1, b"a" * 10, readings=4, now_ms=T0)
    box.add(S, 2, b"b" * 20, readings=6, now_ms=T0 + 1_000)
    box.add(S, 3, b"c" * 30, readings=8, now_ms=T0 + 2_000)
    box.to_send(T0 + 2_000, RESEND_MS)
    assert box.ack(S, [1, 2], now_ms=T0 + 5_000) == 2
    assert box.ack(S, [2, 99], now_ms=T0 + 6_000) == 0  # already gone, never existed: nothing to do
    assert box.counters.unknown_acks == 2
    assert len(box) == 1
    assert box.size_bytes == 30
    assert (box.counters.acked_frames, box.counters.acked_readings) == (2, 10)
    assert box.counters.worst_delay_ms == 5_000
    box.ack(S, [3], now_ms=T0 + 3_000)
    assert box.counters.worst_delay_ms == 5_000  # the worst stays the worst
    assert box.size_bytes == 0


def test_an_ack_for_a_frame_never_sent_is_ignored_and_counted() -> None:
    box = filled(3)
    assert box.ack(S, [1, 2, 3], now_ms=T0 + 1) == 0  # forged: the hub cannot have frames never sent
    assert len(box) == 3 and box.size_bytes == 300
    assert (box.counters.unsent_acks, box.counters.unknown_acks, box.counters.acked_frames) == (3, 0, 0)
    assert [f.seq for f in box.to_send(T0 + 2, RESEND_MS, limit=1)] == [1]
    box.mark_unsent()  # a reconnect: frame 1 went out once, so a late ack for it still counts
    assert box.ack(S, [1, 2, 4], now_ms=T0 + 3) == 1
    c = box.counters
    assert (c.unsent_acks, c.unknown_acks, c.acked_frames, c.acked_readings) == (4, 1, 1, 10)
    assert [f.seq for f in box.to_send(T0 + 4, RESEND_MS)] == [2, 3]


def test_past_the_cap_the_oldest_frames_are_evicted_and_counted() -> None:
    box = Outbox(cap_bytes=250)
    for seq in range(1, 6):
        box.add(S, seq, b"x" * 100, readings=7, now_ms=T0 + seq)
    assert list(box.frames) == [(S, 4), (S, 5)]
    assert box.size_bytes == 200
    assert (box.counters.evicted_frames, box.counters.evicted_readings) == (3, 21)
    assert box.counters.frames == 5


def test_a_single_frame_larger_than_the_cap_is_kept() -> None:
    box = Outbox(cap_bytes=10)
    box.add(S, 1, b"x" * 100, readings=1, now_ms=T0)
    assert list(box.frames) == [(S, 1)]
    box.add(S, 2, b"y" * 100, readings=1, now_ms=T0)
    assert list(box.frames) == [(S, 2)]
    assert box.counters.evicted_frames == 1


def test_adding_a_frame_that_is_still_pending_is_refused_and_changes_nothing() -> None:
    box = Outbox()
    box.add(S, 1, b"old" * 10, readings=3, now_ms=T0)
    with pytest.raises(ValueError, match="already in the outbox"):
        box.add(S, 1, b"new" * 20, readings=6, now_ms=T0 + 1)
    assert box.size_bytes == 30
    c = box.counters
    assert c.acked_frames + c.evicted_frames + len(box) == c.frames == 1


def test_a_restarted_sender_keeps_frames_of_both_sessions_apart() -> None:
    box = Outbox()
    box.add(1, 1, b"a" * 10, readings=1, now_ms=T0)
    box.add(2, 1, b"b" * 10, readings=1, now_ms=T0)
    box.to_send(T0, RESEND_MS)
    assert box.ack(1, [1], now_ms=T0 + 1) == 1
    assert [(f.session, f.seq) for f in box.frames.values()] == [(2, 1)]


# ---------------------------------------------------------------- property: the books always balance

operation = st.one_of(
    st.tuples(st.just("add"), st.integers(min_value=0, max_value=400), st.integers(min_value=0, max_value=50)),
    st.tuples(st.just("ack"), st.lists(st.integers(min_value=0, max_value=60), max_size=8), st.just(0)),
    st.tuples(st.just("send"), st.integers(min_value=0, max_value=20_000), st.just(0)),
    st.tuples(st.just("unsent"), st.just(0), st.just(0)),
)


@settings(max_examples=300, deadline=None)
@given(cap_bytes=st.integers(min_value=1, max_value=2_000), ops=st.lists(operation, max_size=80))
def test_any_interleaving_keeps_bytes_and_frame_counts_balanced(cap_bytes: int, ops: list[tuple]) -> None:
    box = Outbox(cap_bytes=cap_bytes)
    seq = 0
    now = T0
    for kind, a, b in ops:
        now += 100
        if kind == "add":
            seq += 1  # a gateway's seq only grows
            box.add(S, seq, b"\x01" * a, readings=b, now_ms=now)
        elif kind == "ack":
            waiting = {key: f.attempts for key, f in box.frames.items()}
            before = (box.counters.acked_frames, box.counters.unsent_acks, box.counters.unknown_acks)
            acked = [s for s in a if s <= seq]
            box.ack(S, acked, now)
            sent = len({s for s in acked if waiting.get((S, s), 0) > 0})
            after = (box.counters.acked_frames, box.counters.unsent_acks, box.counters.unknown_acks)
            assert after[0] - before[0] == sent  # only frames sent at least once go
            assert all(f.attempts == 0 for key, f in box.frames.items() if key[1] in acked)
            assert sum(after) - sum(before) == len(acked)  # every seq named is accounted for
        elif kind == "send":
            box.to_send(now + a, RESEND_MS)
        else:
            box.mark_unsent()
        c = box.counters
        assert box.size_bytes == sum(len(f.payload) for f in box.frames.values())
        assert c.acked_frames + c.evicted_frames + len(box) == c.frames == seq
        assert c.acked_readings + c.evicted_readings + sum(f.readings for f in box.frames.values()) == c.readings
        assert len(box) <= 1 or box.size_bytes <= cap_bytes
