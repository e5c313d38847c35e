"""Named link profiles (what a 2G or satellite uplink looks like) and outage schedules.

Figures are typical of the technology, not of one operator: enough to make a store-and-forward
test meet the delays, rates and losses a remote site really sees. A rate of ``None`` means the
direction is not rate limited (loopback speed).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

MINUTE_S = 60.0
HOUR_S = 60 * MINUTE_S
DAY_S = 24 * HOUR_S
MTU_MIN_BYTES = 576  # the smallest MTU every IPv4 host must accept
MTU_MAX_BYTES = 65_535


class LinkError(ValueError):
    """A link profile, outage, or delivery trace that cannot be used; the message says where."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkProfile:
    """How one link behaves in each direction; ``up`` is site -> hub, ``down`` is hub -> site."""

    name: str
    rate_bps_up: int | None  # bits per second; None = not limited
    rate_bps_down: int | None
    delay_ms: float  # one way; the round trip is twice this
    jitter_ms: float = 0.0  # each chunk's delay is delay_ms +/- up to jitter_ms
    loss: float = 0.0  # probability that one packet is lost (0 <= loss < 1)
    mtu: int = 1500

    def __post_init__(self) -> None:
        where = f"link profile {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise LinkError("link profile at name: expected a non-empty string")
        for attr in ("rate_bps_up", "rate_bps_down"):
            rate = getattr(self, attr)
            if rate is not None and (not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0):
                raise LinkError(f"{where} at {attr}: expected a positive int (bits/s) or None, got {rate!r}")
        if not self.delay_ms >= 0:
            raise LinkError(f"{where} at delay_ms: expected >= 0, got {self.delay_ms!r}")
        if not 0 <= self.jitter_ms <= self.delay_ms:
            # jitter above the delay would deliver some bytes before they were sent
            raise LinkError(f"{where} at jitter_ms: expected 0 <= jitter_ms <= delay_ms, got {self.jitter_ms!r}")
        if not 0 <= self.loss < 1:
            raise LinkError(f"{where} at loss: expected 0 <= loss < 1, got {self.loss!r}")
        if not isinstance(self.mtu, int) or not MTU_MIN_BYTES <= self.mtu <= MTU_MAX_BYTES:
            expected = f"an int from {MTU_MIN_BYTES} to {MTU_MAX_BYTES}"
            raise LinkError(f"{where} at mtu: expected {expected}, got {self.mtu!r}")

    @property
    def rtt_ms(self) -> float:
        """Round-trip time without queueing: twice the one-way delay."""
        return 2 * self.delay_ms


PROFILES: dict[str, LinkProfile] = {
    p.name: p
    for p in (
        LinkProfile(name="broadband", rate_bps_up=10_000_000, rate_bps_down=50_000_000, delay_ms=10, jitter_ms=2),
        # HSPA-era 3G: a few Mbit/s down, a few hundred kbit/s up, RTT 100-300 ms
        LinkProfile(name="3g", rate_bps_up=384_000, rate_bps_down=2_000_000, delay_ms=75, jitter_ms=40, loss=0.01),
        # EDGE at the edge of a cell: ~50 kbit/s, RTT 300-1000 ms, a few percent of packets lost
        LinkProfile(name="2g_edge", rate_bps_up=50_000, rate_bps_down=60_000, delay_ms=250, jitter_ms=150, loss=0.03),
        # geostationary satellite: the 36,000 km hop alone costs ~500 ms of round trip
        LinkProfile(
            name="satellite", rate_bps_up=256_000, rate_bps_down=512_000, delay_ms=300, jitter_ms=30, loss=0.005
        ),
    )
}


def get_profile(name: str) -> LinkProfile:
    """The named profile; an unknown name is refused with the list of known ones."""
    try:
        return PROFILES[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(PROFILES))
        raise LinkError(f"unknown link profile {name!r}; known profiles: {known}") from None


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class TimerClock(Protocol):
    """What drives an outage schedule: ``RealClock`` or ``SimClock`` of ``pymonitor.actors.runtime``."""

    def call_later(self, delay_s: float, fn: Callable[[], object]) -> Cancellable: ...


@dataclass(frozen=True, slots=True)
class Outage:
    """The link is down from ``start_s`` for ``duration_s`` seconds (clock seconds from the run's start)."""

    start_s: float
    duration_s: float

    def __post_init__(self) -> None:
        if not self.start_s >= 0:
            raise LinkError(f"outage at start_s: expected >= 0, got {self.start_s!r}")
        if not self.duration_s > 0:
            raise LinkError(f"outage at duration_s: expected > 0, got {self.duration_s!r}")

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass(frozen=True, slots=True)
class OutageSchedule:
    """Outages in time order, none overlapping; pure, so a simulated clock can step through it."""

    outages: tuple[Outage, ...] = ()
    _starts: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __init__(self, outages: Iterable[Outage] = ()) -> None:
        ordered = tuple(sorted(outages, key=lambda o: o.start_s))
        for i, (before, after) in enumerate(itertools.pairwise(ordered)):
            if after.start_s < before.end_s:
                raise LinkError(f"outage schedule at [{i + 1}]: {after} starts before {before} ends")
        object.__setattr__(self, "outages", ordered)
        object.__setattr__(self, "_starts", tuple(o.start_s for o in ordered))

    @classmethod
    def periodic(cls, *, first_s: float, every_s: float, duration_s: float, count: int) -> OutageSchedule:
        """``count`` outages of ``duration_s``, one every ``every_s`` from ``first_s`` (a nightly cut, say)."""
        if count < 0:
            raise LinkError(f"outage schedule at count: expected >= 0, got {count!r}")
        return cls(Outage(first_s + i * every_s, duration_s) for i in range(count))

    def _covering(self, t_s: float) -> Outage | None:
        i = bisect.bisect_right(self._starts, t_s) - 1
        if i >= 0 and t_s < self.outages[i].end_s:
            return self.outages[i]
        return None

    def offline_at(self, t_s: float) -> bool:
        """Whether the link is down at ``t_s`` (an outage covers ``[start_s, end_s)``)."""
        return self._covering(t_s) is not None

    def next_change(self, t_s: float) -> float | None:
        """When the link next goes down or comes back after ``t_s``; None when nothing changes again."""
        current = self._covering(t_s)
        if current is not None:
            return current.end_s
        i = bisect.bisect_right(self._starts, t_s)
        return self.outages[i].start_s if i < len(self.outages) else None

    def transitions(self) -> list[tuple[float, bool]]:
        """``(t_s, offline)`` pairs in time order: what to feed ``set_offline`` and when."""
        changes: list[tuple[float, bool]] = []
        for outage in self.outages:
            if changes and changes[-1] == (outage.start_s, False):
                changes.pop()  # back to back: the link never comes up in between
            else:
                changes.append((outage.start_s, True))
            changes.append((outage.end_s, False))
        return changes

    def offline_s(self, until_s: float) -> float:
        """Total time the link is down in ``[0, until_s)``."""
        return sum(max(0.0, min(o.end_s, until_s) - o.start_s) for o in self.outages if o.start_s < until_s)
