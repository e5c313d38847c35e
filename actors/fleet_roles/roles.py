"""The five live roles: what each keeps from the stream, and which events it raises from its analyses.

A role is plain Python (no pykka, no clock reads): :meth:`LiveRole.ingest` folds items from the
stream in, :meth:`LiveRole.analyse` runs the role's store query at ``now_ms`` and turns the answer
into ``event.v1`` :class:`Event` messages, each raised once (an alert is raised again only when it
gets worse). The actor shell (:mod:`.actor`) decides when either runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from pymonitor.actors.firmware import FirmwareError, FirmwareInventory, FirmwareReport
from pymonitor.messages import Event

from .firmware_query import REPORT_KIND
from .live import Item, Readings

Query = Callable[[int], dict[str, Any]]
"""A role's store query at ``now_ms`` (see :mod:`.service`)."""

ROLE_NAMES = ("battery", "firmware", "calibration", "environment", "gateways")


class LiveRole:
    """Base: counts what it is fed; subclasses say which metrics they want and what their answers mean."""

    name = "role"
    metrics: frozenset[str] = frozenset()  # readings of other metrics are not this role's business
    event_kinds: frozenset[str] = frozenset()

    def __init__(self, node: str, query: Query | None) -> None:
        self.node = node
        self.query = query
        self.counts: Counter[str] = Counter()
        self.latest_ms: dict[str, int] = {}  # per device: its newest reading of this role's metrics
        self.raised: dict[str, float] = {}  # event key -> the severity rank / value it was raised at

    @classmethod
    def wants(cls, item: Item) -> bool:
        """Routing, decided by the role's kind alone (the host asks it before any role instance exists)."""
        if isinstance(item, Readings):
            return any(m in cls.metrics for m in item.metrics)
        return item.kind in cls.event_kinds

    def ingest(self, items: Iterable[Item], now_ms: int) -> list[Event]:
        """Fold stream items in; the events they raise at once (most roles: none, they judge on analyse)."""
        events: list[Event] = []
        for item in items:
            if isinstance(item, Readings):
                self._readings(item)
            else:
                self.counts["events"] += 1
                events += self.on_event(item, now_ms)
        return events

    def _readings(self, item: Readings) -> None:
        mine = [k for k, m in enumerate(item.metrics) if m in self.metrics]
        measured = np.isfinite(item.values[mine]).any(axis=0)
        self.counts["readings"] += int(np.isfinite(item.values[mine]).sum())
        self.counts["impossible"] += int((~np.isfinite(item.values[mine]) & ~np.isnan(item.values[mine])).sum())
        if measured.any():
            idx = item.device_index[measured]
            ts = item.ts_ms[measured]
            newest = np.full(len(item.devices), -1, dtype=np.int64)
            np.maximum.at(newest, idx, ts)
            for k in np.flatnonzero(newest >= 0).tolist():
                name = item.devices[k]
                if newest[k] > self.latest_ms.get(name, -1):
                    self.latest_ms[name] = int(newest[k])

    def on_event(self, event: Event, now_ms: int) -> list[Event]:
        return []

    def analyse(self, now_ms: int) -> list[Event]:
        """Run the role's query and raise what is new in its answer."""
        if self.query is None:
            return []
        self.counts["analyses"] += 1
        return self.events(self.query(now_ms), now_ms)

    def events(self, answer: dict[str, Any], now_ms: int) -> list[Event]:
        return []

    def _once(self, key: str, rank: float) -> bool:
        """True the first time ``key`` is raised, or when ``rank`` is worse (higher) than when it last was."""
        if key in self.raised and self.raised[key] >= rank:
            return False
        self.raised[key] = rank
        return True

    def event(self, now_ms: int, kind: str, severity: str, message: str, **fields: Any) -> Event:
        self.counts["events_raised"] += 1
        return Event(node=self.node, ts_ms=now_ms, kind=kind, severity=severity, message=message, **fields)

    def stats(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "devices_seen": len(self.latest_ms), "raised": len(self.raised)}


class BatteryRole(LiveRole):
    name = "battery"
    metrics = frozenset({"battery_v"})

    def events(self, answer: dict[str, Any], now_ms: int) -> list[Event]:
        out = []
        for a in answer["alerts"]:
            # Tighter threshold = worse: the rank is minus the threshold.
            if not self._once(a["device"], -a["threshold_days"]):
                continue
            severity = "error" if a["threshold_days"] <= 7 else "warning"
            out.append(
                self.event(
                    now_ms,
                    "battery.depletion_soon",
                    severity,
                    f"{a['device']} at {a['site']}: battery empty within {a['threshold_days']:g} days "
                    f"(p10 {a['days_to_empty_p10']} d, p50 {a['days_to_empty_p50']} d)",
                    source=a["device"],
                    value=a["days_to_empty_p10"],
                    labels={"site": a["site"], "criticality": str(a["criticality"])},
                    details={"threshold_days": a["threshold_days"], "empty_by_ms": a["empty_by_ms"]},
                )
            )
        return out


class CalibrationRole(LiveRole):
    name = "calibration"
    metrics = frozenset({"temperature_c", "humidity_pct"})

    def events(self, answer: dict[str, Any], now_ms: int) -> list[Event]:
        out = []
        for d in answer["drifting"]:
            if not self._once(f"{d['device']}|{d['metric']}", 1):
                continue
            out.append(
                self.event(
                    now_ms,
                    "calibration.drift",
                    "warning",
                    f"{d['device']} {d['metric']} reads {d['deviation_pct']:+.2f}% off its neighbours at "
                    f"{d['location']}; recalibrate",
                    source=d["device"],
                    value=d["deviation_pct"],
                    labels={"metric": d["metric"], "location": d["location"]},
                    details={"since_ms": d["since_ms"]},
                )
            )
        return out


class EnvironmentRole(LiveRole):
    name = "environment"
    metrics = frozenset({"temperature_c", "humidity_pct", "vibration_ms2", "vibration_g", "failure"})
    event_kinds = frozenset({"device.failure"})

    def on_event(self, event: Event, now_ms: int) -> list[Event]:
        self.counts["failures"] += 1
        return []

    def events(self, answer: dict[str, Any], now_ms: int) -> list[Event]:
        return [
            self.event(now_ms, "environment.recommendation", "info", text, details={"recommendation": text})
            for text in answer["recommendations"]
            if self._once(text, 1)
        ]


class GatewaysRole(LiveRole):
    name = "gateways"

    @classmethod
    def wants(cls, item: Item) -> bool:
        return isinstance(item, Readings)  # every uplink is traffic

    def _readings(self, item: Readings) -> None:
        self.counts["rows"] += item.rows
        self.counts["uplinks"] += int(np.unique(item.device_index * (1 << 42) + item.ts_ms).shape[0])

    def events(self, answer: dict[str, Any], now_ms: int) -> list[Event]:
        plan = answer.get("plan")
        if not plan or not plan["moves_total"]:
            return []
        worst = plan["worst_util_before"]
        if not self._once("plan", worst):
            return []
        moves = answer["moves"]
        return [
            self.event(
                now_ms,
                "gateway.rebalance",
                "warning" if worst > 1 else "info",
                f"move {plan['moves_total']} devices: worst gateway utilisation {worst:.2f} -> "
                f"{plan['worst_util_after']:.2f} (bound {plan['fluid_bound_util']:.2f})",
                value=worst,
                details={
                    "moves": [f"{m['device']}:{m['from']}->{m['to']}" for m in moves],
                    "moves_total": plan["moves_total"],
                    "bottlenecks": [b["gateway"] for b in answer["bottlenecks"]],
                },
            )
        ]


class FirmwareRole(LiveRole):
    """Judges each ``firmware.report`` event as it arrives: an unauthorised change is raised within one report."""

    name = "firmware"
    event_kinds = frozenset({REPORT_KIND})

    def __init__(self, node: str, query: Query | None, inventory: FirmwareInventory | None = None) -> None:
        super().__init__(node, query)
        self.inventory = inventory

    def on_event(self, event: Event, now_ms: int) -> list[Event]:
        if self.inventory is None:
            self.counts["no_inventory"] += 1
            return []
        try:
            report = FirmwareReport(
                device=event.source,
                version=str(event.details["version"]),
                image_hash=str(event.details.get("image_hash") or ""),
                ts_ms=event.ts_ms,
                update_failed=_text_or_none(event.details.get("update_failed")),
            )
        except KeyError:
            self.counts["bad_details"] += 1
            return []
        try:
            change = self.inventory.observe(report)
        except FirmwareError:
            self.counts["bad_report"] += 1
            return []
        if change is None:
            return []
        return [
            self.event(
                now_ms,
                "firmware.unauthorised_change",
                "critical",
                f"{change.device} ({change.model} at {change.site}) now runs {change.current}: {change.reason}",
                source=change.device,
                labels={"model": change.model, "site": change.site},
                details={"previous": change.previous, "current": change.current, "reported_ms": change.ts_ms},
            )
        ]


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


ROLE_CLASSES: dict[str, type[LiveRole]] = {
    "battery": BatteryRole,
    "firmware": FirmwareRole,
    "calibration": CalibrationRole,
    "environment": EnvironmentRole,
    "gateways": GatewaysRole,
}
