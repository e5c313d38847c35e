"""Node birth and death, published retained on the node's state topic."""

from __future__ import annotations

from dataclasses import dataclass, field

from .registry import message


@message("node.birth.v1")
@dataclass(frozen=True, slots=True, kw_only=True)
class NodeBirth:
    """Sent on every connect.

    ``session`` is chosen when the node process starts and names its frame stream, so a new
    session means a restart; ``connects`` counts connections within the session, so a birth
    with the same session and a higher count is a reconnect (look for a seq gap, not a reset).
    """

    node: str
    session: int
    ts_ms: int
    role: str
    version: str
    connects: int = 1
    devices: int = 0
    capabilities: list[str] = field(default_factory=list)


@message("node.death.v1")
@dataclass(frozen=True, slots=True, kw_only=True)
class NodeDeath:
    """The MQTT Will (``reason`` "connection lost") or a clean goodbye (``reason`` "shutdown")."""

    node: str
    session: int
    reason: str
    ts_ms: int | None = None  # unknown for a Will, which is written at connect time
