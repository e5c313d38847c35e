"""Notification channels: email, SMS (HTTP gateway, gammu modem), webhook, ntfy, Gotify, log.

Every channel has ``send(message, now_ms) -> DeliveryResult`` and never raises for a delivery
problem; ``Deliverer`` retries it with backoff and reports failures to escalation. Config errors
are ``AlertConfigError`` naming the path (``channels.ops-mail.port: expected 1-65535, got 0``).
"""

from .base import Channel, DeliveryResult, DeliveryStatus, OutgoingMessage, Secret
from .config import ChannelSpec, build_channel, parse_channels
from .email import EmailChannel, EmailConfig
from .gammu import GammuChannel, GammuConfig, GammuInbox, InboundSms
from .log import LogChannel, LogConfig
from .push import GotifyChannel, GotifyConfig, NtfyChannel, NtfyConfig
from .retry import AttemptRecord, Deliverer, RetryPolicy
from .sms_http import CallbackError, SmsHttpChannel, SmsHttpConfig, StatusCallbacks, StatusUpdate
from .webhook import WebhookChannel, WebhookConfig

__all__ = [
    "AttemptRecord",
    "CallbackError",
    "Channel",
    "ChannelSpec",
    "Deliverer",
    "DeliveryResult",
    "DeliveryStatus",
    "EmailChannel",
    "EmailConfig",
    "GammuChannel",
    "GammuConfig",
    "GammuInbox",
    "GotifyChannel",
    "GotifyConfig",
    "InboundSms",
    "LogChannel",
    "LogConfig",
    "NtfyChannel",
    "NtfyConfig",
    "OutgoingMessage",
    "RetryPolicy",
    "Secret",
    "SmsHttpChannel",
    "SmsHttpConfig",
    "StatusCallbacks",
    "StatusUpdate",
    "WebhookChannel",
    "WebhookConfig",
    "build_channel",
    "parse_channels",
]
