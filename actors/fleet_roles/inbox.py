"""A bounded, coalescing inbox between the hub's stream and one role actor.

The feeder (the MQTT thread) must never wait for a role: :meth:`RoleInbox.offer` takes an item
while the inbox holds fewer than ``capacity`` readings and otherwise drops it and counts it. The
actor is told to look only when the inbox goes from empty to non-empty, so its pykka mailbox holds
at most one wake-up however fast readings come, and it takes everything waiting in one go
(coalescing many small batches into one pass).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .live import Item, size

CAPACITY_READINGS = 200_000
"""Readings a role may have waiting: minutes of a 1,000 readings/s feed, a few MB."""


@dataclass
class InboxStats:
    accepted_readings: int = 0
    dropped_readings: int = 0
    dropped_items: int = 0
    taken_readings: int = 0
    peak_readings: int = 0


class RoleInbox:
    """Thread-safe; ``depth`` is in readings (an event counts as one)."""

    def __init__(self, capacity: int = CAPACITY_READINGS) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity: expected a positive number of readings, got {capacity}")
        self.capacity = capacity
        self.stats = InboxStats()
        self._items: list[Item] = []
        self._depth = 0
        self._armed = True  # True: the next offer must wake the actor
        self._lock = threading.Lock()

    @property
    def depth(self) -> int:
        return self._depth

    def offer(self, item: Item) -> tuple[bool, bool]:
        """(accepted, wake the actor); a full inbox drops the item and counts it."""
        n = size(item)
        with self._lock:
            if self._depth + n > self.capacity:
                self.stats.dropped_readings += n
                self.stats.dropped_items += 1
                return False, False
            self._items.append(item)
            self._depth += n
            self.stats.accepted_readings += n
            self.stats.peak_readings = max(self.stats.peak_readings, self._depth)
            wake, self._armed = self._armed, False
            return True, wake

    def take(self) -> list[Item]:
        """Everything waiting; the next offer wakes the actor again."""
        with self._lock:
            items, self._items = self._items, []
            self.stats.taken_readings += self._depth
            self._depth = 0
            self._armed = True
            return items

    def rearm(self) -> bool:
        """After an actor (re)start: True if items wait and nobody will wake it for them."""
        with self._lock:
            self._armed = not self._items
            return bool(self._items)
