"""Push notifications to phones through a self-hosted ntfy or Gotify server.

ntfy: ``POST <server>/<topic>`` with the text as body and ``Title``, ``Priority`` (1-5) and
``Tags`` headers; an access token goes in ``Authorization: Bearer``. Gotify: ``POST
<server>/message`` with JSON ``{"title", "message", "priority"}`` (0-10); the application token
goes in the ``X-Gotify-Key`` header rather than ``?token=`` so it never lands in access logs.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import httpx
import orjson

from ..fields import fail, table, text
from .base import DeliveryResult, OutgoingMessage, Secret, secret, severity_map, timeout_s, url
from .transport import HttpChannel

NTFY_PRIORITIES = {"info": 2, "warning": 3, "critical": 4, "emergency": 5}
NTFY_TAGS = {"info": "information_source", "warning": "warning", "critical": "rotating_light", "emergency": "sos"}
GOTIFY_PRIORITIES = {"info": 2, "warning": 5, "critical": 8, "emergency": 10}


def _header_safe(value: str) -> str:
    """One line of ASCII: other text as an RFC 2047 encoded word, which ntfy decodes ("95 °C" stays "95 °C")."""
    line = " ".join(value.split())[:250]
    if line.isascii():
        return line
    return "=?UTF-8?B?" + base64.b64encode(line.encode()).decode() + "?="


@dataclass(frozen=True, slots=True, kw_only=True)
class NtfyConfig:
    server: str
    topic: str
    token: Secret | None = None
    priorities: dict[str, int] = field(default_factory=lambda: dict(NTFY_PRIORITIES))
    timeout_s: float = 10.0

    @classmethod
    def parse(cls, raw: object, where: str) -> NtfyConfig:
        cfg = table(raw, where, {"type", "server", "topic", "token", "priorities", "timeout", "retry"})
        topic = text(cfg.get("topic"), f"{where}.topic")
        if "/" in topic or "?" in topic:
            raise fail(f"{where}.topic", f"expected a topic name without '/' or '?', got {topic!r}")
        return cls(
            server=url(cfg.get("server"), f"{where}.server"),
            topic=topic,
            token=secret(cfg["token"], f"{where}.token") if "token" in cfg else None,
            priorities=severity_map(cfg.get("priorities"), f"{where}.priorities", NTFY_PRIORITIES, 1, 5),
            timeout_s=timeout_s(cfg.get("timeout"), f"{where}.timeout"),
        )


class NtfyChannel(HttpChannel):
    def __init__(self, config: NtfyConfig, *, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(config.timeout_s, transport)
        self.config = config

    def send(self, message: OutgoingMessage, now_ms: int) -> DeliveryResult:
        headers = {
            "Title": _header_safe(message.subject),
            "Priority": str(self.config.priorities[message.severity]),
            "Tags": NTFY_TAGS[message.severity],
            "Content-Type": "text/plain; charset=utf-8",
        }
        if self.config.token is not None:
            headers["Authorization"] = f"Bearer {self.config.token.reveal()}"
        return self.post(f"{self.config.server}/{self.config.topic}", content=message.text.encode(), headers=headers)


@dataclass(frozen=True, slots=True, kw_only=True)
class GotifyConfig:
    server: str
    token: Secret
    priorities: dict[str, int] = field(default_factory=lambda: dict(GOTIFY_PRIORITIES))
    timeout_s: float = 10.0

    @classmethod
    def parse(cls, raw: object, where: str) -> GotifyConfig:
        cfg = table(raw, where, {"type", "server", "token", "priorities", "timeout", "retry"})
        return cls(
            server=url(cfg.get("server"), f"{where}.server"),
            token=secret(cfg.get("token"), f"{where}.token"),
            priorities=severity_map(cfg.get("priorities"), f"{where}.priorities", GOTIFY_PRIORITIES, 0, 10),
            timeout_s=timeout_s(cfg.get("timeout"), f"{where}.timeout"),
        )


class GotifyChannel(HttpChannel):
    def __init__(self, config: GotifyConfig, *, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(config.timeout_s, transport)
        self.config = config

    def send(self, message: OutgoingMessage, now_ms: int) -> DeliveryResult:
        body = {"title": message.subject, "message": message.text, "priority": self.config.priorities[message.severity]}
        headers = {"X-Gotify-Key": self.config.token.reveal(), "Content-Type": "application/json"}
        return self.post(f"{self.config.server}/message", content=orjson.dumps(body), headers=headers)
