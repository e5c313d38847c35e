"""Adapting a gateway's uplink to its link: what the link carries, what a day may cost, how to send.

Pure cores for the gateway actor (no pykka, no paho, no clock reads; time comes in as int ms):
:class:`LinkEstimator` learns round trip, goodput and loss from publishes and DeliveryAcks,
:class:`DailyBudget` turns a daily byte budget into a sampling stride, and :func:`plan_uplink`
turns an estimate into frame size, codec and bytes per tick.

Errors: every bad input (a negative size, an attempt of 0, a malformed saved state) raises the
one :class:`UplinkError`, a ``ValueError``, saying where.
"""

from .budget import DailyBudget
from .errors import UplinkError
from .estimator import LinkEstimate, LinkEstimator
from .policy import UplinkPlan, plan_uplink

__all__ = ["DailyBudget", "LinkEstimate", "LinkEstimator", "UplinkError", "UplinkPlan", "plan_uplink"]
