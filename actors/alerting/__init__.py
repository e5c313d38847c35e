"""Alerting: rules, routing, business hours, escalation and notification channels.

Pure cores (rules, routing, schedules, SMS text) do the thinking; the alerting actor only feeds
them and carries their effects out. Every error in this package is an ``AlertConfigError``.
"""

from pymonitor.actors.alerting.errors import AlertConfigError

__all__ = ["AlertConfigError"]
