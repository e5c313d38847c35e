"""A seeded gateway deployment with overloaded and weak gateways, and the truth of which ones they are.

Gateways stand on a square site; each device hears its ``REACH_K`` nearest gateways with a
quality falling with distance. Most devices attach to their best link; around a few "sticky"
gateways (a misconfigured preferred-gateway list) devices attach there instead, overloading them.
A few gateways have a degraded antenna (all their links weaker). Queue samples and drop counts
follow from the load: a gateway over capacity queues the excess until its buffer is full.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pymonitor.actors.gateways import Deployment, GatewayStats

REACH_K = 4
SIDE_KM = 50.0
CAPACITY_MSGS_S = 30.0
BUFFER_MSGS = 50_000.0
SAMPLE_INTERVAL_S = 60.0
SAMPLES = 60
STICKY_SHARE = 0.04
STICKY_PULL = 0.9  # share of devices in a sticky gateway's reach that attach to it
WEAK_SHARE = 0.02
FLEET_UTIL = 0.48  # total traffic / total capacity
CHUNK_DEVICES = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayScenario:
    deployment: Deployment
    stats: GatewayStats
    sticky: frozenset[int]  # gateways devices were wrongly pinned to
    weak: frozenset[int]  # gateways with a degraded antenna
    overloaded: frozenset[int]  # truth: gateways over capacity as deployed


def generate(seed: int, *, gateways: int = 500, devices: int = 100_000) -> GatewayScenario:
    rng = np.random.default_rng(seed)
    gw_xy = rng.uniform(0, SIDE_KM, size=(gateways, 2))
    dev_xy = rng.uniform(0, SIDE_KM, size=(devices, 2))
    capacity = CAPACITY_MSGS_S * rng.uniform(0.8, 1.2, size=gateways)
    weak = rng.choice(gateways, size=max(1, int(WEAK_SHARE * gateways)), replace=False)
    sticky = rng.choice(
        np.setdiff1d(np.arange(gateways), weak), size=max(1, int(STICKY_SHARE * gateways)), replace=False
    )
    near = np.empty((devices, REACH_K), dtype=np.int64)
    dist = np.empty((devices, REACH_K))
    gw_sq = (gw_xy**2).sum(axis=1)
    for lo in range(0, devices, CHUNK_DEVICES):
        xy = dev_xy[lo : lo + CHUNK_DEVICES]
        d2 = (xy**2).sum(axis=1)[:, None] + gw_sq[None, :] - 2.0 * xy @ gw_xy.T
        idx = np.argpartition(d2, REACH_K - 1, axis=1)[:, :REACH_K]
        near[lo : lo + CHUNK_DEVICES] = idx
        dist[lo : lo + CHUNK_DEVICES] = np.sqrt(np.maximum(np.take_along_axis(d2, idx, axis=1), 0.0))
    reach_km = 4.0 * SIDE_KM / np.sqrt(gateways)  # about four gateway spacings
    quality = np.clip(1.0 - dist / reach_km + rng.normal(0, 0.05, size=dist.shape), 0.05, 1.0)
    best = near[np.arange(devices), np.argmax(quality, axis=1)]  # chosen before the antennas degraded
    quality[np.isin(near, weak)] *= 0.35
    hears_sticky = np.isin(near, sticky)
    pinned = hears_sticky.any(axis=1) & (rng.random(devices) < STICKY_PULL)
    sticky_choice = near[np.arange(devices), np.argmax(hears_sticky, axis=1)]
    attach = np.where(pinned, sticky_choice, best)
    rate = rng.lognormal(0.0, 0.6, size=devices)  # heavy-tailed; scaled so the fleet as a whole has headroom
    rate *= FLEET_UTIL * capacity.sum() / rate.sum()
    deployment = Deployment(
        capacity_msgs_s=capacity,
        device_gateway=attach,
        device_rate_msgs_s=rate,
        reach_device=np.repeat(np.arange(devices, dtype=np.int64), REACH_K),
        reach_gateway=near.ravel(),
        reach_quality=quality.ravel(),
    )
    load = np.bincount(attach, weights=rate, minlength=gateways)
    excess = load - capacity
    t = np.arange(SAMPLES) * SAMPLE_INTERVAL_S
    queue = np.clip(np.maximum(excess, 0)[:, None] * t[None, :], 0, BUFFER_MSGS)
    queue += rng.poisson(5, size=queue.shape)
    period_s = SAMPLES * SAMPLE_INTERVAL_S
    dropped = np.maximum(np.maximum(excess, 0) * period_s - BUFFER_MSGS, 0).astype(np.int64)
    forwarded = (np.minimum(load, capacity) * period_s).astype(np.int64)
    stats = GatewayStats(queue_len=queue, sample_interval_s=SAMPLE_INTERVAL_S, dropped=dropped, forwarded=forwarded)
    return GatewayScenario(
        deployment=deployment,
        stats=stats,
        sticky=frozenset(int(g) for g in sticky),
        weak=frozenset(int(g) for g in weak),
        overloaded=frozenset(int(g) for g in np.flatnonzero(excess > 0)),
    )
