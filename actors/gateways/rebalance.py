"""Move devices off the busiest gateways to other gateways they hear well, lowering the worst utilisation.

Heuristic, and why: assigning indivisible devices to gateways to minimise the largest load,
with each device restricted to the gateways it can reach, is makespan scheduling on restricted
machines, NP-hard; a min-max flow (or LP) relaxation gives a bound but splits devices and needs
a solver we do not ship. We use greedy bottleneck descent with LPT order: take the most utilised
gateway, try its devices largest first, and move each to the reachable gateway (link quality at
least ``min_quality``) that ends least utilised, if that leaves both gateways below the old worst;
shed until the gateway is at the target or level with the gateways it fed, then take the next worst; stop
when no move lowers the worst gateway, when it is under ``target_util`` (each move costs a
re-join, so levelling an already healthy fleet is not worth it), or after ``max_moves``. Every
move strictly lowers the worst of the two gateways it touches, so it terminates, and every move
can be explained to an operator. The fluid bound (total traffic over total capacity, and no
gateway can shed a device it cannot place) is reported so the remaining gap is visible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pymonitor.actors.gateways.deployment import Deployment, IntArray, gateway_load
from pymonitor.actors.gateways.errors import GatewayLoadError

IMPROVEMENT_MIN = 1e-9


@dataclass(frozen=True, slots=True, kw_only=True)
class Move:
    device: int
    from_gateway: int
    to_gateway: int
    quality: float  # of the new link


@dataclass(frozen=True, slots=True, kw_only=True)
class RebalancePlan:
    moves: tuple[Move, ...]
    assignment: IntArray  # [D] after the moves
    worst_util_before: float
    worst_util_after: float
    fluid_bound_util: float  # total traffic / total capacity: no assignment does better on the worst gateway
    stopped: str  # "target reached" | "no improving move" | "max moves"


def _members(assignment: IntArray, gateways: int) -> list[set[int]]:
    order = np.argsort(assignment, kind="stable")
    starts = np.searchsorted(assignment[order], np.arange(gateways + 1))
    return [set(order[starts[g] : starts[g + 1]].tolist()) for g in range(gateways)]


def rebalance(
    deployment: Deployment, *, min_quality: float = 0.5, target_util: float = 0.8, max_moves: int = 20_000
) -> RebalancePlan:
    """A plan of moves for a cleaned deployment; see the module docstring for the heuristic."""
    if not 0 <= min_quality <= 1:
        raise GatewayLoadError(f"min_quality: expected a link quality in 0..1, got {min_quality}")
    if max_moves < 0:
        raise GatewayLoadError(f"max_moves: expected a count >= 0, got {max_moves}")
    gateways = deployment.gateways
    assignment = deployment.device_gateway.copy()
    load_array = gateway_load(deployment)
    keep = deployment.reach_quality >= min_quality
    order = np.argsort(deployment.reach_device[keep], kind="stable")
    e_dev = deployment.reach_device[keep][order]
    # Scalars from here on: each move touches two gateways, and Python floats beat numpy one-element ops.
    e_gw: list[int] = deployment.reach_gateway[keep][order].tolist()
    e_q: list[float] = deployment.reach_quality[keep][order].tolist()
    ptr: list[int] = np.searchsorted(e_dev, np.arange(deployment.devices + 1)).tolist()
    rate: list[float] = deployment.device_rate_msgs_s.tolist()
    cap: list[float] = deployment.capacity_msgs_s.tolist()
    load: list[float] = load_array.tolist()
    util = [load[g] / cap[g] for g in range(gateways)]
    worst_before = max(util)
    members = _members(np.where(assignment >= 0, assignment, gateways), gateways)
    moves: list[Move] = []
    stopped = "max moves"
    while len(moves) < max_moves:
        g = max(range(gateways), key=util.__getitem__)
        if util[g] <= target_util:
            stopped = "target reached"
            break
        # Shed from g, largest devices first (LPT), down to the target or to the level of the gateways it fed.
        # (Stopping at the second-worst gateway instead makes near-equal hot spots take turns, one move each.)
        ceiling = target_util
        moved = False
        for device in sorted(members[g], key=rate.__getitem__, reverse=True):
            w = rate[device]
            best_u, best_e = math.inf, -1
            for e in range(ptr[device], ptr[device + 1]):
                t = e_gw[e]
                u = (load[t] + w) / cap[t]
                if t != g and u < best_u:
                    best_u, best_e = u, e
            if best_e < 0 or max(best_u, (load[g] - w) / cap[g]) >= util[g] - IMPROVEMENT_MIN:
                continue
            t = e_gw[best_e]
            moves.append(Move(device=device, from_gateway=g, to_gateway=t, quality=e_q[best_e]))
            members[g].discard(device)
            members[t].add(device)
            assignment[device] = t
            load[g] -= w
            load[t] += w
            util[g], util[t] = load[g] / cap[g], best_u
            ceiling = max(ceiling, best_u)
            moved = True
            if util[g] <= ceiling or len(moves) >= max_moves:
                break
        if not moved:
            stopped = "no improving move"
            break
    return RebalancePlan(
        moves=tuple(moves),
        assignment=assignment,
        worst_util_before=worst_before,
        worst_util_after=max(util),
        fluid_bound_util=sum(rate) / sum(cap),
        stopped=stopped,
    )
