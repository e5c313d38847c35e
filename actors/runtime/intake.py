"""Turning an MQTT frame into a message, or into a dead letter that says why not.

Every receiving actor uses this, so bad input is handled the same way everywhere: the frame
is refused with the topic, the path and the reason, counted, and published to the receiver's
dead-letter topic; the actor goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymonitor.broker import topics
from pymonitor.broker.topics import Topic, TopicError
from pymonitor.messages import DeadLetter, MessageError, decode_unpacked

DEAD_LETTER_PAYLOAD_BYTES = 256
"""How much of a refused frame is kept: enough to recognise it, never a whole oversize frame."""


@dataclass(frozen=True, slots=True)
class Inbound:
    """A frame as the bridge hands it to an actor."""

    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Accepted:
    topic: Topic
    message: Any


def dead_letter(receiver: str, topic: str, payload: bytes, reason: str, now_ms: int) -> DeadLetter:
    return DeadLetter(
        node=receiver,
        ts_ms=now_ms,
        topic=topic[:512],
        reason=reason,
        payload=bytes(payload[:DEAD_LETTER_PAYLOAD_BYTES]),
        payload_size=len(payload),
    )


def accept(receiver: str, inbound: Inbound, now_ms: int, max_bytes: int) -> Accepted | DeadLetter:
    """Parse the topic and decode the payload; a refusal comes back as a :class:`DeadLetter`."""
    try:
        parsed = topics.parse(inbound.topic)
    except TopicError as exc:
        return dead_letter(receiver, inbound.topic, inbound.payload, f"TopicError: {exc}", now_ms)
    try:
        msg = decode_unpacked(inbound.payload, max_bytes=max_bytes)
    except MessageError as exc:
        return dead_letter(receiver, inbound.topic, inbound.payload, f"MessageError: {exc}", now_ms)
    sender = getattr(msg, "node", None)
    if sender is not None and parsed.direction != "down" and sender != parsed.node:
        reason = f"MessageError: at $.node: frame says {sender!r} but was published under node {parsed.node!r}"
        return dead_letter(receiver, inbound.topic, inbound.payload, reason, now_ms)
    return Accepted(parsed, msg)
