"""What keeps a firing alert from reaching anyone: silences, maintenance windows, inhibition.

- A **silence** mutes alerts matching its matchers between two instants; it names who set it and
  why, so a muted pager can always be explained, and it expires on its own.
- A **maintenance window** recurs weekly in a time zone ("sun 02:00-04:00 Europe/Berlin"), for
  planned work that would otherwise page every week.
- An **inhibition rule** mutes *target* alerts while a *source* alert fires with the same values
  of the ``equal`` labels: a gateway that is down explains every device behind it going quiet,
  so only the gateway pages.

``is_muted`` returns the reason (a short sentence) rather than a bool: it is what the operator
sees when asking why an alert did not notify.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from .alert import Alert
from .fields import count, duration_ms, fail, items, table, text, texts
from .matchers import Matcher, alert_labels, match_all, parse_matchers
from .weekly import WeeklyHours, contains, local_time, parse_zone

MAX_EPOCH_MS = 2**53
_SILENCE_KEYS = frozenset({"id", "matchers", "starts_ms", "ends_ms", "duration", "created_by", "comment"})


def _some_matchers(raw: object, where: str) -> tuple[Matcher, ...]:
    found = parse_matchers(raw, where)
    if not found:
        raise fail(where, "at least one matcher (an empty list would mute every alert)")
    return found


@dataclass(frozen=True, slots=True, kw_only=True)
class Silence:
    """Mutes matching alerts from ``starts_ms`` (inclusive) to ``ends_ms`` (exclusive)."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_ms: int
    ends_ms: int
    created_by: str
    comment: str

    @classmethod
    def parse(cls, raw: object, where: str, *, now_ms: int) -> Silence:
        """``ends_ms`` or ``duration`` (from ``starts_ms``, default ``now_ms``); who and why are required."""
        spec = table(raw, where, _SILENCE_KEYS)
        for key in ("id", "matchers", "created_by", "comment"):
            if key not in spec:
                raise fail(f"{where}.{key}", "missing")
        starts = count(spec["starts_ms"], f"{where}.starts_ms", maximum=MAX_EPOCH_MS) if "starts_ms" in spec else now_ms
        if ("ends_ms" in spec) == ("duration" in spec):
            raise fail(where, "set exactly one of ends_ms or duration")
        if "ends_ms" in spec:
            ends = count(spec["ends_ms"], f"{where}.ends_ms", maximum=MAX_EPOCH_MS)
            if ends <= starts:
                raise fail(f"{where}.ends_ms", f"must be after starts_ms ({starts}), got {ends}")
        else:
            ends = starts + duration_ms(spec["duration"], f"{where}.duration")
        return cls(
            id=text(spec["id"], f"{where}.id"),
            matchers=_some_matchers(spec["matchers"], f"{where}.matchers"),
            starts_ms=starts,
            ends_ms=ends,
            created_by=text(spec["created_by"], f"{where}.created_by"),
            comment=text(spec["comment"], f"{where}.comment"),
        )

    def active(self, now_ms: int) -> bool:
        return self.starts_ms <= now_ms < self.ends_ms


@dataclass(frozen=True, slots=True, kw_only=True)
class MaintenanceWindow:
    """A weekly recurring mute, in local wall-clock time of ``zone``."""

    name: str
    matchers: tuple[Matcher, ...]
    zone: ZoneInfo
    weekly: WeeklyHours

    @classmethod
    def parse(cls, raw: object, where: str) -> MaintenanceWindow:
        spec = table(raw, where, {"name", "matchers", "time_zone", "weekly"})
        for key in ("name", "matchers", "time_zone", "weekly"):
            if key not in spec:
                raise fail(f"{where}.{key}", "missing")
        return cls(
            name=text(spec["name"], f"{where}.name"),
            matchers=_some_matchers(spec["matchers"], f"{where}.matchers"),
            zone=parse_zone(spec["time_zone"], f"{where}.time_zone"),
            weekly=WeeklyHours.parse(spec["weekly"], f"{where}.weekly"),
        )

    def active(self, now_ms: int) -> bool:
        local = local_time(now_ms, self.zone)
        return contains(self.weekly.days[local.weekday()], local)


@dataclass(frozen=True, slots=True, kw_only=True)
class InhibitRule:
    """While a ``source`` alert fires, ``target`` alerts with the same ``equal`` label values are muted."""

    name: str
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]

    @classmethod
    def parse(cls, raw: object, where: str) -> InhibitRule:
        spec = table(raw, where, {"source_matchers", "target_matchers", "equal"})
        for key in ("source_matchers", "target_matchers"):
            if key not in spec:
                raise fail(f"{where}.{key}", "missing")
        return cls(
            name=where,
            source=_some_matchers(spec["source_matchers"], f"{where}.source_matchers"),
            target=_some_matchers(spec["target_matchers"], f"{where}.target_matchers"),
            equal=texts(spec.get("equal", []), f"{where}.equal"),
        )

    def key(self, labels: Mapping[str, str]) -> tuple[str, ...]:
        return tuple(labels.get(name, "") for name in self.equal)


class Muter:
    """Silences, maintenance windows and inhibition together; feed every alert to ``observe``."""

    def __init__(
        self,
        *,
        silences: Iterable[Silence] = (),
        maintenance: Iterable[MaintenanceWindow] = (),
        inhibit: Iterable[InhibitRule] = (),
    ) -> None:
        self._silences = {s.id: s for s in silences}
        self._maintenance = tuple(maintenance)
        self._inhibit = tuple(inhibit)
        # per rule: equal-label values -> fingerprints of firing source alerts
        self._sources: list[dict[tuple[str, ...], set[str]]] = [{} for _ in self._inhibit]

    @classmethod
    def from_config(cls, raw: Mapping[str, object], *, now_ms: int) -> Muter:
        """``[[silences]]``, ``[[maintenance]]`` and ``[[inhibit]]`` tables."""
        silences = [Silence.parse(s, f"silences[{i}]", now_ms=now_ms) for i, s in enumerate(_list(raw, "silences"))]
        seen: set[str] = set()
        for i, silence in enumerate(silences):
            if silence.id in seen:
                raise fail(f"silences[{i}].id", f"duplicate silence id {silence.id!r}")
            seen.add(silence.id)
        return cls(
            silences=silences,
            maintenance=[
                MaintenanceWindow.parse(m, f"maintenance[{i}]") for i, m in enumerate(_list(raw, "maintenance"))
            ],
            inhibit=[InhibitRule.parse(r, f"inhibit[{i}]") for i, r in enumerate(_list(raw, "inhibit"))],
        )

    @property
    def silences(self) -> tuple[Silence, ...]:
        return tuple(self._silences.values())

    def add_silence(self, silence: Silence) -> None:
        """Add or replace (same id) a silence."""
        self._silences[silence.id] = silence

    def expire(self, silence_id: str, now_ms: int) -> bool:
        """End a silence now; False if there is no such silence or it already ended."""
        silence = self._silences.get(silence_id)
        if silence is None or silence.ends_ms <= now_ms:
            return False
        self._silences[silence_id] = replace(silence, starts_ms=min(silence.starts_ms, now_ms), ends_ms=now_ms)
        return True

    def prune(self, now_ms: int) -> list[Silence]:
        """Drop and return the silences that have ended, so the set does not grow forever."""
        ended = [s for s in self._silences.values() if s.ends_ms <= now_ms]
        for silence in ended:
            del self._silences[silence.id]
        return ended

    def observe(self, alert: Alert) -> None:
        """Track firing alerts that can inhibit others; a resolution stops its inhibition."""
        labels = alert_labels(alert)
        for rule, index in zip(self._inhibit, self._sources, strict=True):
            if not match_all(rule.source, labels):
                continue
            key = rule.key(labels)
            if alert.state == "firing":
                index.setdefault(key, set()).add(alert.fingerprint)
            elif key in index:
                index[key].discard(alert.fingerprint)
                if not index[key]:
                    del index[key]

    def is_muted(self, alert: Alert, now_ms: int) -> str | None:
        """Why ``alert`` must not notify now, or None if it may."""
        labels = alert_labels(alert)
        for silence in self._silences.values():
            if silence.active(now_ms) and match_all(silence.matchers, labels):
                return f"silenced by {silence.id} ({silence.created_by}: {silence.comment})"
        for window in self._maintenance:
            if match_all(window.matchers, labels) and window.active(now_ms):
                return f"in maintenance window {window.name!r}"
        for rule, index in zip(self._inhibit, self._sources, strict=True):
            if match_all(rule.target, labels):
                sources = index.get(rule.key(labels), set()) - {alert.fingerprint}
                if sources:
                    return f"inhibited by {len(sources)} firing alert(s) via {rule.name} ({min(sources)})"
        return None


def _list(raw: Mapping[str, object], key: str) -> list[object]:
    return items(raw.get(key, []), key)
