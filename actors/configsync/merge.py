"""Three-way merge of config documents, field by field, with conflicts reported, never lost.

``base`` is the last desired document the node applied, ``local`` what it runs now (possibly
edited on the node while offline), ``remote`` the hub's new desired document. A leaf changed on
one side only takes that side; changed on both sides to the same value is no conflict; changed
on both sides differently (including a delete against a change) is a :class:`Conflict`, settled
by the policy:

- ``hub-wins``: the remote value, conflicts reported;
- ``node-wins``: the local value, conflicts reported, other remote changes still merged;
- ``refuse``: nothing merged, the node keeps ``local`` whole and reports the conflicts.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .canonical import same_value

MergePolicy = Literal["hub-wins", "node-wins", "refuse"]
MERGE_POLICIES: tuple[MergePolicy, ...] = ("hub-wins", "node-wins", "refuse")


class _Absent:
    """Marks a key missing on one side of a merge (distinct from a ``None`` value)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<absent>"


ABSENT: Any = _Absent()


@dataclass(frozen=True, slots=True, kw_only=True)
class Conflict:
    """A leaf both sides changed differently; a side is :data:`ABSENT` when it had no such key."""

    path: str
    base: Any
    local: Any
    remote: Any

    def to_wire(self) -> dict[str, Any]:
        """The ``ConfigReport.conflicts`` form: absent sides are left out."""
        out: dict[str, Any] = {"path": self.path}
        for side in ("base", "local", "remote"):
            value = getattr(self, side)
            if value is not ABSENT:
                out[side] = value
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class MergeResult:
    """The merged document and the conflicts met; ``refused`` means ``doc`` is ``local`` unchanged."""

    doc: dict[str, Any]
    conflicts: list[Conflict] = field(default_factory=list)
    refused: bool = False


def _merge(base: Any, local: Any, remote: Any, path: str, policy: MergePolicy, out: list[Conflict]) -> Any:
    if same_value(local, remote):
        return local
    if same_value(base, local):
        return remote
    if same_value(base, remote):
        return local
    if isinstance(local, dict) and isinstance(remote, dict):
        below: Mapping[str, Any] = base if isinstance(base, dict) else {}
        merged: dict[str, Any] = {}
        for key in sorted(set(below) | set(local) | set(remote)):
            value = _merge(
                below.get(key, ABSENT),
                local.get(key, ABSENT),
                remote.get(key, ABSENT),
                f"{path}.{key}" if path else key,
                policy,
                out,
            )
            if value is not ABSENT:
                merged[key] = value
        return merged
    out.append(Conflict(path=path, base=base, local=local, remote=remote))
    return remote if policy == "hub-wins" else local


def three_way_merge(
    base: Mapping[str, Any], local: Mapping[str, Any], remote: Mapping[str, Any], policy: MergePolicy = "hub-wins"
) -> MergeResult:
    """Merge ``remote`` into ``local`` against ``base`` under ``policy`` (see the module docstring)."""
    if policy not in MERGE_POLICIES:
        raise ValueError(f"merge policy: expected one of {', '.join(MERGE_POLICIES)}, got {policy!r}")
    conflicts: list[Conflict] = []
    merged = _merge(dict(base), dict(local), dict(remote), "", policy, conflicts)
    if conflicts and policy == "refuse":
        return MergeResult(doc=copy.deepcopy(dict(local)), conflicts=conflicts, refused=True)
    return MergeResult(doc=copy.deepcopy(merged), conflicts=conflicts)
