"""Generic webhook: POST the message as JSON, signed so the receiver can tell it came from us.

Headers: ``X-PyMonitor-Timestamp`` (Unix seconds), ``X-PyMonitor-Signature: sha256=<hex>`` where
hex is HMAC-SHA256(secret, timestamp + "." + body), and ``Idempotency-Key`` (the message id, the
same on every retry so the receiver can drop duplicates). The receiver should refuse timestamps
more than a few minutes off, which stops a captured request from being replayed later.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import orjson

from ..fields import table
from .base import DeliveryResult, OutgoingMessage, Secret, secret, signature, timeout_s, url
from .transport import HttpChannel

SIGNATURE_HEADER = "X-PyMonitor-Signature"
TIMESTAMP_HEADER = "X-PyMonitor-Timestamp"


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookConfig:
    url: str
    secret: Secret | None = None  # None sends unsigned (a receiver on a trusted network only)
    timeout_s: float = 10.0

    @classmethod
    def parse(cls, raw: object, where: str) -> WebhookConfig:
        cfg = table(raw, where, {"type", "url", "secret", "timeout", "retry"})
        return cls(
            url=url(cfg.get("url"), f"{where}.url"),
            secret=secret(cfg["secret"], f"{where}.secret") if "secret" in cfg else None,
            timeout_s=timeout_s(cfg.get("timeout"), f"{where}.timeout"),
        )


def webhook_body(message: OutgoingMessage, now_ms: int) -> bytes:
    return orjson.dumps(
        {
            "id": message.id,
            "recipient": message.recipient,
            "subject": message.subject,
            "text": message.text,
            "severity": message.severity,
            "alerts": list(message.fingerprints),
            "sent_ms": now_ms,
        }
    )


class WebhookChannel(HttpChannel):
    def __init__(self, config: WebhookConfig, *, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(config.timeout_s, transport)
        self.config = config

    def send(self, message: OutgoingMessage, now_ms: int) -> DeliveryResult:
        body = webhook_body(message, now_ms)
        headers = {"Content-Type": "application/json", "Idempotency-Key": message.id}
        if self.config.secret is not None:
            stamp = str(now_ms // 1000)
            headers[TIMESTAMP_HEADER] = stamp
            headers[SIGNATURE_HEADER] = "sha256=" + signature(self.config.secret, stamp, body)
        return self.post(self.config.url, content=body, headers=headers)
