"""When bytes arrive across a link: its capacity, then delay, jitter and the cost of loss.

Capacity is a fixed rate (token bucket) or a recorded mahimahi trace: one line per millisecond
offset at which one 1500-byte packet may cross (a repeated offset is several packets; the trace
repeats after its last offset), so an uplink can be tested on a real, variable 3G link. All of
it is pure arithmetic on times passed in: schedules are checked exactly, without sockets.
"""

from __future__ import annotations

import bisect
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from .profiles import LinkError, LinkProfile

OPPORTUNITY_BYTES = 1500  # mahimahi: one delivery opportunity carries one MTU-sized packet
SHARED_DATA_ENV = "PM_SHARED_DATA"
TCP_IP_HEADER_BYTES = 40
RTO_MIN_S = 0.2  # Linux's minimum retransmission timeout
RETRIES_MAX = 6


class Shaper(Protocol):
    """A link's capacity in one direction, shared by every connection on it, in FIFO order."""

    def reserve(self, now_s: float, nbytes: int) -> float:
        """Book ``nbytes`` entering the link at ``now_s``; returns when their last byte has crossed."""
        ...


def shared_data_dir() -> Path | None:
    """The shared data folder (``$PM_SHARED_DATA`` or ``<repo>/../shared/data``), or None in a bare clone."""
    env = os.environ.get(SHARED_DATA_ENV)
    candidate = Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"
    return candidate if candidate.is_dir() else None


@dataclass(frozen=True, slots=True)
class DeliveryTrace:
    """Delivery opportunities in ms from the trace's start; it repeats every ``period_ms`` (its last offset)."""

    offsets_ms: tuple[int, ...]
    source: str = "<memory>"

    def __post_init__(self) -> None:
        if not self.offsets_ms:
            raise LinkError(f"{self.source}: a trace needs at least one delivery opportunity")
        previous = 0
        for i, offset in enumerate(self.offsets_ms):
            if not isinstance(offset, int) or offset < previous:
                raise LinkError(f"{self.source} at offset [{i}]: expected an int >= {previous}, got {offset!r}")
            previous = offset
        if self.offsets_ms[-1] <= 0:
            raise LinkError(f"{self.source}: the last offset must be > 0 (it is the period the trace repeats at)")

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> DeliveryTrace:
        """Read a mahimahi trace; a line that is not a non-negative integer is refused with its number."""
        offsets: list[int] = []
        previous = 0
        with Path(path).open(encoding="ascii", errors="replace") as lines:
            for number, line in enumerate(lines, start=1):
                text = line.strip()
                if not text:
                    continue  # a trailing blank line is common and harmless
                if not text.isdigit():
                    raise LinkError(f"{path} line {number}: expected a millisecond offset (integer), got {text!r}")
                offset = int(text)
                if offset < previous:
                    raise LinkError(f"{path} line {number}: offset {offset} is before the previous one ({previous})")
                offsets.append(offset)
                previous = offset
        return cls(tuple(offsets), source=str(path))

    @property
    def period_ms(self) -> int:
        return self.offsets_ms[-1]

    @property
    def mean_rate_bps(self) -> float:
        """Average capacity over one period, in bits per second."""
        return len(self.offsets_ms) * OPPORTUNITY_BYTES * 8 * 1000 / self.period_ms

    def time_ms(self, index: int) -> int:
        """When opportunity ``index`` (counted across repeats from 0) happens."""
        repeat, i = divmod(index, len(self.offsets_ms))
        return repeat * self.period_ms + self.offsets_ms[i]

    def first_index_at(self, t_ms: float) -> int:
        """The first opportunity happening at or after ``t_ms``."""
        if t_ms <= 0:
            return 0
        n, period = len(self.offsets_ms), self.period_ms
        repeat = int(t_ms // period)
        # the previous repeat's last offsets equal ``period`` and may fall exactly on t_ms
        for r in (repeat - 1, repeat):
            if r >= 0:
                i = bisect.bisect_left(self.offsets_ms, t_ms - r * period)
                if i < n:
                    return r * n + i
        return (repeat + 1) * n

    def finish_ms(self, start_ms: float, nbytes: int) -> float:
        """When ``nbytes`` offered at ``start_ms`` to an idle link have all crossed."""
        return TraceShaper(self).reserve(start_ms / 1000, nbytes) * 1000


class TraceShaper:
    """A trace as a :class:`Shaper`: an opportunity nobody uses is lost; small writes share one.

    Trace time 0 is the ``origin_s`` passed in (the link's start).
    """

    def __init__(self, trace: DeliveryTrace, origin_s: float = 0.0) -> None:
        self.trace = trace
        self.origin_s = origin_s
        self._index = 0  # the first opportunity not yet full
        self._used = 0  # bytes already booked in it

    def reserve(self, now_s: float, nbytes: int) -> float:
        if nbytes <= 0:
            return now_s
        index = self.trace.first_index_at((now_s - self.origin_s) * 1000)
        used = 0
        if index <= self._index:
            index, used = self._index, self._used
        room = OPPORTUNITY_BYTES - used
        if nbytes <= room:
            last, used = index, used + nbytes
        else:
            more, rest = divmod(nbytes - room, OPPORTUNITY_BYTES)
            last, used = (index + more, OPPORTUNITY_BYTES) if rest == 0 else (index + more + 1, rest)
        self._index, self._used = (last + 1, 0) if used == OPPORTUNITY_BYTES else (last, used)
        return max(now_s, self.origin_s + self.trace.time_ms(last) / 1000)


class TokenBucket:
    """A fixed rate in bytes/s that may send ``burst_bytes`` at once after being idle.

    The bucket's state may lie in the future (bytes already booked), so bookings are FIFO.
    """

    def __init__(self, rate_bytes_s: float, burst_bytes: int = OPPORTUNITY_BYTES) -> None:
        if rate_bytes_s <= 0:
            raise LinkError(f"token bucket at rate_bytes_s: expected > 0, got {rate_bytes_s!r}")
        if burst_bytes < 0:
            raise LinkError(f"token bucket at burst_bytes: expected >= 0, got {burst_bytes!r}")
        self.rate_bytes_s = rate_bytes_s
        self.burst_bytes = burst_bytes
        self._tokens = float(burst_bytes)
        self._at_s: float | None = None  # when ``_tokens`` was true

    def reserve(self, now_s: float, nbytes: int) -> float:
        start = now_s if self._at_s is None else max(now_s, self._at_s)
        if self._at_s is not None:
            self._tokens = min(self.burst_bytes, self._tokens + (start - self._at_s) * self.rate_bytes_s)
        if nbytes <= self._tokens:
            self._tokens -= nbytes
            self._at_s = start
            return start
        done = start + (nbytes - self._tokens) / self.rate_bytes_s
        self._tokens, self._at_s = 0.0, done
        return done


def retransmit_timeout_s(delay_s: float, jitter_s: float) -> float:
    """A TCP sender's RTO on this path: round trip plus four times its variation, at least 200 ms."""
    return 2 * delay_s + max(RTO_MIN_S, 4 * jitter_s)


class LinkDirection:
    """One direction's impairments as pure arithmetic: when each piece of a chunk arrives."""

    def __init__(
        self,
        *,
        shaper: Shaper | None = None,
        delay_s: float = 0.0,
        jitter_s: float = 0.0,
        loss: float = 0.0,
        packet_bytes: int = 1500 - TCP_IP_HEADER_BYTES,
        rng: random.Random | None = None,
    ) -> None:
        self.shaper, self.delay_s, self.jitter_s, self.loss = shaper, delay_s, jitter_s, loss
        self.packet_bytes = packet_bytes
        self.rng = rng or random.Random(0)
        self.rto_s = retransmit_timeout_s(delay_s, jitter_s)
        self.retransmits = 0  # emulated losses

    def plan(self, now_s: float, nbytes: int, not_before_s: float = 0.0) -> list[tuple[float, int]]:
        """``(arrival_s, length)`` per piece of a chunk sent at ``now_s``; arrivals never go backwards."""
        whole = self.shaper is None and self.loss == 0
        sizes = [nbytes] if whole else [min(self.packet_bytes, nbytes - o) for o in range(0, nbytes, self.packet_bytes)]
        jitter = self.rng.uniform(-self.jitter_s, self.jitter_s) if self.jitter_s else 0.0
        pieces, last = [], not_before_s
        for size in sizes:
            crossed = self.shaper.reserve(now_s, size) if self.shaper else now_s
            arrival = crossed + self.delay_s + jitter + self._loss_penalty_s()
            last = max(last, arrival)  # a late piece holds back the ones behind it, like TCP does
            pieces.append((last, size))
        return pieces

    def _loss_penalty_s(self) -> float:
        penalty, rto = 0.0, self.rto_s
        for _ in range(RETRIES_MAX):
            if self.loss == 0 or self.rng.random() >= self.loss:
                break
            penalty, rto = penalty + rto, rto * 2  # the retransmission may be lost too: backoff doubles
            self.retransmits += 1
        return penalty


def direction_for(
    profile: LinkProfile | None, which: Literal["up", "down"], trace: DeliveryTrace | None, rng: random.Random
) -> LinkDirection:
    """One direction of a profile; a trace, when given, replaces the profile's fixed rate."""
    if profile is None:
        return LinkDirection(shaper=TraceShaper(trace) if trace else None, rng=rng)
    rate_bps = profile.rate_bps_up if which == "up" else profile.rate_bps_down
    shaper: Shaper | None = TraceShaper(trace) if trace else None
    if shaper is None and rate_bps is not None:
        shaper = TokenBucket(rate_bps / 8, burst_bytes=profile.mtu)
    return LinkDirection(
        shaper=shaper,
        delay_s=profile.delay_ms / 1000,
        jitter_s=profile.jitter_ms / 1000,
        loss=profile.loss,
        packet_bytes=profile.mtu - TCP_IP_HEADER_BYTES,
        rng=rng,
    )
