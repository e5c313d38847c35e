"""The log channel: one structured JSON line per message through ``logging``.

The channel of last resort (and of tests and dry runs): it cannot fail, so an escalation that
falls back to it always leaves a trace an operator can grep for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import orjson

from ..fields import table, text
from .base import DeliveryResult, OutgoingMessage, choice

LEVELS = ("debug", "info", "warning", "error", "critical")


@dataclass(frozen=True, slots=True, kw_only=True)
class LogConfig:
    logger: str = "pymonitor.alerts"
    level: str = "warning"

    @classmethod
    def parse(cls, raw: object, where: str) -> LogConfig:
        cfg = table(raw, where, {"type", "logger", "level", "retry"})
        return cls(
            logger=text(cfg.get("logger", "pymonitor.alerts"), f"{where}.logger"),
            level=choice(cfg.get("level", "warning"), f"{where}.level", LEVELS),
        )


class LogChannel:
    def __init__(self, config: LogConfig) -> None:
        self.config = config
        self._logger = logging.getLogger(config.logger)
        self._level = logging.getLevelName(config.level.upper())

    def send(self, message: OutgoingMessage, now_ms: int) -> DeliveryResult:
        line = {
            "event": "alert_notification",
            "id": message.id,
            "recipient": message.recipient,
            "severity": message.severity,
            "subject": message.subject,
            "text": message.text,
            "alerts": list(message.fingerprints),
            "at_ms": now_ms,
        }
        self._logger.log(self._level, "%s", orjson.dumps(line).decode())
        return DeliveryResult(status="delivered", provider_id=message.id, detail=f"logged to {self.config.logger}")
