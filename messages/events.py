"""Events and alerts raised by devices, nodes and analysis roles."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import MessageError
from .readings import INT64_MAX
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
    session: int = 0  # with seq > 0: the event sits in the node's outbox until the hub acknowledges
    seq: int = 0  # (node, session, seq) then, as for reading batches; 0 = fire and forget

    def __post_init__(self) -> None:
        for name in ("session", "seq"):
            if not 0 <= getattr(self, name) <= INT64_MAX:
                raise MessageError("must be from 0 to 2**63-1 (a signed 64-bit integer)", path=f"$.{name}")
        if self.severity not in SEVERITIES:
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
