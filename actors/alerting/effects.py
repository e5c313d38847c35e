"""What the alerting pipeline decides, as values: the shell records and sends them, in order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .alert import Alert
from .channels.base import OutgoingMessage
from .escalation import EscalationStep
from .silences import Silence

SendKind = Literal["notification", "digest", "escalation", "status"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordAlerts:
    """Every transition the rules made, one batch per input: the history keeps all of them."""

    alerts: tuple[Alert, ...]
    at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Muted:
    """A firing alert a silence, maintenance window or inhibition kept quiet, and why."""

    alert: Alert
    reason: str
    at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Deferred:
    """An off-hours non-emergency waiting for the morning digest at ``until_ms``."""

    alert: Alert
    until_ms: int
    at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Send:
    """Hand ``message`` to ``receiver``'s channel; ``rate_limited`` ones are recorded, not sent."""

    message: OutgoingMessage
    receiver: str
    channel: str
    group_key: str
    kind: SendKind
    at_ms: int
    rate_limited: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordEscalation:
    """One escalation step (start, timeout, fallback, exhausted), for the history."""

    step: EscalationStep


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordSilence:
    """A silence asked for by a reply: keep it in the store so it outlives a restart."""

    silence: Silence


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordAck:
    """An acknowledgement, silence or status request, taken or refused: the audit trail of replies."""

    fingerprint: str
    action: str
    by: str
    via: str
    accepted: bool
    detail: str
    at_ms: int


Effect = RecordAlerts | Muted | Deferred | Send | RecordEscalation | RecordAck | RecordSilence
