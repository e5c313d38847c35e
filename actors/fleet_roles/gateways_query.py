"""``fleet gateways``: devices and traffic per gateway, imbalance, bottlenecks and a rebalancing plan.

Each inventoried device is attached to its inventory ``gateway``; its traffic is its uplinks (distinct
reading timestamps) per second over the last ``hours``. Which other gateways a device hears, and how
well, is the inventory label ``reach``: ``"gw-a:0.9 gw-b:0.6"`` (gateway:quality 0..1); a device
without one is taken to hear only its own gateway, perfectly. Every gateway forwards
``capacity_msgs_s`` unless a device named after it carries a label ``capacity_msgs_s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pymonitor.actors.gateways import Deployment, LoadReport, RebalancePlan, analyse, clean, rebalance
from pymonitor.store.fleet_data import FleetData, Inventory

from .answers import limited
from .errors import FleetQueryError, check_positive
from .grid import HOUR_MS


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayOptions:
    hours: float = 24.0
    capacity_msgs_s: float = 2.0
    min_quality: float = 0.5
    target_util: float = 0.8
    limit: int = 20

    def __post_init__(self) -> None:
        check_positive(self, "hours", "capacity_msgs_s", "target_util")
        if not 0 <= self.min_quality <= 1:
            raise FleetQueryError(f"min_quality: expected a link quality in 0..1, got {self.min_quality}")


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayAnalysis:
    gateways: tuple[str, ...]
    devices: tuple[str, ...]
    report: LoadReport
    plan: RebalancePlan
    bad_reach: int


def uplinks(data: FleetData, since_ms: int, until_ms: int) -> dict[str, int]:
    """Distinct reading timestamps (uplinks) per device name in ``[since_ms, until_ms)``."""
    sql = (
        "SELECT d.name, r.n FROM (SELECT device_id, COUNT(DISTINCT ts_ms) AS n FROM readings"
        " WHERE ts_ms >= ? AND ts_ms < ? GROUP BY device_id) r JOIN devices d ON d.id = r.device_id"
    )
    return {name: int(n) for name, n in data.conn.execute(sql, (since_ms, until_ms))}


def deployment(inv: Inventory, counts: dict[str, int], seconds: float, capacity: float) -> tuple[Deployment, int]:
    """The cores' columns from the inventory; the count of unreadable ``reach`` entries."""
    gateways = tuple(sorted(set(inv.gateway)))
    g_index = {g: i for i, g in enumerate(gateways)}
    d_index = {d: i for i, d in enumerate(inv.device)}
    cap = np.full(len(gateways), capacity)
    e_dev: list[int] = []
    e_gw: list[int] = []
    e_q: list[float] = []
    bad = 0
    for i, labels in enumerate(inv.labels):
        own = g_index[inv.gateway[i]]
        if inv.device[i] in g_index and "capacity_msgs_s" in labels:
            try:
                cap[g_index[inv.device[i]]] = float(labels["capacity_msgs_s"])
            except ValueError:
                bad += 1
        reach = labels.get("reach")
        if not reach:
            e_dev.append(i)
            e_gw.append(own)
            e_q.append(1.0)
            continue
        for item in reach.replace(",", " ").replace(";", " ").split():
            name, _, quality = item.rpartition(":")
            try:
                e_q.append(float(quality))
            except ValueError:
                bad += 1
                continue
            e_dev.append(i)
            e_gw.append(g_index.get(name, -1))  # an unknown gateway: clean() quarantines the edge
    rate = np.zeros(len(inv.device))
    for name, n in counts.items():
        row = d_index.get(name)
        if row is not None:
            rate[row] = n / seconds
    return (
        Deployment(
            capacity_msgs_s=cap,
            device_gateway=np.array([g_index[g] for g in inv.gateway], dtype=np.int64),
            device_rate_msgs_s=rate,
            reach_device=np.array(e_dev, dtype=np.int64),
            reach_gateway=np.array(e_gw, dtype=np.int64),
            reach_quality=np.array(e_q, dtype=np.float64),
        ),
        bad,
    )


def run(data: FleetData, now_ms: int, options: GatewayOptions) -> GatewayAnalysis | None:
    """Load and plan of the inventoried fleet; None when the inventory is empty."""
    inv = data.inventory()
    if not len(inv):
        return None
    until = now_ms + 1
    seconds = options.hours * 3600
    counts = uplinks(data, until - round(options.hours * HOUR_MS), until)
    raw, bad = deployment(inv, counts, seconds, options.capacity_msgs_s)
    dep = clean(raw)
    return GatewayAnalysis(
        gateways=tuple(sorted(set(inv.gateway))),
        devices=inv.device,
        report=analyse(dep),
        plan=rebalance(dep, min_quality=options.min_quality, target_util=options.target_util),
        bad_reach=bad + sum(dep.quarantined.values()),
    )


def query(data: FleetData, now_ms: int, options: GatewayOptions) -> dict[str, Any]:
    a = run(data, now_ms, options)
    if a is None:
        return {"role": "gateways", "now_ms": now_ms, "gateways": [], "bottlenecks": [], "moves": [], "plan": None}
    r, p = a.report, a.plan
    order = np.argsort(-r.utilisation, kind="stable")
    answer: dict[str, Any] = {
        "role": "gateways",
        "now_ms": now_ms,
        "gateways_total": len(a.gateways),
        "devices_total": len(a.devices),
        "max_over_mean": round(r.max_over_mean, 3),
        "gini": round(r.gini, 3),
        "gateways": [
            {
                "gateway": a.gateways[g],
                "devices": int(r.devices[g]),
                "traffic_msgs_s": round(float(r.traffic_msgs_s[g]), 4),
                "utilisation": round(float(r.utilisation[g]), 3),
                "weak_link_share": round(float(r.weak_link_share[g]), 3),
            }
            for g in order.tolist()
        ],
        "bottlenecks": [
            {"gateway": a.gateways[b.gateway], "utilisation": round(b.utilisation, 3), "reasons": list(b.reasons)}
            for b in r.bottlenecks
        ],
        "bottlenecks_total": len(r.bottlenecks),
        "plan": {
            "moves_total": len(p.moves),
            "worst_util_before": round(p.worst_util_before, 3),
            "worst_util_after": round(p.worst_util_after, 3),
            "fluid_bound_util": round(p.fluid_bound_util, 3),
            "stopped": p.stopped,
        },
        "moves": [
            {
                "device": a.devices[m.device],
                "from": a.gateways[m.from_gateway],
                "to": a.gateways[m.to_gateway],
                "quality": round(m.quality, 3),
            }
            for m in p.moves
        ],
        "quarantined": a.bad_reach,
    }
    return limited("gateways", answer, options.limit)
