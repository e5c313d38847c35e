"""Bandwidth accounting: bytes and frames per node, per UTC day, per direction and stream.

Pure. The hub adds what it receives and sends; the totals go to the store with the next batch
of frames, in the same transaction, so a crash never counts traffic twice.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from pymonitor.store.hub_store import TrafficRow

DAY_MS = 86_400_000


def utc_day(ts_ms: int) -> str:
    return datetime.datetime.fromtimestamp(ts_ms // 1000, tz=datetime.UTC).date().isoformat()


@dataclass
class TrafficLedger:
    """Totals since the last drain."""

    totals: dict[tuple[str, str, str, str], list[int]] = field(default_factory=dict)
    _day_start_ms: int = -1
    _day: str = ""

    def add(self, node: str, now_ms: int, direction: str, stream: str, nbytes: int) -> None:
        if not self._day_start_ms <= now_ms < self._day_start_ms + DAY_MS:  # cache the day string
            self._day_start_ms = now_ms - now_ms % DAY_MS
            self._day = utc_day(now_ms)
        entry = self.totals.setdefault((node, self._day, direction, stream), [0, 0])
        entry[0] += nbytes
        entry[1] += 1

    def drain(self) -> list[TrafficRow]:
        rows = [TrafficRow(*key, nbytes, frames) for key, (nbytes, frames) in self.totals.items()]
        self.totals = {}
        return rows

    def __bool__(self) -> bool:
        return bool(self.totals)
