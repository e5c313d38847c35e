"""The routing tree: which receivers get an alert, and how its notifications are grouped and timed.

Alertmanager's semantics, so operators can reuse what they know: the root route matches every
alert; an alert descends into the first child route that matches (and the following ones too
while the matched child says ``continue = true``); the deepest matching routes win, and a route
no child takes the alert from is itself the match. Children inherit receiver, ``group_by`` and
timings from their parent unless they set their own.

Timing defaults (``DEFAULT_*``) differ from Alertmanager's in one place, ``group_wait`` = 60 s
rather than 30 s: a storm of correlated alerts usually arrives within a minute (a gateway
reboots, a site loses power), and waiting that minute lands it in one first notification
instead of two.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace

from .alert import Alert
from .fields import duration_ms, fail, flag, items, table, text, texts
from .matchers import Matcher, alert_labels, match_all, parse_matchers

DEFAULT_GROUP_WAIT_MS = 60_000
DEFAULT_GROUP_INTERVAL_MS = 300_000
DEFAULT_REPEAT_INTERVAL_MS = 4 * 3_600_000
ALL_LABELS = "..."
"""``group_by = ["..."]`` groups by every label: one group per distinct alert label set."""
MAX_DEPTH = 16
_ROUTE_KEYS = frozenset(
    {"receiver", "matchers", "group_by", "group_wait", "group_interval", "repeat_interval", "continue", "routes"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Timings:
    """When a group notifies: first after ``group_wait``, changes every ``group_interval``, reminders every
    ``repeat_interval``."""

    group_wait_ms: int = DEFAULT_GROUP_WAIT_MS
    group_interval_ms: int = DEFAULT_GROUP_INTERVAL_MS
    repeat_interval_ms: int = DEFAULT_REPEAT_INTERVAL_MS


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteMatch:
    """Where an alert goes: a receiver, the labels its group is keyed by, the group's timings."""

    receiver: str
    group_by: tuple[str, ...]
    timings: Timings
    path: str  # the route that matched, e.g. "route.routes[1]", for "why did this page me?"


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """One node of the tree, with inherited settings already resolved."""

    path: str
    matchers: tuple[Matcher, ...]
    receiver: str
    group_by: tuple[str, ...]
    timings: Timings
    continue_: bool
    routes: tuple[Route, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return match_all(self.matchers, labels)

    def walk(self, labels: Mapping[str, str]) -> list[RouteMatch]:
        """The matches under this route, for an alert that matched it."""
        found: list[RouteMatch] = []
        for child in self.routes:
            if child.matches(labels):
                found.extend(child.walk(labels))
                if not child.continue_:
                    break
        if not found:
            found.append(
                RouteMatch(receiver=self.receiver, group_by=self.group_by, timings=self.timings, path=self.path)
            )
        return found


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingTree:
    """A parsed ``[route]`` table; ``route(alert)`` says where the alert goes."""

    root: Route
    receivers: frozenset[str]

    @classmethod
    def from_config(cls, raw: Mapping[str, object], *, receivers: Collection[str]) -> RoutingTree:
        """Parse ``raw["route"]``; every receiver it names must be one of ``receivers``."""
        known = frozenset(receivers)
        if "route" not in raw:
            raise fail("route", "missing (the root route names the default receiver)")
        root_raw = table(raw["route"], "route", _ROUTE_KEYS)
        if "matchers" in root_raw:
            raise fail("route.matchers", "the root route matches every alert; put matchers on its child routes")
        if "continue" in root_raw:
            raise fail("route.continue", "not allowed on the root route")
        if "receiver" not in root_raw:
            raise fail("route.receiver", "missing (the root route needs a default receiver)")
        return cls(root=_parse_route(root_raw, "route", None, known, 0), receivers=known)

    def route(self, alert: Alert) -> list[RouteMatch]:
        return self.root.walk(alert_labels(alert))


def _parse_route(
    raw: Mapping[str, object], where: str, parent: Route | None, known: frozenset[str], depth: int
) -> Route:
    if depth > MAX_DEPTH:
        raise fail(where, f"routes nested deeper than {MAX_DEPTH} levels")
    if "receiver" in raw:
        receiver = text(raw["receiver"], f"{where}.receiver")
        if receiver not in known:
            choices = ", ".join(sorted(known)) or "none defined"
            raise fail(f"{where}.receiver", f"unknown receiver {receiver!r} (known: {choices})")
    else:
        assert parent is not None  # the root's receiver is checked by from_config
        receiver = parent.receiver
    group_by = parent.group_by if parent else ()
    if "group_by" in raw:
        group_by = texts(raw["group_by"], f"{where}.group_by")
        if ALL_LABELS in group_by and len(group_by) > 1:
            raise fail(f"{where}.group_by", f'"{ALL_LABELS}" (all labels) cannot be combined with other labels')
    inherited = parent.timings if parent else Timings()
    timings = Timings(
        group_wait_ms=_timing(raw, "group_wait", where, inherited.group_wait_ms),
        group_interval_ms=_timing(raw, "group_interval", where, inherited.group_interval_ms),
        repeat_interval_ms=_timing(raw, "repeat_interval", where, inherited.repeat_interval_ms),
    )
    node = Route(
        path=where,
        matchers=parse_matchers(raw["matchers"], f"{where}.matchers") if "matchers" in raw else (),
        receiver=receiver,
        group_by=group_by,
        timings=timings,
        continue_=flag(raw["continue"], f"{where}.continue") if "continue" in raw else False,
        routes=(),
    )
    children = items(raw.get("routes", []), f"{where}.routes")
    parsed = tuple(
        _parse_route(table(child, f"{where}.routes[{i}]", _ROUTE_KEYS), f"{where}.routes[{i}]", node, known, depth + 1)
        for i, child in enumerate(children)
    )
    return replace(node, routes=parsed)


def _timing(raw: Mapping[str, object], key: str, where: str, inherited: int) -> int:
    return duration_ms(raw[key], f"{where}.{key}") if key in raw else inherited
