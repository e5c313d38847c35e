"""Commands to nodes and the acknowledgements that close the loops."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import MessageError
from .registry import message
from .validate import CborValue

COMMAND_STATUSES = ("ok", "refused", "failed")


@message("command.v1")
@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """Ask a node to do something; the node answers with a :class:`CommandAck` of the same ``id``."""

    id: str
    name: str
    ts_ms: int
    args: dict[str, CborValue] = field(default_factory=dict)
    issuer: str = ""


@message("ack.command.v1")
@dataclass(frozen=True, slots=True, kw_only=True)
class CommandAck:
    """A node's answer to a command: done, refused (with the reason) or failed."""

    node: str
    id: str
    ts_ms: int
    status: str  # "ok", "refused", "failed"
    detail: str = ""
    result: dict[str, CborValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in COMMAND_STATUSES:
            raise MessageError(f"expected one of {', '.join(COMMAND_STATUSES)}, got {self.status!r}", path="$.status")


@message("ack.delivery.v1")
@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryAck:
    """The hub stored these frames of a node's session; the node may forget them.

    ``ranges`` are inclusive ``[first, last]`` frame sequence numbers. ``hub_ts_ms`` is the
    hub's clock when it sent the ack, for clock-offset estimation on the node.
    """

    node: str
    session: int
    ranges: list[list[int]]
    hub_ts_ms: int

    def __post_init__(self) -> None:
        for i, pair in enumerate(self.ranges):
            if len(pair) != 2 or pair[0] > pair[1]:
                raise MessageError("expected [first, last] with first <= last", path=f"$.ranges[{i}]")

    def seqs(self) -> list[int]:
        """Every acknowledged sequence number."""
        return [s for first, last in self.ranges for s in range(first, last + 1)]


def to_ranges(seqs: list[int]) -> list[list[int]]:
    """Collapse sequence numbers into sorted inclusive ranges."""
    out: list[list[int]] = []
    for s in sorted(set(seqs)):
        if out and s == out[-1][1] + 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out
