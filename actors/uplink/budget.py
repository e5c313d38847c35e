"""A daily byte budget for a metered uplink, and the sampling stride that keeps a gateway inside it.

Pure: time comes in as int ms (UTC epoch). The gateway counts every byte it publishes with
``add``; ``stride`` says how many samples to skip per sample kept. Events and alerts are never
thinned (that is the caller's rule); once the day's budget is spent, ``essential_only`` says that
only they should go until the next UTC day, while the rest waits in the outbox.

How the stride moves (all powers of two, 1..``max_stride``):

- The *pace* is bytes per ms since the last stride change (or the start of the day), measured over
  at least ``PACE_WINDOW_MS`` so that one burst does not decide. The day is *on course* when
  ``used + pace * rest_of_day <= budget``, i.e. the pace is at most ``(budget - used) / rest_of_day``.
- Off course: the stride jumps to the smallest power of two that brings the pace back on course,
  assuming bytes scale with 1/stride (events and protocol overhead do not, so a later step may follow).
- Halving the stride doubles the pace; it halves only when the doubled pace would still be under
  ``FALL_FRACTION`` of the allowed pace. That gap, plus a full pace window between changes, is the
  hysteresis: a pace sitting right at the budget does not flap between two strides.
- A new UTC day starts at stride 1 with the day's counts at zero; the budget is spent up: ``max_stride``.
"""

from __future__ import annotations

import datetime
from typing import Any

from .errors import UplinkError

DAY_MS = 86_400_000
PACE_WINDOW_MS = 15 * 60_000
"""A quarter of an hour: long enough to average out a burst of frames after a reconnect, short
enough that a day has ~90 chances to correct."""
FALL_FRACTION = 0.8
"""Lower the stride only if the doubled pace stays under 80 % of what the budget allows."""
MAX_STRIDE = 32
"""With one sample a minute, one kept sample per half hour: still a trend, no longer monitoring."""
STATE_VERSION = 1


def _day_iso(day: int) -> str:
    return datetime.date.fromordinal(datetime.date(1970, 1, 1).toordinal() + day).isoformat()


def _day_number(iso: str) -> int:
    return datetime.date.fromisoformat(iso).toordinal() - datetime.date(1970, 1, 1).toordinal()


class DailyBudget:
    """Bytes sent per UTC day and stream, against ``budget_bytes`` a day (``None``: unlimited, stride 1)."""

    def __init__(self, budget_bytes: int | None, *, max_stride: int = MAX_STRIDE) -> None:
        if budget_bytes is not None and budget_bytes <= 0:
            raise UplinkError(f"budget_bytes must be positive or None, got {budget_bytes}")
        if max_stride < 1 or max_stride & (max_stride - 1):
            raise UplinkError(f"max_stride must be a power of two >= 1, got {max_stride}")
        self.budget_bytes = budget_bytes
        self.max_stride = max_stride
        self._day = -1  # days since the epoch; -1 until the first call
        self._bytes: dict[str, int] = {}
        self._stride = 1
        self._since_ms = 0  # start of the pace window: last stride change or start of day
        self._since_bytes = 0

    # counting

    def add(self, stream: str, nbytes: int, now_ms: int) -> None:
        """Count bytes published on ``stream`` ("readings", "backfill", "events", ...)."""
        if nbytes < 0:
            raise UplinkError(f"add {stream!r}: nbytes must be >= 0, got {nbytes}")
        self._roll(now_ms)
        self._bytes[stream] = self._bytes.get(stream, 0) + nbytes
        self._since_bytes += nbytes

    def used_bytes(self, now_ms: int) -> int:
        self._roll(now_ms)
        return sum(self._bytes.values())

    def essential_only(self, now_ms: int) -> bool:
        """The day's budget is spent: send events and alerts only until the next UTC day."""
        return self.budget_bytes is not None and self.used_bytes(now_ms) >= self.budget_bytes

    def projected_bytes(self, now_ms: int) -> int | None:
        """Today's total if the current pace holds to midnight UTC; ``None`` before a pace window has passed."""
        self._roll(now_ms)
        elapsed = now_ms - self._since_ms
        if elapsed < PACE_WINDOW_MS:
            return None
        pace = self._since_bytes / elapsed
        return int(sum(self._bytes.values()) + pace * (self._day_end_ms() - now_ms))

    # the decision

    def stride(self, now_ms: int) -> int:
        """The sampling stride to use from now on: 1, 2, 4, ... ``max_stride``."""
        self._roll(now_ms)
        if self.budget_bytes is None:
            return 1
        used = sum(self._bytes.values())
        if used >= self.budget_bytes:
            self._set(self.max_stride, now_ms)
            return self._stride
        elapsed = now_ms - self._since_ms
        if elapsed < PACE_WINDOW_MS:
            return self._stride
        pace = self._since_bytes / elapsed
        allowed = (self.budget_bytes - used) / max(self._day_end_ms() - now_ms, 1)
        wanted = self._stride
        if pace > allowed:
            while wanted < self.max_stride and pace * self._stride / wanted > allowed:
                wanted *= 2
        elif self._stride > 1 and pace * 2 <= allowed * FALL_FRACTION:
            wanted = self._stride // 2
        if wanted != self._stride:
            self._set(wanted, now_ms)
        elif elapsed >= 2 * PACE_WINDOW_MS:
            # Slide the window so the pace stays recent: keep one window's worth at the same pace.
            self._since_bytes = round(pace * PACE_WINDOW_MS)
            self._since_ms = now_ms - PACE_WINDOW_MS
        return self._stride

    def _set(self, stride: int, now_ms: int) -> None:
        if stride != self._stride:
            self._stride = stride
            self._since_ms, self._since_bytes = now_ms, 0

    def _roll(self, now_ms: int) -> None:
        day = now_ms // DAY_MS
        if day != self._day:
            if self._day != -1 and day < self._day:
                return  # a clock stepped back across midnight: keep counting into the newer day
            self._day = day
            self._bytes = {}
            self._stride = 1
            self._since_ms, self._since_bytes = day * DAY_MS, 0

    def _day_end_ms(self) -> int:
        return (self._day + 1) * DAY_MS

    # persistence and queries

    def to_state(self) -> dict[str, int | str]:
        """A small dict of ints and strs, to keep in the gateway's outbox file across restarts."""
        state: dict[str, int | str] = {"v": STATE_VERSION, "stride": self._stride}
        if self._day != -1:
            state["day"] = _day_iso(self._day)
        state["since_ms"], state["since_bytes"] = self._since_ms, self._since_bytes
        for stream, nbytes in sorted(self._bytes.items()):
            state[f"bytes.{stream}"] = nbytes
        return state

    @classmethod
    def from_state(
        cls, state: dict[str, Any], budget_bytes: int | None, *, max_stride: int = MAX_STRIDE
    ) -> DailyBudget:
        """Rebuild from ``to_state``; budget and max stride are configuration, not state, so they may change."""
        budget = cls(budget_bytes, max_stride=max_stride)
        if state.get("v") != STATE_VERSION:
            raise UplinkError(f"budget state at 'v': expected {STATE_VERSION}, got {state.get('v')!r}")
        for key, value in state.items():
            if key == "day":
                if not isinstance(value, str):
                    raise UplinkError(f"budget state at 'day': expected an ISO date, got {value!r}")
                try:
                    budget._day = _day_number(value)
                except ValueError:
                    raise UplinkError(f"budget state at 'day': expected an ISO date, got {value!r}") from None
                continue
            if type(value) is not int or value < 0:
                raise UplinkError(f"budget state at {key!r}: expected an int >= 0, got {value!r}")
            if key == "stride":
                if value < 1 or value & (value - 1):
                    raise UplinkError(f"budget state at 'stride': expected a power of two, got {value}")
                budget._stride = min(value, max_stride)
            elif key == "since_ms":
                budget._since_ms = value
            elif key == "since_bytes":
                budget._since_bytes = value
            elif key.startswith("bytes."):
                budget._bytes[key.removeprefix("bytes.")] = value
            elif key != "v":
                raise UplinkError(f"budget state at {key!r}: unknown key")
        return budget

    def status(self, now_ms: int) -> dict[str, Any]:
        """JSON-friendly: the day, bytes by stream, the budget and the stride in force."""
        self._roll(now_ms)
        return {
            "day": _day_iso(self._day),
            "bytes": dict(sorted(self._bytes.items())),
            "used_bytes": sum(self._bytes.values()),
            "budget_bytes": self.budget_bytes,
            "projected_bytes": self.projected_bytes(now_ms),
            "stride": self._stride,
            "essential_only": self.essential_only(now_ms),
        }
