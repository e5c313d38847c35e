"""The hub's pure core: what to do with each frame, when to flush, what to acknowledge.

No I/O here: the core returns effects (write these frames, publish this ack, keep this dead
letter) that the actor carries out. Dedup itself is the store's job (one transaction per
flush, keyed on (node, session, seq)); the core acknowledges stored *and* duplicate frames,
because a duplicate means the node missed an earlier ack and must stop resending.

An event with ``seq > 0`` waited in its node's durable outbox: it is a frame like a reading
batch (one seq space per node), so it joins the pending frames, is deduplicated in the same
transaction and acknowledged in the same ack. The store asks :meth:`HubCore.stamp` for the
timestamps of each *new* reading frame: corrected device clocks, and out-of-range counts.
Summary frames (``up/summaries``) are frames of that seq space too: pended, deduplicated and
acknowledged exactly like reading frames.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from pymonitor.actors.runtime.intake import Accepted, Inbound, accept, dead_letter
from pymonitor.broker import topics
from pymonitor.messages import (
    MAX_FRAME_BYTES,
    DeadLetter,
    DeliveryAck,
    Event,
    NodeBirth,
    NodeDeath,
    ReadingBatch,
    SummaryBatch,
    encode,
    to_ranges,
)
from pymonitor.store.hub_store import TrafficRow

from .clocks import ClockReconciler
from .traffic import TrafficLedger

FUTURE_LIMIT_MS = 86_400_000
"""A reading stamped more than a day after the hub's now is out of range (counted, still stored)."""
EARLIEST_TS_MS = 946_684_800_000
"""2000-01-01T00:00:00Z: anything earlier is a clock that was never set (counted, still stored)."""

Frame = ReadingBatch | Event | SummaryBatch  # what the store deduplicates on (node, session, seq)


@dataclass(frozen=True, slots=True)
class WriteFrames:
    frames: list[Frame]
    traffic: list[TrafficRow] = field(default_factory=list)  # written in the same transaction


@dataclass(frozen=True, slots=True)
class Publish:
    topic: str
    payload: bytes
    retain: bool = False


@dataclass(frozen=True, slots=True)
class Record:
    """Keep a birth, death, event or dead letter in the store."""

    message: NodeBirth | NodeDeath | Event | DeadLetter


Effect = WriteFrames | Publish | Record


@dataclass
class HubCounters:
    frames: int = 0
    frames_stored: int = 0
    duplicates: int = 0
    readings: int = 0
    dead_letters: int = 0
    births: int = 0
    deaths: int = 0
    events: int = 0
    events_stored: int = 0  # events with seq > 0 stored (once)
    event_duplicates: int = 0  # events with seq > 0 seen again: acked, not stored
    acks: int = 0
    ignored: int = 0
    ts_corrected: int = 0  # rows whose device timestamp was corrected (their batch had received_ms)
    ts_out_of_range: int = 0  # readings stamped > 1 day ahead of the hub or before 2000 (still stored)
    summary_frames: int = 0  # summary frames received (duplicates included)
    summaries_stored: int = 0  # summary frames stored (once)
    summary_duplicates: int = 0  # summary frames seen again: acked, not stored


@dataclass
class HubCore:
    """Accepts frames for one fleet and batches readings for the store."""

    fleet: str
    node: str
    flush_max_frames: int = 256
    max_frame_bytes: int = MAX_FRAME_BYTES
    pending: list[Frame] = field(default_factory=list)
    counters: HubCounters = field(default_factory=HubCounters)
    flush_interval_ms: int = 200
    flush_max_rows: int = 100_000
    pending_rows: int = 0
    pending_since_ms: int = 0
    traffic: TrafficLedger = field(default_factory=TrafficLedger)
    clocks: ClockReconciler = field(default_factory=ClockReconciler)

    def _flush_due(self, now_ms: int) -> bool:
        # Checked on every frame: under load the flush timer's tick waits behind frames in the
        # mailbox, so time and size must also be judged as frames arrive.
        return (
            len(self.pending) >= self.flush_max_frames
            or self.pending_rows >= self.flush_max_rows
            or now_ms - self.pending_since_ms >= self.flush_interval_ms
        )

    def on_frame(self, inbound: Inbound, now_ms: int) -> list[Effect]:
        result = accept(self.node, inbound, now_ms, self.max_frame_bytes)
        if isinstance(result, DeadLetter):
            self._account_refused(inbound, now_ms)
            return self._refuse(result)
        self.traffic.add(result.topic.node, now_ms, "up", result.topic.kind, len(inbound.payload))
        return self._route(result, inbound, now_ms)

    def _account_refused(self, inbound: Inbound, now_ms: int) -> None:
        """A refused frame still cost its sender bandwidth: count it when the topic names the sender."""
        try:
            parsed = topics.parse(inbound.topic)
        except topics.TopicError:
            return
        self.traffic.add(parsed.node, now_ms, "up", parsed.kind, len(inbound.payload))

    def _refuse(self, letter: DeadLetter) -> list[Effect]:
        self.counters.dead_letters += 1
        topic = topics.up(self.fleet, self.node, "deadletter")
        return [Record(letter), Publish(topic, encode(letter))]

    def _route(self, accepted: Accepted, inbound: Inbound, now_ms: int) -> list[Effect]:
        msg, kind = accepted.message, accepted.topic.kind
        if isinstance(msg, ReadingBatch) and kind in ("readings", "backfill"):
            self.counters.frames += 1
            self.pending_rows += msg.rows
            return self._pend(msg, now_ms)
        if isinstance(msg, SummaryBatch) and kind == "summaries":
            self.counters.summary_frames += 1
            self.pending_rows += msg.rows
            return self._pend(msg, now_ms)
        if isinstance(msg, NodeBirth) and kind == "state":
            self.counters.births += 1
            return [Record(msg)]
        if isinstance(msg, NodeDeath) and kind == "state":
            self.counters.deaths += 1
            return [Record(msg)]
        if isinstance(msg, Event) and kind == "events":
            self.counters.events += 1
            return self._pend(msg, now_ms) if msg.seq > 0 else [Record(msg)]
        if isinstance(msg, DeadLetter) and kind == "deadletter":
            self.counters.ignored += 1  # another node's dead letter: already recorded where it happened
            return []
        reason = f"MessageError: a {type(msg).__name__} does not belong on a {kind!r} topic"
        return self._refuse(dead_letter(self.node, inbound.topic, inbound.payload, reason, now_ms))

    def _pend(self, frame: Frame, now_ms: int) -> list[Effect]:
        if not self.pending:
            self.pending_since_ms = now_ms
        self.pending.append(frame)
        return self.on_flush(now_ms) if self._flush_due(now_ms) else []

    def on_flush(self, now_ms: int) -> list[Effect]:
        """Hand pending frames to the store (the actor calls :meth:`on_written` after commit)."""
        if not self.pending and not self.traffic:
            return []
        frames, self.pending = self.pending, []
        self.pending_rows = 0
        return [WriteFrames(frames, self.traffic.drain())]

    def stamp(self, frame: ReadingBatch, now_ms: int) -> list[int] | None:
        """Corrected timestamps of a new frame's rows (None: the batch has no received_ms), and
        out-of-range readings counted. Called by the store once per frame it actually stores."""
        ts = np.cumsum(np.frombuffer(frame.ts_ms, dtype="<i8"))
        corrected = None
        if frame.received_ms:
            received = np.cumsum(np.frombuffer(frame.received_ms, dtype="<i8"))
            index = np.frombuffer(frame.device_index, dtype="<u4")
            corrected = ts = self.clocks.reconcile(frame.devices, index, ts, received)
            self.counters.ts_corrected += frame.rows
        if ts.size and (ts.min() < EARLIEST_TS_MS or ts.max() > now_ms + FUTURE_LIMIT_MS):
            bad = (ts < EARLIEST_TS_MS) | (ts > now_ms + FUTURE_LIMIT_MS)
            self.counters.ts_out_of_range += int(np.count_nonzero(frame.measured()[:, bad]))
        return None if corrected is None else corrected.tolist()

    def on_written(self, stored: list[Frame], duplicates: list[Frame], readings: int, now_ms: int) -> list[Effect]:
        """Acknowledge every frame of the transaction (reading batches, summaries, held events alike), one
        ack per (node, session)."""
        held = sum(isinstance(f, Event) for f in stored)
        held_again = sum(isinstance(f, Event) for f in duplicates)
        summed = sum(isinstance(f, SummaryBatch) for f in stored)
        summed_again = sum(isinstance(f, SummaryBatch) for f in duplicates)
        self.counters.frames_stored += len(stored) - held - summed
        self.counters.events_stored += held
        self.counters.summaries_stored += summed
        self.counters.duplicates += len(duplicates) - held_again - summed_again
        self.counters.event_duplicates += held_again
        self.counters.summary_duplicates += summed_again
        self.counters.readings += readings
        seqs: dict[tuple[str, int], list[int]] = defaultdict(list)
        for frame in (*stored, *duplicates):
            seqs[(frame.node, frame.session)].append(frame.seq)
        effects: list[Effect] = []
        for (node, session), numbers in seqs.items():
            ack = DeliveryAck(node=node, session=session, ranges=to_ranges(numbers), hub_ts_ms=now_ms)
            payload = encode(ack)
            effects.append(Publish(topics.delivery_ack(self.fleet, node), payload))
            self.traffic.add(node, now_ms, "down", "ack", len(payload))
            self.counters.acks += 1
        return effects
