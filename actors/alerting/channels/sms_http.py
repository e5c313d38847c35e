"""SMS through an HTTP gateway in the style of carrier REST APIs, and its delivery-status callbacks.

Send: ``POST <url>`` with ``Authorization: Bearer <token>``, ``Idempotency-Key: <message id>`` and
JSON ``{"to", "from", "text", "reference"}``; a 2xx answer carries the carrier's ``{"id": ...}``.
The text is transliterated to GSM-7 and cut to ``max_segments`` parts first (sms.py), so one
stray "°" cannot double the bill.

Callbacks (the carrier telling us later what happened) are JSON ``{"id", "status", ...}`` signed
with HMAC-SHA256 over ``<timestamp> "." <body>``, the hex digest in ``X-Signature`` (optionally
``sha256=``-prefixed) and the Unix seconds in ``X-Signature-Timestamp``. Unsigned, badly signed,
stale or unreadable callbacks are refused with a reason and counted, never raised to the caller.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
import orjson

from ..fields import count, duration_ms, table, text
from ..sms import fit, transliterate
from .base import DeliveryResult, DeliveryStatus, OutgoingMessage, Secret, secret, signature_matches, timeout_s, url
from .transport import HttpChannel

SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Signature-Timestamp"
MAX_CALLBACK_BYTES = 16_384
_STATES: dict[str, DeliveryStatus] = {
    **dict.fromkeys(("delivered", "delivrd"), "delivered"),
    **dict.fromkeys(("failed", "undelivered", "undeliv", "rejected", "expired", "deleted"), "failed"),
    **dict.fromkeys(("queued", "accepted", "sent", "sending", "buffered", "enroute"), "sent"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SmsHttpConfig:
    url: str  # the send endpoint, e.g. https://api.carrier.example/v1/messages
    token: Secret
    sender: str  # a number or an alphanumeric sender id
    callback_secret: Secret | None = None
    max_segments: int = 2
    timeout_s: float = 10.0
    callback_tolerance_ms: int = 300_000

    @classmethod
    def parse(cls, raw: object, where: str) -> SmsHttpConfig:
        keys = {"type", "url", "token", "from", "callback_secret", "max_segments", "timeout", "callback_tolerance"}
        cfg = table(raw, where, keys | {"retry"})
        segments = count(cfg.get("max_segments", 2), f"{where}.max_segments", maximum=10)
        return cls(
            url=url(cfg.get("url"), f"{where}.url"),
            token=secret(cfg.get("token"), f"{where}.token"),
            sender=text(cfg.get("from"), f"{where}.from"),
            callback_secret=secret(cfg["callback_secret"], f"{where}.callback_secret")
            if "callback_secret" in cfg
            else None,
            max_segments=max(segments, 1),
            timeout_s=timeout_s(cfg.get("timeout"), f"{where}.timeout"),
            callback_tolerance_ms=duration_ms(cfg.get("callback_tolerance", "5m"), f"{where}.callback_tolerance"),
        )


def sms_text(message: OutgoingMessage, max_segments: int) -> str:
    """The SMS body: the message text (not the subject: SMS has none) in GSM-7, within the budget."""
    return fit(transliterate(message.text), max_segments)


class SmsHttpChannel(HttpChannel):
    """Sends SMS through the gateway; "sent" means the carrier took it, a callback later says "delivered"."""

    def __init__(self, config: SmsHttpConfig, *, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(config.timeout_s, transport)
        self.config = config

    def send(self, message: OutgoingMessage, now_ms: int) -> DeliveryResult:
        body = {
            "to": message.recipient,
            "from": self.config.sender,
            "text": sms_text(message, self.config.max_segments),
            "reference": message.id,
        }
        headers = {
            "Authorization": f"Bearer {self.config.token.reveal()}",
            "Idempotency-Key": message.id,
            "Content-Type": "application/json",
        }
        result = self.post(self.config.url, content=orjson.dumps(body), headers=headers)
        if result.status == "sent" and not result.provider_id:  # callbacks cannot be matched to it
            return DeliveryResult(status="sent", detail=f"{result.detail}; no message id in the answer")
        return result


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusUpdate:
    """What the carrier says became of a message."""

    provider_id: str
    status: DeliveryStatus
    carrier_status: str  # as the carrier said it
    error: str = ""


class CallbackError(ValueError):
    """A delivery callback that was not accepted; the message says why."""


class StatusCallbacks:
    """Checks and reads delivery callbacks; counts refusals by reason (``rejected``)."""

    def __init__(self, secret_key: Secret, tolerance_ms: int = 300_000) -> None:
        self._key = secret_key
        self._tolerance_ms = tolerance_ms
        self.accepted = 0
        self.rejected: Counter[str] = Counter()

    def handle(self, body: bytes, headers: Mapping[str, str], now_ms: int) -> StatusUpdate | CallbackError:
        """The update, or the error saying why it was refused (returned, not raised: the caller answers 4xx)."""
        try:
            update = self.parse(body, headers, now_ms)
        except CallbackError as exc:
            self.rejected[str(exc).partition(":")[0]] += 1
            return exc
        self.accepted += 1
        return update

    def parse(self, body: bytes, headers: Mapping[str, str], now_ms: int) -> StatusUpdate:
        lower = {key.lower(): value for key, value in headers.items()}
        given, stamp = lower.get(SIGNATURE_HEADER.lower()), lower.get(TIMESTAMP_HEADER.lower())
        if not given or not stamp:
            raise CallbackError(f"unsigned: missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER}")
        if len(body) > MAX_CALLBACK_BYTES:
            raise CallbackError(f"too large: {len(body)} bytes (limit {MAX_CALLBACK_BYTES})")
        if not (stamp.isascii() and stamp.isdigit()) or abs(now_ms - int(stamp) * 1000) > self._tolerance_ms:
            raise CallbackError(f"stale: timestamp {stamp[:20]!r} is not within tolerance of now")
        if not signature_matches(self._key, stamp, body, given):
            raise CallbackError("bad signature")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise CallbackError("malformed: body is not JSON") from None
        if not isinstance(data, dict):
            raise CallbackError("malformed: expected a JSON object")
        provider_id, state = data.get("id"), data.get("status")
        if not isinstance(provider_id, str) or not provider_id:
            raise CallbackError("malformed: $.id: expected a non-empty string")
        if not isinstance(state, str) or state.lower() not in _STATES:
            raise CallbackError(f"malformed: $.status: unknown state {str(state)[:30]!r}")
        error = data.get("error", "")
        return StatusUpdate(
            provider_id=provider_id,
            status=_STATES[state.lower()],
            carrier_status=state,
            error=str(error)[:200] if error else "",
        )
