"""Unauthorised firmware changes on a seeded fleet: how long until each injected change is flagged.

Every device reports every 15 minutes; the inventory folds all reports in time order.
``firmware_detect_max_s`` is the largest (first flag time - injected change time) over the injected
changes; it must stay under one report interval. False positives are flags on devices nothing
was injected into, or before the injection. Also reported: outdated and vulnerable devices and
rollout progress at the end, and how many reports a second the inventory folds.
"""

from __future__ import annotations

import time
from typing import Any

from pymonitor.actors.firmware import FirmwareInventory, parse_advisories
from pymonitor.simulators.health.firmware import generate

from .common import python_version


def run(seed: int, devices: int = 10_000, hours: int = 48) -> dict[str, Any]:
    scenario = generate(seed, devices=devices, hours=hours)
    inventory = FirmwareInventory(
        scenario.devices, approved=scenario.approved, rollouts=scenario.rollouts, schemes=scenario.schemes
    )
    truth = {c.device: c.ts_ms for c in scenario.injected}
    first_flag: dict[str, int] = {}
    false_positives = 0
    reports = 0
    spent = 0.0
    for report in scenario.reports():
        start = time.perf_counter()
        event = inventory.observe(report)
        spent += time.perf_counter() - start
        reports += 1
        if event is None:
            continue
        injected_at = truth.get(event.device)
        if injected_at is None or event.ts_ms < injected_at or event.device in first_flag:
            false_positives += 1
        else:
            first_flag[event.device] = event.ts_ms
    delays_s = [(first_flag[d] - t) / 1000 for d, t in truth.items() if d in first_flag]
    advisories = parse_advisories(scenario.advisories_toml)
    progress = inventory.rollout_progress()
    return {
        "bench": "fleet_firmware",
        "seed": seed,
        "devices": devices,
        "hours": hours,
        "report_interval_s": scenario.report_interval_ms / 1000,
        "reports": reports,
        "reports_per_s": round(reports / spent),
        "injected": len(truth),
        "detected": len(first_flag),
        "false_positives": false_positives,
        "firmware_detect_max_s": max(delays_s, default=None),
        "firmware_detect_mean_s": round(sum(delays_s) / len(delays_s), 1) if delays_s else None,
        "outdated": len(inventory.outdated()),
        "vulnerable": len(inventory.vulnerable(advisories)),
        "rollouts": {p.rollout: {"done": p.done, "pending": p.pending, "failed": p.failed} for p in progress},
        "min_group_consistency": round(min(g.majority_share for g in inventory.consistency()), 3),
        "rejected": dict(inventory.rejected),
        "python": python_version(),
    }
