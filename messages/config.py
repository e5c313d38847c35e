"""Remote configuration: the desired state a hub signs for a node, and what the node reports back.

``ConfigDesired`` is published retained on the node's ``.../down/config`` topic so a node that
was offline finds the latest one when it reconnects; the signature fields follow
``pymonitor.actors.configsync.signing`` (empty ``signature``: unsigned, refused by nodes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import MessageError
from .registry import message
from .validate import CborValue

CONFIG_REPORT_STATUSES = ("applied", "rejected")
REFUSAL_REASONS = (
    "",
    "unsigned",
    "unknown_key",
    "forged",
    "stale",
    "replayed",
    "wrong_node",
    "hash_mismatch",
    "outdated",
    "invalid",
    "conflict",
    "write_failed",
)
"""Why a node rejected a desired config; the signature reasons come first, then content reasons."""


@message("config.desired.v1")
@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigDesired:
    """The whole effective config a node should run, at a version, signed by the hub.

    ``hash`` is the sha256 of the canonical CBOR of ``doc``; ``seq``/``issued_ms``/``expires_ms``
    are the signing envelope (replay window and validity), ``key_id`` the signer.
    """

    node: str
    version: int
    hash: str
    doc: dict[str, CborValue]
    key_id: str = ""
    issued_ms: int = 0
    expires_ms: int = 0
    seq: int = 0
    signature: bytes = b""

    def __post_init__(self) -> None:
        if self.version < 1:
            raise MessageError(f"expected a version >= 1, got {self.version}", path="$.version")


@message("config.report.v1")
@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigReport:
    """A node's answer to a desired config: applied (with the hash it now runs) or rejected, and why.

    ``previous_version`` is what the node ran before (the rollback target if health fails);
    ``conflicts`` lists ``{"path", "base", "local", "remote"}`` maps (a side that was absent is
    left out); ``failed_checks`` names health checks failing after an apply (empty: healthy
    or not yet checked).
    """

    node: str
    version: int
    hash: str
    status: str
    ts_ms: int
    reason: str = ""
    detail: str = ""
    previous_version: int = 0
    conflicts: list[dict[str, CborValue]] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.status not in CONFIG_REPORT_STATUSES:
            raise MessageError(
                f"expected one of {', '.join(CONFIG_REPORT_STATUSES)}, got {self.status!r}", path="$.status"
            )
        if self.reason not in REFUSAL_REASONS:
            raise MessageError(f"unknown refusal reason {self.reason!r}", path="$.reason")
        if self.status == "rejected" and not self.reason:
            raise MessageError("a rejected config needs a reason", path="$.reason")
