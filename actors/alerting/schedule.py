"""Business hours: when a human is at work, and what may wake one up outside of them.

A profile is a time zone, weekly hours, public holidays (the ``holidays`` package, by country and
optional subdivision), closures (dates closed all day) and special opening hours (a date with its
own ranges; they win over weekly hours, holidays and closures, since they are the most specific).
Off hours, only emergencies page; everything else waits in a digest for the next opening, so a
warning at 03:00 is read at 08:00 rather than waking someone or being lost in a night of noise.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

from .alert import SEVERITIES, Alert
from .fields import fail, items, table, text, texts
from .weekly import Range, WeeklyHours, contains, local_time, parse_ranges, parse_zone

SEARCH_DAYS = 400
"""How far ``next_opening`` looks ahead: over a year, so a long closure plus holidays still finds a day."""
_PROFILE_KEYS = frozenset({"time_zone", "weekly", "holidays", "closures", "special"})


def parse_date(raw: object, where: str) -> date:
    """A TOML date (``2026-12-24``) or the same as text."""
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return raw
    try:
        return date.fromisoformat(text(raw, where))
    except ValueError:
        raise fail(where, f"expected a date like 2026-12-24, got {raw!r}") from None


def parse_holidays(raw: object, where: str) -> holidays.HolidayBase:
    spec = table(raw, where, {"country", "subdivision"})
    if "country" not in spec:
        raise fail(f"{where}.country", "missing (an ISO 3166 code like 'DE')")
    country = text(spec["country"], f"{where}.country")
    subdiv = text(spec["subdivision"], f"{where}.subdivision") if "subdivision" in spec else None
    try:
        return holidays.country_holidays(country, subdiv=subdiv)
    except NotImplementedError as exc:
        key = "subdivision" if country.upper() in holidays.list_supported_countries() else "country"
        raise fail(f"{where}.{key}", f"not supported by the holidays package: {exc}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class BusinessHours:
    """One business-hours profile; ``in_hours`` and ``next_opening`` take and give epoch ms."""

    name: str
    zone: ZoneInfo
    weekly: WeeklyHours
    public_holidays: holidays.HolidayBase | None = None
    closures: frozenset[date] = frozenset()
    special: Mapping[date, tuple[Range, ...]] = field(default_factory=dict)

    @classmethod
    def parse(cls, name: str, raw: object, where: str | None = None) -> BusinessHours:
        """Parse ``[hours.<name>]``; errors name the key under ``where`` (default ``hours.<name>``)."""
        where = where or f"hours.{name}"
        spec = table(raw, where, _PROFILE_KEYS)
        if "time_zone" not in spec:
            raise fail(f"{where}.time_zone", "missing (an IANA name like 'Europe/Berlin')")
        weekly = WeeklyHours.parse(spec.get("weekly", {}), f"{where}.weekly")
        if weekly.empty:
            raise fail(f"{where}.weekly", "no opening hours on any day: such a profile would never open")
        closures = frozenset(
            parse_date(d, f"{where}.closures[{i}]")
            for i, d in enumerate(items(spec.get("closures", []), f"{where}.closures"))
        )
        special: dict[date, tuple[Range, ...]] = {}
        for key, value in table(spec.get("special", {}), f"{where}.special").items():
            day = parse_date(key, f"{where}.special")
            if day in closures:
                raise fail(f"{where}.special.{key}", "the same date is also a closure; keep one of the two")
            special[day] = parse_ranges(value, f"{where}.special.{key}")
        return cls(
            name=name,
            zone=parse_zone(spec["time_zone"], f"{where}.time_zone"),
            weekly=weekly,
            public_holidays=parse_holidays(spec["holidays"], f"{where}.holidays") if "holidays" in spec else None,
            closures=closures,
            special=special,
        )

    def ranges_on(self, day: date) -> tuple[Range, ...]:
        """The opening ranges of a local date, after special hours, closures and holidays."""
        if day in self.special:
            return self.special[day]
        if day in self.closures or (self.public_holidays is not None and day in self.public_holidays):
            return ()
        return self.weekly.days[day.weekday()]

    def in_hours(self, ts_ms: int) -> bool:
        local = local_time(ts_ms, self.zone)
        return contains(self.ranges_on(local.date()), local)

    def next_opening(self, ts_ms: int) -> int:
        """``ts_ms`` if open then, else the start of the next opening (epoch ms)."""
        if self.in_hours(ts_ms):
            return ts_ms
        day = local_time(ts_ms, self.zone).date()
        for _ in range(SEARCH_DAYS):
            for start, _end in self.ranges_on(day):
                opening = self._opening_ms(day, start)
                if opening is not None and opening > ts_ms:
                    return opening
            day += timedelta(days=1)
        raise fail(f"hours.{self.name}", f"no opening within {SEARCH_DAYS} days of {local_time(ts_ms, self.zone)}")

    def _opening_ms(self, day: date, minute: int) -> int | None:
        """When a range starting at ``minute`` of ``day`` opens; None if a spring-forward gap swallowed it."""
        local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=self.zone)
        early, late = sorted(round(local.replace(fold=fold).timestamp() * 1000) for fold in (0, 1))
        if self.in_hours(early):
            return early
        if early == late or not self.in_hours(late):
            return None
        # The wall time does not exist (clocks jumped over it): the range opens at the jump.
        while late - early > 1:
            middle = (early + late) // 2
            early, late = (early, middle) if self.in_hours(middle) else (middle, late)
        return late


@dataclass(frozen=True, slots=True, kw_only=True)
class EmergencyRules:
    """Which severities page a human off hours; the rest waits for the next business morning."""

    page_severities: frozenset[str] = frozenset({"critical", "emergency"})

    @classmethod
    def parse(cls, raw: object, where: str) -> EmergencyRules:
        spec = table(raw, where, {"page_severities"})
        if "page_severities" not in spec:
            return cls()
        chosen = texts(spec["page_severities"], f"{where}.page_severities")
        for i, name in enumerate(chosen):
            if name not in SEVERITIES:
                raise fail(f"{where}.page_severities[{i}]", f"expected one of {', '.join(SEVERITIES)}, got {name!r}")
        return cls(page_severities=frozenset(chosen))


def is_emergency(alert: Alert, rules: EmergencyRules) -> bool:
    return alert.severity in rules.page_severities


class Deferral:
    """Holds off-hours alerts that are not emergencies until the profile's next opening."""

    def __init__(self, profile: BusinessHours, rules: EmergencyRules | None = None) -> None:
        self._profile = profile
        self._rules = rules or EmergencyRules()
        self._pending: dict[str, tuple[int, Alert]] = {}  # fingerprint -> (deliver at, latest state)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def defer(self, alert: Alert, now_ms: int) -> int:
        """When to deliver ``alert``: ``now_ms`` (send it now) or the next opening (it joins the digest).

        An alert already waiting keeps its delivery time and takes the newer state, so the digest
        says "resolved" rather than listing a night's flapping.
        """
        if is_emergency(alert, self._rules):
            self._pending.pop(alert.fingerprint, None)  # it got worse overnight: it pages now, not in the digest
            return now_ms
        waiting = self._pending.get(alert.fingerprint)
        if waiting is not None:
            self._pending[alert.fingerprint] = (waiting[0], alert)
            return waiting[0]
        if self._profile.in_hours(now_ms):
            return now_ms
        deliver_at = self._profile.next_opening(now_ms)
        self._pending[alert.fingerprint] = (deliver_at, alert)
        return deliver_at

    def next_due_ms(self) -> int | None:
        return min((at for at, _ in self._pending.values()), default=None)

    def digest_due(self, now_ms: int) -> list[Alert]:
        """The alerts whose delivery time has come, oldest first; they leave the digest."""
        ready = [(at, alert) for at, alert in self._pending.values() if at <= now_ms]
        for _, alert in ready:
            del self._pending[alert.fingerprint]
        return [alert for _, alert in sorted(ready, key=lambda p: (p[1].starts_ms, p[1].fingerprint))]


def profiles(raw: Mapping[str, object], names: Collection[str] | None = None) -> dict[str, BusinessHours]:
    """Parse every ``[hours.<name>]`` table (or only ``names``)."""
    section = table(raw.get("hours", {}), "hours")
    return {name: BusinessHours.parse(name, spec) for name, spec in section.items() if names is None or name in names}
