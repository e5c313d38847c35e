"""What the uplink can carry, learnt from the gateway's own publishes and the hub's DeliveryAcks.

Pure: no clock reads, time comes in as int ms. The "round trip" measured here is publish to
DeliveryAck: path delay, the frame's airtime, queueing behind our own frames and the hub's
200-ms ack batching. That is exactly what an ack timeout has to cover, so it is what we smooth.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

from .errors import UplinkError

ACK_TIMEOUT_INITIAL_MS = 10_000
"""Before any sample: the gateway's historical fixed ack timeout."""
ACK_TIMEOUT_MIN_MS = 2_000
"""Hub batching (200 ms) + broker + SQLite commit + 3G jitter; below this, spurious resends cost more than waiting."""
ACK_TIMEOUT_MAX_MS = 120_000
"""Past two minutes a link is broken rather than slow; the circuit breaker takes over from there."""
ACK_GRANULARITY_MS = 200
"""RFC 6298's clock granularity G: the hub acknowledges in batches every 200 ms."""
BACKOFF_MAX = 64
"""RFC 6298 5.5: the timeout doubles per unanswered timeout period, this many times at most (then clamped)."""

RTT_ALPHA = 1 / 8  # RFC 6298 gains
RTT_BETA = 1 / 4
LOSS_ALPHA = 1 / 32
"""About the last 30 frames: follows a change within a minute of traffic, steady enough at 2-5 % loss."""
GOODPUT_SAMPLES = 32
"""Ack events in the goodput window; counted, not timed, so an idle hour does not erase what we know."""
IN_FLIGHT_CAP = 4096
"""Frames remembered while unacknowledged; beyond this the oldest are forgotten (no sample from them)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkEstimate:
    """One reading of the link; ``None`` means not measured yet."""

    rtt_ms: float | None = None  # SRTT: publish -> DeliveryAck, first attempts only (Karn)
    rttvar_ms: float | None = None
    goodput_bytes_per_s: float | None = None  # acked bytes over the time the link was busy with them
    loss: float = 0.0  # EWMA of "this frame needed more than one attempt", 0..1
    ack_timeout_ms: int = ACK_TIMEOUT_INITIAL_MS
    in_flight_bytes: int = 0  # sent within the last ack timeout and not acknowledged yet
    rtt_samples: int = 0
    loss_samples: int = 0

    @property
    def known(self) -> bool:
        """Both a round trip and a goodput have been measured."""
        return self.rtt_ms is not None and self.goodput_bytes_per_s is not None

    def as_dict(self) -> dict[str, float | int | None]:
        """JSON-friendly, for status queries and logs."""
        return {
            "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms, 1),
            "rttvar_ms": None if self.rttvar_ms is None else round(self.rttvar_ms, 1),
            "goodput_bytes_per_s": None if self.goodput_bytes_per_s is None else round(self.goodput_bytes_per_s),
            "loss": round(self.loss, 4),
            "ack_timeout_ms": self.ack_timeout_ms,
            "in_flight_bytes": self.in_flight_bytes,
            "rtt_samples": self.rtt_samples,
            "loss_samples": self.loss_samples,
        }


@dataclass(slots=True)
class _Flight:
    nbytes: int
    sent_ms: int  # of the latest attempt
    resent: bool  # more than one attempt: no RTT sample (Karn), counts as a loss
    unclear: bool  # first seen as a resend (after an outage or a restart): no RTT and no loss sample


class LinkEstimator:
    """Feed it every publish (``sent``), every DeliveryAck (``acked``) and every disconnect (``link_lost``)."""

    def __init__(
        self, *, initial_ack_timeout_ms: int = ACK_TIMEOUT_INITIAL_MS, min_ack_timeout_ms: int = ACK_TIMEOUT_MIN_MS
    ) -> None:
        self.initial_ack_timeout_ms = initial_ack_timeout_ms
        self.min_ack_timeout_ms = min_ack_timeout_ms
        self._flights: dict[Hashable, _Flight] = {}  # insertion order = latest send order
        self._srtt: float | None = None
        self._rttvar = 0.0
        self._rtt_samples = 0
        self._backoff = 1
        self._backoff_ms = -(2**62)  # when the timeout was last doubled
        self._loss = 0.0
        self._loss_samples = 0
        self._goodput: deque[tuple[int, int]] = deque(maxlen=GOODPUT_SAMPLES)  # (bytes, busy ms)
        self._last_ack_ms = -(2**62)
        self.unknown_acks = 0  # acks naming a frame we never saw or forgot
        self.forgotten = 0  # frames dropped from the in-flight table at the cap

    # feeding

    def sent(self, key: Hashable, nbytes: int, now_ms: int, attempt: int = 1) -> None:
        """A frame went out; ``attempt`` counts from 1 (the outbox's ``attempts`` after ``to_send``)."""
        if nbytes < 0:
            raise UplinkError(f"sent {key!r}: nbytes must be >= 0, got {nbytes}")
        if attempt < 1:
            raise UplinkError(f"sent {key!r}: attempt counts from 1, got {attempt}")
        flight = self._flights.pop(key, None)
        if flight is None:
            # A resend we never saw go out first (outage, restart, forgotten at the cap): the reason is unknown.
            flight = _Flight(nbytes, now_ms, resent=attempt > 1, unclear=attempt > 1)
        else:
            if attempt > 1 and not flight.unclear:
                self._timed_out(now_ms)
            flight.nbytes, flight.sent_ms = nbytes, now_ms
            flight.resent = flight.resent or attempt > 1
        self._flights[key] = flight
        while len(self._flights) > IN_FLIGHT_CAP:
            del self._flights[next(iter(self._flights))]
            self.forgotten += 1

    def acked(self, keys: Iterable[Hashable], now_ms: int) -> int:
        """The hub confirmed these frames; returns how many we knew (the others are counted and ignored)."""
        known = nbytes = 0
        first_sent_ms: int | None = None
        for key in keys:
            flight = self._flights.pop(key, None)
            if flight is None:
                self.unknown_acks += 1
                continue
            known += 1
            if not flight.unclear:
                self._loss_sample(1.0 if flight.resent else 0.0)
                if not flight.resent:
                    self._rtt_sample(now_ms - flight.sent_ms)
            nbytes += flight.nbytes
            first_sent_ms = flight.sent_ms if first_sent_ms is None else min(first_sent_ms, flight.sent_ms)
        if first_sent_ms is not None:
            self._goodput_sample(nbytes, now_ms, first_sent_ms)
        return known

    def link_lost(self) -> None:
        """The connection dropped: nothing is in flight any more, and the resends that follow are not loss.

        Their acks would time the outage as airtime, so they give no sample of any kind.
        """
        self._flights.clear()
        self._backoff = 1  # an outage says nothing about the round trip

    # reading

    def estimate(self, now_ms: int) -> LinkEstimate:
        busy_ms = sum(ms for _, ms in self._goodput)
        goodput = sum(b for b, _ in self._goodput) * 1000 / busy_ms if busy_ms > 0 else None
        return LinkEstimate(
            rtt_ms=self._srtt,
            rttvar_ms=None if self._srtt is None else self._rttvar,
            goodput_bytes_per_s=goodput,
            loss=self._loss,
            ack_timeout_ms=self.ack_timeout_ms(),
            in_flight_bytes=self.in_flight_bytes(now_ms),
            rtt_samples=self._rtt_samples,
            loss_samples=self._loss_samples,
        )

    def in_flight_bytes(self, now_ms: int) -> int:
        """Unacknowledged bytes sent within the last ack timeout.

        A frame past its timeout is presumed lost until it is resent, so a lost frame or a silent hub
        cannot keep the send window shut for longer than one ack timeout.
        """
        cutoff = now_ms - self.ack_timeout_ms()
        total = 0
        for flight in reversed(self._flights.values()):  # newest send first
            if flight.sent_ms <= cutoff:
                break
            total += flight.nbytes
        return total

    def ack_timeout_ms(self) -> int:
        """RFC 6298: SRTT + max(G, 4*RTTVAR), doubled per timeout since the last sample, clamped."""
        if self._srtt is None:
            base = float(self.initial_ack_timeout_ms)
        else:
            base = self._srtt + max(ACK_GRANULARITY_MS, 4 * self._rttvar)
        return int(
            min(max(ACK_TIMEOUT_MAX_MS, self.min_ack_timeout_ms), max(self.min_ack_timeout_ms, base * self._backoff))
        )

    # the three estimators

    def _rtt_sample(self, rtt_ms: int) -> None:
        r = float(max(rtt_ms, 0))
        if self._srtt is None:
            self._srtt, self._rttvar = r, r / 2
        else:
            self._rttvar += RTT_BETA * (abs(self._srtt - r) - self._rttvar)
            self._srtt += RTT_ALPHA * (r - self._srtt)
        self._rtt_samples += 1
        self._backoff = 1

    def _timed_out(self, now_ms: int) -> None:
        # One doubling per timeout period, however many frames a tick resends.
        if now_ms - self._backoff_ms >= self.ack_timeout_ms():
            self._backoff = min(self._backoff * 2, BACKOFF_MAX)
            self._backoff_ms = now_ms

    def _loss_sample(self, lost: float) -> None:
        alpha = max(LOSS_ALPHA, 1 / (self._loss_samples + 1))  # a plain mean until the EWMA has history
        self._loss += alpha * (lost - self._loss)
        self._loss_samples += 1

    def _goodput_sample(self, nbytes: int, now_ms: int, first_sent_ms: int) -> None:
        # The link worked on these bytes since the later of the previous ack and their send: an idle
        # gap before the send is not counted, so goodput does not sink while nothing is sent.
        busy_ms = now_ms - max(self._last_ack_ms, first_sent_ms)
        self._last_ack_ms = max(self._last_ack_ms, now_ms)
        if busy_ms > 0:
            self._goodput.append((nbytes, busy_ms))
        elif self._goodput:  # two acks in the same ms: the previous sample's time carried these bytes too
            b, ms = self._goodput[-1]
            self._goodput[-1] = (b + nbytes, ms)
