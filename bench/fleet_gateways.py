"""Gateway-load analysis on a seeded deployment: time to analyse and plan, and how much the plan relieves.

``gateways_s`` is wall time of clean + analyse + rebalance (the scenario generation is not
counted). Detection is scored against the simulator's truth: every overloaded and every weak
gateway should be among the bottlenecks. Baseline in the same run: the worst utilisation as
deployed, and the fluid bound (total traffic / total capacity) no plan can beat.
"""

from __future__ import annotations

import time
from typing import Any

from pymonitor.actors.gateways import analyse, clean, rebalance
from pymonitor.simulators.health.gateways import generate

from .common import python_version

MIN_QUALITY = 0.5
TARGET_UTIL = 0.8


def run(seed: int, gateways: int = 500, devices: int = 100_000) -> dict[str, Any]:
    scenario = generate(seed, gateways=gateways, devices=devices)
    start, cpu_start = time.perf_counter(), time.process_time()
    deployment = clean(scenario.deployment)
    report = analyse(deployment, scenario.stats)
    plan = rebalance(deployment, min_quality=MIN_QUALITY, target_util=TARGET_UTIL)
    spent, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    flagged = {b.gateway for b in report.bottlenecks}
    truth = scenario.overloaded | scenario.weak
    return {
        "bench": "fleet_gateways",
        "seed": seed,
        "gateways": gateways,
        "devices": devices,
        "gateways_s": round(spent, 4),
        "gateways_cpu_s": round(cpu, 4),  # less sensitive than wall time to other work on a shared machine
        "worst_util_before": round(plan.worst_util_before, 4),
        "worst_util_after": round(plan.worst_util_after, 4),
        "fluid_bound_util": round(plan.fluid_bound_util, 4),
        "moves": len(plan.moves),
        "stopped": plan.stopped,
        "min_move_quality": round(min((m.quality for m in plan.moves), default=1.0), 4),
        "max_over_mean_before": round(report.max_over_mean, 4),
        "gini_before": round(report.gini, 4),
        "overloaded_true": len(scenario.overloaded),
        "weak_true": len(scenario.weak),
        "bottlenecks_flagged": len(flagged),
        "truth_missed": len(truth - flagged),
        "flagged_not_in_truth": len(flagged - truth),
        "python": python_version(),
    }
