"""Where the traffic is: load per gateway, imbalance, and the gateways that are bottlenecks and why.

A gateway is a bottleneck when it is over capacity, its queue grows (least-squares slope over
the sampled queue lengths), it drops more than a share of what it receives, or too many of its
devices hear it only through a weak link. All of it is column arithmetic over the gateways.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pymonitor.actors.gateways.deployment import Deployment, FloatArray, IntArray, attached_quality, gateway_load
from pymonitor.actors.gateways.errors import GatewayLoadError


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayStats:
    """What each gateway reports: queue length samples every ``sample_interval_s``, and dropped / forwarded counts."""

    queue_len: FloatArray  # [G, T]
    sample_interval_s: float
    dropped: IntArray  # [G] over the sampled period
    forwarded: IntArray  # [G]


@dataclass(frozen=True, slots=True, kw_only=True)
class Thresholds:
    overload_util: float = 1.0
    queue_growth_msgs_s: float = 0.5  # sustained growth means arrivals outpace forwarding
    drop_share: float = 0.01
    weak_link_quality: float = 0.4  # links under this lose packets and retry: extra airtime
    weak_link_share: float = 0.2


@dataclass(frozen=True, slots=True, kw_only=True)
class Bottleneck:
    gateway: int
    utilisation: float
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadReport:
    devices: IntArray  # [G] devices attached
    traffic_msgs_s: FloatArray  # [G]
    utilisation: FloatArray  # [G] traffic / capacity
    max_over_mean: float  # of utilisation; 1.0 = perfectly even
    gini: float  # of utilisation; 0 = even, toward 1 = all on one gateway
    queue_growth_msgs_s: FloatArray  # [G]
    drop_share: FloatArray  # [G]
    weak_link_share: FloatArray  # [G] of attached devices
    bottlenecks: tuple[Bottleneck, ...]


def gini(values: FloatArray) -> float:
    """Gini coefficient of non-negative values (0 for an empty or all-zero set)."""
    x = np.sort(values)
    n, total = x.shape[0], float(x.sum())
    if n == 0 or total <= 0:
        return 0.0
    ranks = np.arange(1, n + 1, dtype=np.float64)
    return float(2.0 * np.dot(ranks, x) / (n * total) - (n + 1) / n)


def queue_growth(queue_len: FloatArray, sample_interval_s: float) -> FloatArray:
    """Least-squares slope of every gateway's queue length, in messages a second (NaN samples ignored)."""
    if queue_len.ndim != 2:
        raise GatewayLoadError(f"stats.queue_len: expected shape [gateways, samples], got {queue_len.shape}")
    if not sample_interval_s > 0:
        raise GatewayLoadError(f"stats.sample_interval_s: expected a positive duration, got {sample_interval_s}")
    t = np.arange(queue_len.shape[1], dtype=np.float64) * sample_interval_s
    ok = np.isfinite(queue_len)
    n = ok.sum(axis=1)
    q = np.where(ok, queue_len, 0.0)
    tw = np.where(ok, t, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_mean = tw.sum(axis=1) / n
        q_mean = q.sum(axis=1) / n
        dt = np.where(ok, t - t_mean[:, None], 0.0)
        slope = (dt * (q - q_mean[:, None])).sum(axis=1) / (dt * dt).sum(axis=1)
    return np.where(n >= 2, np.nan_to_num(slope, nan=0.0), 0.0)


def analyse(
    deployment: Deployment, stats: GatewayStats | None = None, thresholds: Thresholds = Thresholds()
) -> LoadReport:
    """Load, imbalance and bottlenecks of a cleaned deployment (see :func:`deployment.clean`)."""
    gateways = deployment.gateways
    attached = deployment.device_gateway >= 0
    devices = np.bincount(deployment.device_gateway[attached], minlength=gateways).astype(np.int64)
    traffic = gateway_load(deployment)
    util = traffic / deployment.capacity_msgs_s
    mean_util = float(util.mean())
    weak = attached & (attached_quality(deployment) < thresholds.weak_link_quality)
    weak_count = np.bincount(deployment.device_gateway[weak], minlength=gateways)
    weak_share = weak_count / np.maximum(devices, 1)
    if stats is None:
        growth = np.zeros(gateways)
        drops = np.zeros(gateways)
    else:
        for name in ("dropped", "forwarded"):
            if getattr(stats, name).shape != (gateways,):
                raise GatewayLoadError(f"stats.{name}: expected one count per gateway ({gateways})")
        if stats.queue_len.shape[0] != gateways:
            raise GatewayLoadError(f"stats.queue_len: expected {gateways} rows, got {stats.queue_len.shape[0]}")
        growth = queue_growth(stats.queue_len, stats.sample_interval_s)
        received = stats.dropped + stats.forwarded
        drops = stats.dropped / np.maximum(received, 1)
    flags = {
        "over capacity": util > thresholds.overload_util,
        "queue growing": growth > thresholds.queue_growth_msgs_s,
        "dropping": drops > thresholds.drop_share,
        "weak links": weak_share > thresholds.weak_link_share,
    }
    any_flag = np.logical_or.reduce(list(flags.values()))
    bottlenecks = tuple(
        Bottleneck(
            gateway=int(g),
            utilisation=float(util[g]),
            reasons=tuple(reason for reason, flag in flags.items() if flag[g]),
        )
        for g in np.flatnonzero(any_flag)[np.argsort(-util[any_flag], kind="stable")]
    )
    return LoadReport(
        devices=devices,
        traffic_msgs_s=traffic,
        utilisation=util,
        max_over_mean=float(util.max() / mean_util) if mean_util > 0 else 1.0,
        gini=gini(util),
        queue_growth_msgs_s=growth,
        drop_share=drops,
        weak_link_share=weak_share,
        bottlenecks=bottlenecks,
    )
