"""Notification channels: email, SMS (HTTP gateway, gammu modem), webhook, ntfy, Gotify, log.

Every channel has ``send(message, now_ms) -> DeliveryResult`` and never raises for a delivery
problem; ``Deliverer`` retries it with backoff and reports failures to escalation. Config errors
are ``AlertConfigError`` naming the path (``channels.ops-mail.port: expected 1-65535, got 0``).
"""

from .base import Channel, DeliveryResult, DeliveryStatus, OutgoingMessage, Secret
from .email import EmailChannel, EmailConfig
from .retry import AttemptRecord, Deliverer, RetryPolicy

__all__ = [
    "AttemptRecord",
    "Channel",
    "Deliverer",
    "DeliveryResult",
    "DeliveryStatus",
    "EmailChannel",
    "EmailConfig",
    "OutgoingMessage",
    "RetryPolicy",
    "Secret",
]
