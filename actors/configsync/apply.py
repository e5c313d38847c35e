"""Node side: decide whether to apply a desired config, and what to run and report.

:func:`apply` verifies the signature, checks the message is for this node and newer than what it
applied, merges the hub's document into the local one against the last applied base, validates
the result with the same validator the hub uses, and returns either the new state or a
rejection with a reason. It writes nothing: the shell writes the file with
:func:`~.tomlfile.write_config_file` and only then persists ``result.state``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pymonitor.deploy.config import NodeConfig
from pymonitor.messages.config import ConfigDesired, ConfigReport

from .canonical import content_hash
from .desired import Doc, envelope_of
from .errors import ConfigValidationError, SignatureError
from .merge import Conflict, MergePolicy, three_way_merge
from .signing import CLOCK_SKEW_MS, ReplayGuard, verify
from .validate import validate_change


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejection:
    """A signed desired version this node refused for its content, remembered so the retained
    message redelivered on every reconnect gets the same answer (not "replayed")."""

    version: int
    hash: str
    reason: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeConfigState:
    """What a node keeps about its config: what it runs, and the last hub document it applied.

    ``base``/``base_version`` are the merge base (``{}``/0 before the first remote config).
    """

    local: Doc
    base: Doc = field(default_factory=dict)
    base_version: int = 0
    last_rejection: Rejection | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyResult:
    """The outcome of one desired message; ``changed`` means write ``state.local`` and run ``config``."""

    applied: bool
    changed: bool
    state: NodeConfigState
    report: ConfigReport
    config: NodeConfig | None = None
    conflicts: list[Conflict] = field(default_factory=list)


def _node_name(doc: Mapping[str, Any]) -> str | None:
    node = doc.get("node")
    name = node.get("name") if isinstance(node, Mapping) else None
    return name if isinstance(name, str) else None


def rejected(
    desired: ConfigDesired,
    current: NodeConfigState,
    reason: str,
    detail: str,
    now_ms: int,
    conflicts: list[Conflict] | None = None,
    *,
    remember: bool = False,
) -> ApplyResult:
    """A rejection: config unchanged, a report with the reason (also for the shell's ``write_failed``).

    ``remember`` (content refusals of a verified message) records it in ``state.last_rejection``.
    """
    report = ConfigReport(
        node=_node_name(current.local) or desired.node,
        version=desired.version,
        hash=desired.hash,
        status="rejected",
        ts_ms=now_ms,
        reason=reason,
        detail=detail,
        previous_version=current.base_version,
        conflicts=[c.to_wire() for c in conflicts or []],
    )
    state = current
    if remember:
        memo = Rejection(version=desired.version, hash=desired.hash, reason=reason, detail=detail)
        state = dataclasses.replace(current, last_rejection=memo)
    return ApplyResult(applied=False, changed=False, state=state, report=report, conflicts=list(conflicts or []))


def _applied_report(
    desired: ConfigDesired, current: NodeConfigState, runs: Doc, now_ms: int, detail: str, conflicts: list[Conflict]
) -> ConfigReport:
    """The report of an applied version; ``hash`` is of what the node now runs (``runs``)."""
    return ConfigReport(
        node=desired.node,
        version=desired.version,
        hash=content_hash(runs),
        status="applied",
        ts_ms=now_ms,
        detail=detail,
        previous_version=current.base_version,
        conflicts=[c.to_wire() for c in conflicts],
    )


def apply(
    desired: ConfigDesired,
    current: NodeConfigState,
    trusted_keys: Mapping[str, Ed25519PublicKey],
    now_ms: int,
    *,
    replay: ReplayGuard,
    policy: MergePolicy = "hub-wins",
    skew_ms: int = CLOCK_SKEW_MS,
) -> ApplyResult:
    """Apply ``desired`` to ``current`` or reject it with a reason; nothing is half-applied."""
    if desired.version == current.base_version and desired.hash == content_hash(current.base):
        # The retained message again (a reconnect): already applied, nothing to do, say so again.
        report = _applied_report(desired, current, current.local, now_ms, "already applied", [])
        return ApplyResult(applied=True, changed=False, state=current, report=report)
    memo = current.last_rejection
    if memo is not None and (memo.version, memo.hash) == (desired.version, desired.hash):
        return rejected(desired, current, memo.reason, memo.detail, now_ms)
    try:
        verify(envelope_of(desired), trusted_keys, replay, now_ms, skew_ms=skew_ms)
    except SignatureError as exc:
        return rejected(desired, current, exc.reason, exc.detail, now_ms)
    name = _node_name(current.local)
    if desired.node != name:
        detail = f"addressed to {desired.node!r}, this node is {name!r}"
        return rejected(desired, current, "wrong_node", detail, now_ms, remember=True)
    actual = content_hash(desired.doc)
    if actual != desired.hash:
        detail = f"doc hashes to {actual}, the message says {desired.hash}"
        return rejected(desired, current, "hash_mismatch", detail, now_ms, remember=True)
    if desired.version <= current.base_version:
        detail = f"version {desired.version} is not newer than the applied version {current.base_version}"
        return rejected(desired, current, "outdated", detail, now_ms, remember=True)
    merged = three_way_merge(current.base, current.local, desired.doc, policy)
    if merged.refused:
        paths = ", ".join(c.path for c in merged.conflicts)
        detail = f"changed here and by the hub: {paths}"
        return rejected(desired, current, "conflict", detail, now_ms, merged.conflicts, remember=True)
    try:
        config = validate_change(current.local, merged.doc)
    except ConfigValidationError as exc:
        return rejected(desired, current, "invalid", str(exc), now_ms, merged.conflicts, remember=True)
    state = NodeConfigState(local=merged.doc, base=copy.deepcopy(desired.doc), base_version=desired.version)
    detail = f"{len(merged.conflicts)} conflict(s) settled by {policy}" if merged.conflicts else ""
    report = _applied_report(desired, current, merged.doc, now_ms, detail, merged.conflicts)
    return ApplyResult(
        applied=True, changed=True, state=state, report=report, config=config, conflicts=merged.conflicts
    )
