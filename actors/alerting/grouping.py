"""The notification scheduler: turns a stream of alerts into few, grouped notifications.

Alertmanager's aggregation groups, as a pure core. Each (receiver, group labels) pair is a group.
A new group notifies ``group_wait`` after its first alert, so a burst lands in one message; then
it is looked at every ``group_interval`` and notifies only if something changed (a new firing
alert, a resolution); with no change it reminds after ``repeat_interval`` while alerts still fire.
An alert is identified by its fingerprint, so the same alert re-sent by the rules engine is not a
change. A resolution is sent once, then the alert leaves the group; an empty group is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .alert import Alert
from .matchers import alert_labels
from .routing import ALL_LABELS, RouteMatch, RoutingTree, Timings

GroupKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Notification:
    """One message to one receiver about one group: what fires, what resolved since the last one."""

    receiver: str
    group_labels: Mapping[str, str]
    firing: tuple[Alert, ...]
    resolved: tuple[Alert, ...]
    count: int  # len(firing) + len(resolved): how many distinct alerts this message is about
    at_ms: int
    route: str  # the route path, e.g. "route.routes[0]"


@dataclass(slots=True, kw_only=True)
class _Group:
    match: RouteMatch
    labels: dict[str, str]
    next_flush_ms: int
    alerts: dict[str, Alert] = field(default_factory=dict)
    notified: set[str] = field(default_factory=set)  # fingerprints whose firing was in the last message
    changed: bool = False
    last_sent_ms: int | None = None


def group_labels(labels: Mapping[str, str], group_by: tuple[str, ...]) -> dict[str, str]:
    """The labels a group is keyed by; a label the alert lacks is keyed as the empty string."""
    if group_by == (ALL_LABELS,):
        return dict(sorted(labels.items()))
    return {name: labels.get(name, "") for name in group_by}


class NotificationScheduler:
    """Feed alerts with ``add``; ask ``due`` what to send now (and ``next_due_ms`` when to ask again)."""

    def __init__(self, router: RoutingTree) -> None:
        self._router = router
        self._groups: dict[GroupKey, _Group] = {}

    @property
    def groups(self) -> int:
        return len(self._groups)

    def add(self, alert: Alert, now_ms: int) -> None:
        """Route ``alert`` into its groups; a repeat of an alert already notified in that state changes nothing."""
        seen = alert_labels(alert)
        for match in self._router.route(alert):
            labels = group_labels(seen, match.group_by)
            key: GroupKey = (match.receiver, tuple(labels.items()))
            group = self._groups.get(key)
            if group is None:
                if alert.state == "resolved":
                    continue  # nothing was said about it in this group: nothing to take back
                group = _Group(match=match, labels=labels, next_flush_ms=now_ms + match.timings.group_wait_ms)
                self._groups[key] = group
            if alert.state == "resolved" and alert.fingerprint not in group.alerts:
                continue
            group.alerts[alert.fingerprint] = alert
            if (alert.state == "firing") != (alert.fingerprint in group.notified):
                group.changed = True

    def next_due_ms(self) -> int | None:
        """When ``due`` will next have something to look at; None when there are no groups."""
        return min((g.next_flush_ms for g in self._groups.values()), default=None)

    def due(self, now_ms: int) -> list[Notification]:
        """The notifications to send at ``now_ms``, at most one per group."""
        out: list[Notification] = []
        for key, group in list(self._groups.items()):
            if group.next_flush_ms > now_ms:
                continue
            timings = group.match.timings
            note = self._flush(group, timings, now_ms)
            if note is not None:
                out.append(note)
            if not group.alerts:
                del self._groups[key]
                continue
            # Stay on the group's own cadence, skipping the ticks nobody asked about.
            behind = (now_ms - group.next_flush_ms) // timings.group_interval_ms + 1
            group.next_flush_ms += behind * timings.group_interval_ms
        return out

    def _flush(self, group: _Group, timings: Timings, now_ms: int) -> Notification | None:
        firing = tuple(a for a in group.alerts.values() if a.state == "firing")
        resolved = tuple(a for a in group.alerts.values() if a.state == "resolved")
        reminder = (
            bool(firing)
            and group.last_sent_ms is not None
            and now_ms - group.last_sent_ms >= timings.repeat_interval_ms
        )
        # News is a firing alert not yet sent, or the resolution of one that was sent; a resolution of an
        # alert whose firing never went out is dropped quietly.
        news = group.changed and (
            any(a.fingerprint not in group.notified for a in firing)
            or any(a.fingerprint in group.notified for a in resolved)
        )
        for alert in resolved:
            del group.alerts[alert.fingerprint]
        resolved = tuple(a for a in resolved if a.fingerprint in group.notified)
        group.changed = False
        if not news and not reminder:
            return None
        group.notified = {a.fingerprint for a in firing}
        group.last_sent_ms = now_ms
        return Notification(
            receiver=group.match.receiver,
            group_labels=dict(group.labels),
            firing=firing,
            resolved=resolved,
            count=len(firing) + len(resolved),
            at_ms=now_ms,
            route=group.match.path,
        )
