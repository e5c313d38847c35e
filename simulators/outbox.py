"""A gateway's in-memory outbox: frames kept until the hub acknowledges them.

Pure bookkeeping (no I/O, time passed in). A frame leaves the outbox only when a
:class:`DeliveryAck` names it, so a lost publish, a lost ack or a cut link all end in a
resend, and the hub's dedup turns resends into nothing. As in the durable outbox, an ack
deletes only frames sent at least once: an ack naming a frame never sent (forged or replayed)
is ignored and counted (``unsent_acks``), as is one naming a frame that is not here
(``unknown_acks``). Memory is capped: past ``cap_bytes`` the oldest frames are evicted and
counted; nothing is thinned here (:class:`pymonitor.store.outbox.DurableOutbox` keeps frames on
disk, by priority, and thins old backfill before it evicts, for real remote sites).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from pymonitor.store.outbox import PendingFrame, Priority

OUTBOX_CAP_BYTES = 64 * 1024 * 1024


@dataclass
class OutboxCounters:
    frames: int = 0
    readings: int = 0
    acked_frames: int = 0
    acked_readings: int = 0
    resends: int = 0
    evicted_frames: int = 0
    evicted_readings: int = 0
    worst_delay_ms: int = 0  # longest time from frame creation to its ack
    unknown_acks: int = 0  # acks naming frames that are not here (acked already, evicted, never existed)
    unsent_acks: int = 0  # acks naming frames never sent: ignored, the hub cannot have them


@dataclass
class Outbox:
    cap_bytes: int = OUTBOX_CAP_BYTES
    frames: OrderedDict[tuple[int, int], PendingFrame] = field(default_factory=OrderedDict)
    size_bytes: int = 0
    counters: OutboxCounters = field(default_factory=OutboxCounters)

    def add(
        self, session: int, seq: int, payload: bytes, readings: int, now_ms: int, priority: Priority = Priority.LIVE
    ) -> None:
        """Keep a frame under its (session, seq): a restarted sender's new session never collides."""
        key = (session, seq)
        if key in self.frames:
            raise ValueError(f"frame {key} is already in the outbox")
        self.frames[key] = PendingFrame(session, seq, payload, readings, now_ms, priority)
        self.size_bytes += len(payload)
        self.counters.frames += 1
        self.counters.readings += readings
        while self.size_bytes > self.cap_bytes and len(self.frames) > 1:
            _, old = self.frames.popitem(last=False)
            self.size_bytes -= len(old.payload)
            self.counters.evicted_frames += 1
            self.counters.evicted_readings += old.readings

    def to_send(
        self, now_ms: int, resend_after_ms: int, connection: int = 0, limit: int | None = None
    ) -> list[PendingFrame]:
        """Frames never sent, or sent longer than ``resend_after_ms`` ago without an ack (at most
        ``limit`` of them, oldest first); marks them sent."""
        due: list[PendingFrame] = []
        for frame in self.frames.values():
            if limit is not None and len(due) >= limit:
                break
            if frame.sent_ms is None or now_ms - frame.sent_ms >= resend_after_ms:
                if frame.sent_ms is not None:
                    self.counters.resends += 1
                frame.sent_ms = now_ms
                frame.sent_connection = connection
                frame.attempts += 1
                due.append(frame)
        return due

    def mark_unsent(self, before_connection: int | None = None) -> None:
        """After a reconnect, what went out on an earlier connection goes again at once.

        Frames already sent on the new connection (a tick can run between the connect and this
        call) are left alone: resending them would only make duplicates for the hub to drop.
        """
        for frame in self.frames.values():
            if before_connection is None or frame.sent_connection < before_connection:
                frame.sent_ms = None

    def ack(self, session: int, seqs: list[int], now_ms: int) -> int:
        """Forget acknowledged frames of a session that were sent at least once; returns how many."""
        done = 0
        for seq in seqs:
            frame = self.frames.get((session, seq))
            if frame is None:
                self.counters.unknown_acks += 1
                continue
            if frame.attempts == 0:
                self.counters.unsent_acks += 1
                continue
            del self.frames[(session, seq)]
            done += 1
            self.size_bytes -= len(frame.payload)
            self.counters.acked_frames += 1
            self.counters.acked_readings += frame.readings
            self.counters.worst_delay_ms = max(self.counters.worst_delay_ms, now_ms - frame.created_ms)
        return done

    def __len__(self) -> int:
        return len(self.frames)
