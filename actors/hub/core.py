"""The hub's pure core: what to do with each frame, when to flush, what to acknowledge.

No I/O here: the core returns effects (write these frames, publish this ack, keep this dead
letter) that the actor carries out. Dedup itself is the store's job (one transaction per
flush, keyed on (node, session, seq)); the core acknowledges stored *and* duplicate frames,
because a duplicate means the node missed an earlier ack and must stop resending.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

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
    encode,
    to_ranges,
)
from pymonitor.store.hub_store import TrafficRow

from .traffic import TrafficLedger


@dataclass(frozen=True, slots=True)
class WriteFrames:
    frames: list[ReadingBatch]
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
    acks: int = 0
    ignored: int = 0


@dataclass
class HubCore:
    """Accepts frames for one fleet and batches readings for the store."""

    fleet: str
    node: str
    flush_max_frames: int = 256
    max_frame_bytes: int = MAX_FRAME_BYTES
    pending: list[ReadingBatch] = field(default_factory=list)
    counters: HubCounters = field(default_factory=HubCounters)
    flush_interval_ms: int = 200
    flush_max_rows: int = 100_000
    pending_rows: int = 0
    pending_since_ms: int = 0
    traffic: TrafficLedger = field(default_factory=TrafficLedger)

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
            if not self.pending:
                self.pending_since_ms = now_ms
            self.pending.append(msg)
            self.pending_rows += msg.rows
            return self.on_flush(now_ms) if self._flush_due(now_ms) else []
        if isinstance(msg, NodeBirth) and kind == "state":
            self.counters.births += 1
            return [Record(msg)]
        if isinstance(msg, NodeDeath) and kind == "state":
            self.counters.deaths += 1
            return [Record(msg)]
        if isinstance(msg, Event) and kind == "events":
            self.counters.events += 1
            return [Record(msg)]
        if isinstance(msg, DeadLetter) and kind == "deadletter":
            self.counters.ignored += 1  # another node's dead letter: already recorded where it happened
            return []
        reason = f"MessageError: a {type(msg).__name__} does not belong on a {kind!r} topic"
        return self._refuse(dead_letter(self.node, inbound.topic, inbound.payload, reason, now_ms))

    def on_flush(self, now_ms: int) -> list[Effect]:
        """Hand pending frames to the store (the actor calls :meth:`on_written` after commit)."""
        if not self.pending and not self.traffic:
            return []
        frames, self.pending = self.pending, []
        self.pending_rows = 0
        return [WriteFrames(frames, self.traffic.drain())]

    def on_written(
        self, stored: list[ReadingBatch], duplicates: list[ReadingBatch], readings: int, now_ms: int
    ) -> list[Effect]:
        """Acknowledge every frame of the transaction, one ack per (node, session)."""
        self.counters.frames_stored += len(stored)
        self.counters.duplicates += len(duplicates)
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
