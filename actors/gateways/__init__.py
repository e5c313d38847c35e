"""Gateway load: traffic per gateway, imbalance, bottlenecks and rebalancing moves, as column arithmetic.

Pure cores over numpy arrays (no actors, no clocks). Every error of this package is a
``GatewayLoadError``; bad rows (unknown gateway, NaN traffic or link quality) are quarantined
and counted by :func:`clean`.
"""

from pymonitor.actors.gateways.deployment import Deployment, attached_quality, clean, gateway_load
from pymonitor.actors.gateways.errors import GatewayLoadError
from pymonitor.actors.gateways.load import Bottleneck, GatewayStats, LoadReport, Thresholds, analyse, gini
from pymonitor.actors.gateways.rebalance import Move, RebalancePlan, rebalance

__all__ = [
    "Bottleneck",
    "Deployment",
    "GatewayLoadError",
    "GatewayStats",
    "LoadReport",
    "Move",
    "RebalancePlan",
    "Thresholds",
    "analyse",
    "attached_quality",
    "clean",
    "gateway_load",
    "gini",
    "rebalance",
]
