"""A deployment as columns: who is attached where, how much they send, which gateways each device reaches.

Everything is numpy arrays indexed by gateway (0..G-1) and device (0..D-1) so 100,000 devices
are analysed without a Python loop. :func:`clean` quarantines bad rows (unknown gateway, NaN or
negative traffic, NaN link quality) and counts them instead of crashing; shapes and capacities
that make analysis meaningless raise ``GatewayLoadError``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from pymonitor.actors.gateways.errors import GatewayLoadError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    """Gateways, devices and reachability (an edge per device-gateway pair the device can hear)."""

    capacity_msgs_s: FloatArray  # [G] messages a second each gateway forwards without queueing
    device_gateway: IntArray  # [D] the gateway each device is attached to
    device_rate_msgs_s: FloatArray  # [D] each device's traffic
    reach_device: IntArray  # [E]
    reach_gateway: IntArray  # [E]
    reach_quality: FloatArray  # [E] link quality 0..1 (1 = perfect); the attached link should be among them
    quarantined: Counter[str] = field(default_factory=Counter)

    @property
    def gateways(self) -> int:
        return int(self.capacity_msgs_s.shape[0])

    @property
    def devices(self) -> int:
        return int(self.device_gateway.shape[0])


def _same_length(name: str, array: npt.NDArray[np.generic], expected: int, of: str) -> None:
    if array.ndim != 1 or array.shape[0] != expected:
        raise GatewayLoadError(f"{name}: expected one value per {of} ({expected}), got shape {array.shape}")


def clean(deployment: Deployment) -> Deployment:
    """A deployment with bad rows quarantined (counted in ``quarantined``); ``GatewayLoadError`` for bad shapes."""
    cap = np.asarray(deployment.capacity_msgs_s, dtype=np.float64)
    if cap.ndim != 1 or cap.shape[0] == 0:
        raise GatewayLoadError(f"capacity_msgs_s: expected a non-empty 1-d array, got shape {cap.shape}")
    bad_cap = np.flatnonzero(~(np.isfinite(cap) & (cap > 0)))
    if bad_cap.size:
        raise GatewayLoadError(f"capacity_msgs_s[{bad_cap[0]}]: expected a positive finite rate, got {cap[bad_cap[0]]}")
    gateways = cap.shape[0]
    dev_gw = np.asarray(deployment.device_gateway, dtype=np.int64)
    rate = np.asarray(deployment.device_rate_msgs_s, dtype=np.float64)
    _same_length("device_rate_msgs_s", rate, dev_gw.shape[0], "device (device_gateway)")
    quarantined = Counter(deployment.quarantined)
    unknown_gw = (dev_gw < 0) | (dev_gw >= gateways)
    bad_rate = ~(np.isfinite(rate) & (rate >= 0))
    quarantined["device_unknown_gateway"] += int(unknown_gw.sum())
    quarantined["device_bad_rate"] += int((bad_rate & ~unknown_gw).sum())
    # A quarantined device keeps its index (ids stay stable) but is detached: gateway -1, no traffic, no edges.
    dev_gw = np.where(unknown_gw | bad_rate, -1, dev_gw)
    rate = np.where(unknown_gw | bad_rate, 0.0, rate)
    e_dev = np.asarray(deployment.reach_device, dtype=np.int64)
    e_gw = np.asarray(deployment.reach_gateway, dtype=np.int64)
    e_q = np.asarray(deployment.reach_quality, dtype=np.float64)
    _same_length("reach_gateway", e_gw, e_dev.shape[0], "edge (reach_device)")
    _same_length("reach_quality", e_q, e_dev.shape[0], "edge (reach_device)")
    ok_edge = (e_dev >= 0) & (e_dev < dev_gw.shape[0]) & (e_gw >= 0) & (e_gw < gateways)
    ok_edge &= np.isfinite(e_q) & (e_q >= 0) & (e_q <= 1)
    quarantined["edge_invalid"] += int((~ok_edge).sum())
    ok_edge[ok_edge] = dev_gw[e_dev[ok_edge]] >= 0
    return Deployment(
        capacity_msgs_s=cap,
        device_gateway=dev_gw,
        device_rate_msgs_s=rate,
        reach_device=e_dev[ok_edge],
        reach_gateway=e_gw[ok_edge],
        reach_quality=e_q[ok_edge],
        quarantined=quarantined,
    )


def gateway_load(deployment: Deployment, assignment: IntArray | None = None) -> FloatArray:
    """Traffic per gateway (msgs/s) under ``assignment`` (default: the current attachment)."""
    dev_gw = deployment.device_gateway if assignment is None else assignment
    attached = dev_gw >= 0
    load = np.bincount(dev_gw[attached], weights=deployment.device_rate_msgs_s[attached], minlength=deployment.gateways)
    return load.astype(np.float64)


def attached_quality(deployment: Deployment) -> FloatArray:
    """Link quality of each device to the gateway it is attached to (0 where no edge says it can hear it)."""
    quality = np.zeros(deployment.devices, dtype=np.float64)
    if deployment.reach_device.shape[0] == 0:
        return quality
    gateways = deployment.gateways
    edge_key = deployment.reach_device * gateways + deployment.reach_gateway
    order = np.argsort(edge_key, kind="stable")
    sorted_key = edge_key[order]
    want = np.arange(deployment.devices, dtype=np.int64) * gateways + deployment.device_gateway
    pos = np.minimum(np.searchsorted(sorted_key, want), sorted_key.shape[0] - 1)
    found = (deployment.device_gateway >= 0) & (sorted_key[pos] == want)
    quality[found] = deployment.reach_quality[order[pos[found]]]
    return quality
