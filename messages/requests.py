"""Requests a node answers with data it keeps: the raw readings of a time window."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import MessageError
from .registry import message

DAY_MS = 86_400_000
TIERS = ("raw", "summaries")
RAW_WINDOW_MAX_MS = 31 * DAY_MS
"""The longest window one ``raw.request.v1`` may ask for; a node may enforce less with :meth:`RawRequest.check`."""


@message("raw.request.v1")
@dataclass(frozen=True, slots=True, kw_only=True)
class RawRequest:
    """Ask a node for the raw readings of ``[from_ms, to_ms)`` (measurement time, ms since the epoch, UTC).

    Sent by the hub, an operator or an anomaly that wants more than the summaries; the node
    serves it from its raw tier while that still holds the window. ``devices`` empty means all.
    """

    id: str
    from_ms: int
    to_ms: int
    ts_ms: int
    devices: list[str] = field(default_factory=list)
    reason: str = ""
    tier: str = "raw"  # or "summaries": the window's summaries again, from the node's summary tier

    def __post_init__(self) -> None:
        if self.tier not in TIERS:
            raise MessageError(f"expected one of {', '.join(TIERS)}, got {self.tier!r}", path="$.tier")
        self.check(RAW_WINDOW_MAX_MS)

    def check(self, max_window_ms: int) -> None:
        """Raise :class:`MessageError` unless ``from_ms < to_ms`` and the window spans at most ``max_window_ms``."""
        if self.from_ms >= self.to_ms:
            raise MessageError(f"must be before to_ms ({self.to_ms}), got {self.from_ms}", path="$.from_ms")
        if self.to_ms - self.from_ms > max_window_ms:
            raise MessageError(
                f"the window spans {self.to_ms - self.from_ms} ms, over the limit of {max_window_ms} ms",
                path="$.to_ms",
            )
