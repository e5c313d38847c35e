"""Weekly opening ranges in local wall-clock time: ``{"mon-fri" = ["08:00-18:00"], sat = ["09:00-12:00"]}``.

Shared by business-hours profiles and maintenance windows. Ranges are wall-clock minutes of a
local day, so "08:00" stays 08:00 across DST changes; a range that would cross midnight must be
written as two (``mon = ["22:00-24:00"], tue = ["00:00-06:00"]``), which keeps every day's hours
readable on its own line. Overlapping ranges on one day are refused: they are always a typo.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .fields import fail, items, table, text

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
_RANGE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")

Range = tuple[int, int]
"""Start and end minute of a local day, end exclusive; 0 <= start < end <= 1440."""


def fmt_range(span: Range) -> str:
    return f"{span[0] // 60:02d}:{span[0] % 60:02d}-{span[1] // 60:02d}:{span[1] % 60:02d}"


def parse_range(raw: object, where: str) -> Range:
    source = text(raw, where)
    found = _RANGE.match(source)
    if found is None:
        raise fail(where, f'expected a range like "08:00-18:00", got {source!r}')
    h1, m1, h2, m2 = (int(g) for g in found.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if h1 > 23 or m1 > 59 or m2 > 59 or end > MINUTES_PER_DAY:
        raise fail(where, f"not a time of day in {source!r} (00:00 to 24:00)")
    if end <= start:
        raise fail(where, f"{source!r} ends before it starts; split a range over midnight into two days")
    return start, end


def parse_ranges(raw: object, where: str) -> tuple[Range, ...]:
    """A day's ranges, sorted; overlaps refused naming both ranges."""
    spans = sorted(parse_range(item, f"{where}[{i}]") for i, item in enumerate(items(raw, where)))
    return check_overlaps(spans, where)


def check_overlaps(spans: list[Range], where: str) -> tuple[Range, ...]:
    for before, after in pairwise(spans):
        if after[0] < before[1]:
            raise fail(where, f"ranges {fmt_range(before)} and {fmt_range(after)} overlap")
    return tuple(spans)


def parse_days(spec: str, where: str) -> list[int]:
    """``"mon"``, ``"mon-fri"``, ``"sat,sun"`` -> weekday numbers (Monday is 0)."""
    days: list[int] = []
    for part in spec.split(","):
        ends = [p.strip().lower() for p in part.split("-")]
        if len(ends) > 2 or any(e not in DAYS for e in ends):
            raise fail(where, f"expected days like mon, mon-fri or sat,sun, got {spec!r}")
        first, last = DAYS.index(ends[0]), DAYS.index(ends[-1])
        if last < first:
            raise fail(where, f"{part.strip()!r} runs backwards; write it as two ranges")
        days.extend(range(first, last + 1))
    return days


def parse_zone(raw: object, where: str) -> ZoneInfo:
    name = text(raw, where)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise fail(where, f"unknown time zone {name!r} (expected an IANA name like 'Europe/Berlin')") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class WeeklyHours:
    """Ranges per weekday, Monday first."""

    days: tuple[tuple[Range, ...], ...]

    @classmethod
    def parse(cls, raw: object, where: str) -> WeeklyHours:
        spec: Mapping[str, object] = table(raw, where)
        per_day: list[list[Range]] = [[] for _ in DAYS]
        for key, value in spec.items():
            spans = parse_ranges(value, f"{where}.{key}")
            for day in parse_days(key, f"{where}.{key}"):
                per_day[day].extend(spans)
        return cls(days=tuple(check_overlaps(sorted(s), f"{where} ({DAYS[d]})") for d, s in enumerate(per_day)))

    @property
    def empty(self) -> bool:
        return not any(self.days)


def contains(spans: tuple[Range, ...], local: datetime) -> bool:
    """Whether the wall-clock time of ``local`` falls in one of ``spans``."""
    minute = local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60
    return any(start <= minute < end for start, end in spans)


def local_time(ts_ms: int, zone: tzinfo) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, zone)
