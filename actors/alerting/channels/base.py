"""What every notification channel speaks: an outgoing message in, a delivery result out.

Channels never raise on a delivery problem: a refused address, a 503 or a dropped connection all
come back as a ``DeliveryResult`` whose status tells the ``Deliverer`` what to do next ("retry"
is worth another attempt, "failed" is not). Only a broken config raises ``AlertConfigError``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from ..alert import Severity, is_severity
from ..fields import fail, text

DeliveryStatus = Literal["sent", "delivered", "failed", "retry"]
SECURITIES = ("plain", "starttls", "ssl")
TIMEOUT_MAX_S = 300.0
_URL = re.compile(r"https?://[^\s/?#]+(?:/[^\s]*)?")


@dataclass(frozen=True, slots=True, kw_only=True)
class OutgoingMessage:
    """One message to one recipient; ``id`` is the idempotency key (the same id is the same message)."""

    id: str
    recipient: str
    subject: str
    text: str
    fingerprints: tuple[str, ...] = ()  # the alerts this message is about, for replies and fallback
    severity: Severity = "warning"  # the worst of them; push channels map it to a priority


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryResult:
    """The outcome of one attempt (or, from the ``Deliverer``, of all of them)."""

    status: DeliveryStatus
    provider_id: str = ""  # the carrier's / server's id of the message, when it gave one
    detail: str = ""  # why, in words an operator can act on; never a secret
    attempts: int = 1


class Channel(Protocol):
    """Anything that can try to hand a message over once."""

    def send(self, message: OutgoingMessage, now_ms: int) -> DeliveryResult: ...


class Secret:
    """A token, password or key that must never be printed: ``repr`` and ``str`` show stars."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(hashlib.sha256(self._value.encode()).digest())


def secret(raw: object, where: str) -> Secret:
    """A non-empty secret; the error never echoes the value."""
    if not isinstance(raw, str) or not raw:
        raise fail(where, f"expected a non-empty string, got {type(raw).__name__}")
    return Secret(raw)


def port(raw: object, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= 65535:
        raise fail(where, f"expected 1-65535, got {raw!r}")
    return raw


def url(raw: object, where: str) -> str:
    """An http(s) URL without a trailing slash."""
    value = text(raw, where)
    if not _URL.fullmatch(value):
        raise fail(where, f"expected an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


def timeout_s(raw: object, where: str, default: float = 10.0) -> float:
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw <= TIMEOUT_MAX_S:
        raise fail(where, f"expected seconds in (0, {TIMEOUT_MAX_S:g}], got {raw!r}")
    return float(raw)


def choice(raw: object, where: str, options: tuple[str, ...]) -> str:
    if raw not in options:
        raise fail(where, f"expected one of {', '.join(options)}, got {raw!r}")
    return str(raw)


def severity_map(raw: object, where: str, default: Mapping[str, int], low: int, high: int) -> dict[str, int]:
    """A per-severity priority table (``{critical = 5}``), the defaults filling the gaps."""
    if raw is None:
        return dict(default)
    if not isinstance(raw, Mapping):
        raise fail(where, f"expected a table, got {type(raw).__name__}")
    merged = dict(default)
    for key, value in raw.items():
        if not is_severity(key):
            raise fail(f"{where}.{key}", "unknown severity (expected info, warning, critical or emergency)")
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise fail(f"{where}.{key}", f"expected {low}-{high}, got {value!r}")
        merged[str(key)] = value
    return merged


def signature(key: Secret, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over ``timestamp + "." + body``, hex: binding the time stops a captured request's replay."""
    return hmac.new(key.reveal().encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_matches(key: Secret, timestamp: str, body: bytes, given: str) -> bool:
    """Constant-time check of a ``sha256=<hex>`` or bare hex signature."""
    given = given.removeprefix("sha256=").strip().lower()
    return hmac.compare_digest(signature(key, timestamp, body).encode(), given.encode())
