"""Version history decisions: rollback as a new version, and automatic rollback on failing health.

Every version is kept (``store/config_store.py``); going back never rewrites history, it adds a
version whose content equals the old one, so nodes see a higher version and apply it normally.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pymonitor.messages.config import ConfigReport

from .desired import DesiredState, successor
from .errors import ConfigSyncError


@dataclass(frozen=True, slots=True, kw_only=True)
class RollbackDecision:
    """Roll ``node`` back from ``from_version`` to the content of ``to_version``, because ``reason``."""

    node: str
    from_version: int
    to_version: int
    reason: str


def find_version(history: Sequence[DesiredState], version: int) -> DesiredState | None:
    """The entry of ``version`` in a target's history, if kept."""
    return next((s for s in history if s.version == version), None)


def rollback(
    history: Sequence[DesiredState], to_version: int, *, created_ms: int, author: str = "", note: str = ""
) -> DesiredState:
    """A new latest version whose content equals ``to_version``'s."""
    if not history:
        raise ConfigSyncError("rollback: the history is empty")
    latest = max(history, key=lambda s: s.version)
    old = find_version(history, to_version)
    if old is None:
        raise ConfigSyncError(f"rollback: {latest.target} has no version {to_version}")
    if old.version == latest.version:
        raise ConfigSyncError(f"rollback: version {to_version} of {latest.target} is already the latest")
    return successor(
        latest,
        old.doc,
        created_ms=created_ms,
        author=author,
        note=note or f"rollback to version {to_version}",
        restores=to_version,
    )


def decide_rollback(report: ConfigReport, history: Sequence[DesiredState]) -> RollbackDecision | None:
    """Whether a node's report of failing health after an apply calls for an automatic rollback.

    ``history`` is the node's sent history (``sent:<node>``). No rollback when: the report is not
    an applied one with failing checks; the hub has already moved past that version; there is
    no earlier version to go to or it has the same content; or the failing version is itself a
    rollback (no ping-pong: a human decides then).
    """
    if report.status != "applied" or not report.failed_checks or not history:
        return None
    latest = max(history, key=lambda s: s.version)
    if report.version != latest.version or latest.restores:
        return None
    previous = find_version(history, report.previous_version)
    if previous is None or previous.version >= latest.version or previous.hash == latest.hash:
        return None
    checks = ", ".join(report.failed_checks)
    return RollbackDecision(
        node=report.node,
        from_version=latest.version,
        to_version=previous.version,
        reason=f"health checks failed after applying version {latest.version}: {checks}",
    )
