"""Alerting: rules, routing, business hours, escalation and notification channels.

Pure cores (rules, routing, grouping, silences, schedules, escalation, SMS text) do the
thinking; the alerting actor only feeds them and carries their effects out. Every config error
in this package is an ``AlertConfigError`` naming the path and the reason.
"""

from pymonitor.actors.alerting.alert import (
    SEVERITIES,
    Alert,
    AnomalyEvent,
    CheckResult,
    Observation,
    Series,
    Severity,
    fingerprint,
    severity_rank,
)
from pymonitor.actors.alerting.chains import EscalationPolicy
from pymonitor.actors.alerting.errors import AlertConfigError
from pymonitor.actors.alerting.escalation import EXHAUSTED, EscalationStep, Escalator
from pymonitor.actors.alerting.grouping import Notification, NotificationScheduler
from pymonitor.actors.alerting.routing import RouteMatch, RoutingTree, Timings
from pymonitor.actors.alerting.rules import Rule, RuleEngine, parse_rules
from pymonitor.actors.alerting.schedule import BusinessHours, Deferral, EmergencyRules, is_emergency
from pymonitor.actors.alerting.silences import InhibitRule, MaintenanceWindow, Muter, Silence
from pymonitor.actors.alerting.sms import SmsRateLimiter, encoding, fit, segments, summarize_storm, transliterate

__all__ = [
    "EXHAUSTED",
    "SEVERITIES",
    "Alert",
    "AlertConfigError",
    "AnomalyEvent",
    "BusinessHours",
    "CheckResult",
    "Deferral",
    "EmergencyRules",
    "EscalationPolicy",
    "EscalationStep",
    "Escalator",
    "InhibitRule",
    "MaintenanceWindow",
    "Muter",
    "Notification",
    "NotificationScheduler",
    "Observation",
    "RouteMatch",
    "RoutingTree",
    "Rule",
    "RuleEngine",
    "Series",
    "Severity",
    "Silence",
    "SmsRateLimiter",
    "Timings",
    "encoding",
    "fingerprint",
    "fit",
    "is_emergency",
    "parse_rules",
    "segments",
    "severity_rank",
    "summarize_storm",
    "transliterate",
]
