"""Events and alerts raised by devices, nodes and analysis roles."""

from __future__ import annotations

from dataclasses import dataclass, field

from .registry import message
from .validate import CborValue

SEVERITIES = ("debug", "info", "warning", "error", "critical")


@message("event.v1")
@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Something happened at ``ts_ms`` (where it was observed); alerts are events with a severity."""

    node: str
    ts_ms: int
    kind: str  # dotted, e.g. "battery.low", "link.restored"
    severity: str
    message: str
    source: str = ""  # device or component the event is about
    value: float | None = None
    labels: dict[str, str] = field(default_factory=dict)
    details: dict[str, CborValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            from .errors import MessageError

            raise MessageError(f"expected one of {', '.join(SEVERITIES)}, got {self.severity!r}", path="$.severity")


@message("dead.letter.v1")
@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """A frame a node refused, with the reason, so bad input is visible rather than lost."""

    node: str  # the node that refused it
    ts_ms: int
    topic: str
    reason: str
    payload: bytes  # the first bytes of the refused frame
    payload_size: int
