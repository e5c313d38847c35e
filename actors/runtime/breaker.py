"""A circuit breaker per upstream: stop hammering a link that does not answer, probe it now and then.

Closed: send freely; ``failure_threshold`` failures in a row open it. Open: send nothing until
``open_for_ms`` has passed (doubling on every failed probe, up to ``max_open_ms``, jittered so a
fleet does not probe in step). Half-open: one probe goes; a success closes the breaker; a failure,
or no answer within ``probe_timeout_ms``, opens it again. Pure: time and randomness are passed in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum

FAILURE_THRESHOLD = 3
OPEN_FOR_MS = 5_000
MAX_OPEN_MS = 300_000
PROBE_TIMEOUT_MS = 10_000
"""A probe unanswered for this long counts as failed (set it to the sender's ack timeout)."""


class BreakerState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass
class CircuitBreaker:
    failure_threshold: int = FAILURE_THRESHOLD
    open_for_ms: int = OPEN_FOR_MS
    max_open_ms: int = MAX_OPEN_MS
    probe_timeout_ms: int = PROBE_TIMEOUT_MS
    rng: random.Random = field(default_factory=random.Random)
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0  # in a row
    opened: int = 0  # consecutive openings, for the backoff
    retry_at_ms: int = 0
    probe_in_flight: bool = False
    probe_sent_ms: int = 0
    transitions: int = 0

    def allow(self, now_ms: int) -> bool:
        """May something be sent now? In half-open, only one probe at a time."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN and now_ms >= self.retry_at_ms:
            self._move(BreakerState.HALF_OPEN)
        if self.state is BreakerState.HALF_OPEN and self.probe_in_flight:
            if now_ms - self.probe_sent_ms < self.probe_timeout_ms:
                return False
            self.failure(now_ms)  # the probe was never answered: open again, for longer
            return False
        if self.state is BreakerState.HALF_OPEN:
            self.probe_in_flight = True
            self.probe_sent_ms = now_ms
            return True
        return False

    def success(self) -> None:
        self.failures = 0
        self.opened = 0
        self.probe_in_flight = False
        if self.state is not BreakerState.CLOSED:
            self._move(BreakerState.CLOSED)

    def failure(self, now_ms: int) -> None:
        self.failures += 1
        self.probe_in_flight = False
        if self.state is BreakerState.HALF_OPEN or self.failures >= self.failure_threshold:
            ceiling = min(self.max_open_ms, self.open_for_ms * 2**self.opened)
            self.retry_at_ms = now_ms + int(self.rng.uniform(ceiling / 2, ceiling))
            self.opened += 1
            if self.state is not BreakerState.OPEN:
                self._move(BreakerState.OPEN)

    def _move(self, state: BreakerState) -> None:
        self.state = state
        self.transitions += 1
