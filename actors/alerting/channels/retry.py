"""Retries with exponential backoff and full jitter, and the ``Deliverer`` that applies them.

Full jitter (a uniform delay in ``[0, min(max, base * multiplier**n)]``) keeps many failed sends
from hammering a recovering gateway in lockstep. The Deliverer reads time from an injected clock
and waits through an injected ``sleep``, so tests run a five-attempt backoff without waiting, and
it reports every attempt (for the audit log) and a final failure (so escalation can fall back).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ..fields import duration_ms, fail, table
from .base import Channel, DeliveryResult, DeliveryStatus, OutgoingMessage

MAX_ATTEMPTS_LIMIT = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently to try; ``rng`` is injectable so tests can seed the jitter."""

    max_attempts: int = 5
    base_delay_ms: int = 1_000
    max_delay_ms: int = 60_000
    multiplier: float = 2.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= MAX_ATTEMPTS_LIMIT:
            raise fail("retry.max_attempts", f"expected 1-{MAX_ATTEMPTS_LIMIT}, got {self.max_attempts!r}")
        if self.base_delay_ms < 0 or self.max_delay_ms < self.base_delay_ms:
            raise fail("retry.max_delay", f"expected at least base_delay ({self.base_delay_ms} ms)")
        if not self.multiplier >= 1.0:
            raise fail("retry.multiplier", f"expected a number >= 1, got {self.multiplier!r}")

    @classmethod
    def parse(cls, raw: object, where: str, rng: random.Random | None = None) -> RetryPolicy:
        """From a TOML table ``{max_attempts = 5, base_delay = "1s", max_delay = "1m", multiplier = 2}``."""
        cfg = table(raw, where, {"max_attempts", "base_delay", "max_delay", "multiplier"})
        attempts = cfg.get("max_attempts", 5)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= MAX_ATTEMPTS_LIMIT:
            raise fail(f"{where}.max_attempts", f"expected 1-{MAX_ATTEMPTS_LIMIT}, got {attempts!r}")
        base = duration_ms(cfg.get("base_delay", "1s"), f"{where}.base_delay")
        cap = duration_ms(cfg.get("max_delay", "60s"), f"{where}.max_delay")
        if cap < base:
            raise fail(f"{where}.max_delay", f"expected at least base_delay ({base} ms), got {cap} ms")
        multiplier = cfg.get("multiplier", 2.0)
        if isinstance(multiplier, bool) or not isinstance(multiplier, int | float) or not 1 <= multiplier <= 10:
            raise fail(f"{where}.multiplier", f"expected a number from 1 to 10, got {multiplier!r}")
        return cls(
            max_attempts=attempts,
            base_delay_ms=base,
            max_delay_ms=cap,
            multiplier=float(multiplier),
            rng=rng if rng is not None else random.Random(),
        )

    def ceiling_ms(self, attempt: int) -> int:
        """The largest delay after failed attempt number ``attempt`` (1-based): the backoff without jitter."""
        exponent = min(max(attempt - 1, 0), 64)  # 2**64 s is past any cap; stops float overflow
        return int(min(float(self.max_delay_ms), self.base_delay_ms * self.multiplier**exponent))

    def next_delay_ms(self, attempt: int) -> int | None:
        """How long to wait after failed attempt ``attempt`` (1-based); None when it was the last one."""
        if attempt >= self.max_attempts:
            return None
        return self.rng.randint(0, self.ceiling_ms(attempt))


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptRecord:
    """One try of one message on one channel, for the audit log."""

    message_id: str
    channel: str
    recipient: str
    attempt: int
    status: DeliveryStatus
    detail: str
    provider_id: str
    at_ms: int


AttemptSink = Callable[[AttemptRecord], object]
FailureSink = Callable[[str, str, int], object]
"""Called as ``(fingerprint, channel, now_ms)`` per alert of a message that could not be delivered:
``Escalator.delivery_failed`` fits as is."""


class Deliverer:
    """Drives one channel through a ``RetryPolicy``; never raises for a delivery problem."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        clock: Callable[[], int],
        sleep: Callable[[int], None],
        on_attempt: AttemptSink | None = None,
        on_failure: FailureSink | None = None,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._sleep = sleep  # takes milliseconds
        self._on_attempt = on_attempt
        self._on_failure = on_failure
        self.failures = 0
        self.crashes = 0  # channels that raised instead of returning a result: a bug, counted

    def deliver(self, channel_name: str, channel: Channel, message: OutgoingMessage) -> DeliveryResult:
        """Try until sent, refused for good, or out of attempts; the result carries the attempt count."""
        attempt = 0
        while True:
            attempt += 1
            now_ms = self._clock()
            result = self._try(channel, message, now_ms)
            if self._on_attempt is not None:
                self._on_attempt(
                    AttemptRecord(
                        message_id=message.id,
                        channel=channel_name,
                        recipient=message.recipient,
                        attempt=attempt,
                        status=result.status,
                        detail=result.detail,
                        provider_id=result.provider_id,
                        at_ms=now_ms,
                    )
                )
            delay = self.policy.next_delay_ms(attempt) if result.status == "retry" else None
            if delay is None:
                break
            self._sleep(delay)
        final = DeliveryResult(
            status="failed" if result.status == "retry" else result.status,
            provider_id=result.provider_id,
            detail=result.detail if result.status != "retry" else f"gave up after {attempt} attempts: {result.detail}",
            attempts=attempt,
        )
        if final.status == "failed":
            self.failures += 1
            if self._on_failure is not None:
                for fingerprint in message.fingerprints:
                    self._on_failure(fingerprint, channel_name, self._clock())
        return final

    def _try(self, channel: Channel, message: OutgoingMessage, now_ms: int) -> DeliveryResult:
        try:
            return channel.send(message, now_ms)
        except Exception as exc:  # noqa: BLE001 - a channel bug must not stop the alerting actor
            self.crashes += 1
            return DeliveryResult(status="retry", detail=f"channel raised {type(exc).__name__}: {exc}")
