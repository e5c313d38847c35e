"""Rebalancing: moves lower the worst gateway, respect link quality, and stop for a stated reason."""

from __future__ import annotations

import numpy as np
import pytest

from pymonitor.actors.gateways import Deployment, GatewayLoadError, analyse, clean, gateway_load, rebalance
from pymonitor.simulators.health.gateways import generate


def two_gateways(quality_to_1: float = 0.9) -> Deployment:
    """Gateway 0 carries all four devices; devices 0-2 also hear gateway 1."""
    return clean(
        Deployment(
            capacity_msgs_s=np.array([2.0, 2.0]),
            device_gateway=np.array([0, 0, 0, 0, -1]),
            device_rate_msgs_s=np.array([1.0, 1.0, 0.5, 0.5, 0.0]),
            reach_device=np.array([0, 0, 1, 1, 2, 2, 3]),
            reach_gateway=np.array([0, 1, 0, 1, 0, 1, 0]),
            reach_quality=np.array([0.9, quality_to_1, 0.9, quality_to_1, 0.9, quality_to_1, 0.9]),
        )
    )


def test_largest_device_moves_first_and_worst_load_drops() -> None:
    plan = rebalance(two_gateways(), target_util=0.0)
    assert plan.worst_util_before == 1.5
    assert plan.worst_util_after == 0.75
    assert plan.moves[0].device == 0 and plan.moves[0].to_gateway == 1
    assert plan.assignment.tolist().count(1) == 1 + (len(plan.moves) - 1)
    assert plan.fluid_bound_util == 0.75
    assert plan.stopped == "no improving move"


def test_links_below_the_quality_threshold_are_never_used() -> None:
    plan = rebalance(two_gateways(quality_to_1=0.3), min_quality=0.5)
    assert plan.moves == ()
    assert plan.worst_util_after == plan.worst_util_before
    assert plan.stopped == "no improving move"


def test_stops_at_target_and_at_max_moves() -> None:
    assert rebalance(two_gateways(), target_util=2.0).stopped == "target reached"
    capped = rebalance(two_gateways(), target_util=0.0, max_moves=1)
    assert len(capped.moves) == 1 and capped.stopped == "max moves"


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"min_quality": 1.5}, "min_quality"), ({"max_moves": -1}, "max_moves")]
)
def test_bad_parameters_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(GatewayLoadError, match=message):
        rebalance(two_gateways(), **kwargs)  # type: ignore[arg-type]


def test_simulated_overload_is_found_and_relieved() -> None:
    scenario = generate(3, gateways=60, devices=6_000)
    deployment = clean(scenario.deployment)
    report = analyse(deployment, scenario.stats)
    flagged = {b.gateway for b in report.bottlenecks}
    assert scenario.overloaded <= flagged
    assert scenario.weak <= flagged
    plan = rebalance(deployment, min_quality=0.5, target_util=0.8)
    assert plan.worst_util_after < plan.worst_util_before
    assert plan.worst_util_after <= max(0.8, plan.worst_util_before)
    moved_quality = [m.quality for m in plan.moves]
    assert min(moved_quality) >= 0.5
    after = gateway_load(deployment, plan.assignment)
    assert after.sum() == pytest.approx(gateway_load(deployment).sum())
    # Every move is to a gateway the device can hear.
    edges = set(zip(deployment.reach_device.tolist(), deployment.reach_gateway.tolist(), strict=True))
    assert all((m.device, m.to_gateway) in edges for m in plan.moves)


def test_bench_reports_worst_load_before_and_after() -> None:
    from pymonitor.bench.fleet_gateways import run

    result = run(1, gateways=40, devices=4_000)
    assert result["worst_util_after"] < result["worst_util_before"]
    assert result["truth_missed"] == 0
    assert result["min_move_quality"] >= 0.5
