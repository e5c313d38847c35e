"""The ``[channels.<name>]`` tables of the alerting config, parsed by ``type``, and built into channels.

[channels.ops-mail]
type = "email"            # email | sms_http | gammu | webhook | ntfy | gotify | log
host = "smtp.example.org"
retry = {max_attempts = 4, base_delay = "2s", max_delay = "1m"}
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from ..fields import fail, table
from .base import Channel
from .email import EmailChannel, EmailConfig, ReplyLinks
from .gammu import GammuChannel, GammuConfig
from .log import LogChannel, LogConfig
from .push import GotifyChannel, GotifyConfig, NtfyChannel, NtfyConfig
from .retry import RetryPolicy
from .sms_http import SmsHttpChannel, SmsHttpConfig
from .webhook import WebhookChannel, WebhookConfig

ChannelConfig = EmailConfig | SmsHttpConfig | GammuConfig | WebhookConfig | NtfyConfig | GotifyConfig | LogConfig
_PARSERS: dict[str, Callable[[object, str], ChannelConfig]] = {
    "email": EmailConfig.parse,
    "sms_http": SmsHttpConfig.parse,
    "gammu": GammuConfig.parse,
    "webhook": WebhookConfig.parse,
    "ntfy": NtfyConfig.parse,
    "gotify": GotifyConfig.parse,
    "log": LogConfig.parse,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelSpec:
    """One configured channel: its name (what escalation levels list), its settings and retry policy."""

    name: str
    type: str
    config: ChannelConfig
    retry: RetryPolicy


def parse_channels(raw: object, where: str = "channels", rng: random.Random | None = None) -> dict[str, ChannelSpec]:
    """Every ``[channels.<name>]`` table; errors name the path (``channels.ops-mail.port: ...``)."""
    specs = {}
    for name, item in table(raw, where).items():
        path = f"{where}.{name}"
        cfg = table(item, path)
        kind = cfg.get("type")
        if kind not in _PARSERS:
            raise fail(f"{path}.type", f"expected one of {', '.join(_PARSERS)}, got {kind!r}")
        retry_raw = cfg.get("retry", {})
        retry = RetryPolicy.parse(retry_raw, f"{path}.retry", rng)
        specs[name] = ChannelSpec(name=name, type=str(kind), config=_PARSERS[str(kind)](cfg, path), retry=retry)
    return specs


def build_channel(
    spec: ChannelSpec, *, links: ReplyLinks | None = None, transport: httpx.BaseTransport | None = None
) -> Channel:
    """The channel for ``spec``; ``links`` signs email reply links, ``transport`` is for tests."""
    config = spec.config
    if isinstance(config, EmailConfig):
        return EmailChannel(config, links=links)
    if isinstance(config, SmsHttpConfig):
        return SmsHttpChannel(config, transport=transport)
    if isinstance(config, GammuConfig):
        return GammuChannel(config)
    if isinstance(config, WebhookConfig):
        return WebhookChannel(config, transport=transport)
    if isinstance(config, NtfyConfig):
        return NtfyChannel(config, transport=transport)
    if isinstance(config, GotifyConfig):
        return GotifyChannel(config, transport=transport)
    return LogChannel(config)
