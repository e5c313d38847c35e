"""Partial updates of a config document: ``set`` / ``remove`` operations on dotted paths.

A JSON-Patch-like subset sized for node configs (``broker.url``, ``hub.raw_days``). A patch
applies whole or not at all: the first failing operation raises :class:`PatchError` naming its
index, path and reason, and the input document is never modified.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .canonical import same_value
from .errors import PatchError

PATH_SEGMENT = re.compile(r"^[A-Za-z0-9_\-]+$")
OPS = ("set", "remove")


@dataclass(frozen=True, slots=True, kw_only=True)
class PatchOp:
    """One operation: ``set`` a leaf or a whole table at ``path``, or ``remove`` the key there."""

    op: Literal["set", "remove"]
    path: str
    value: Any = None


def split_path(path: str) -> tuple[str, ...]:
    """``"a.b.c"`` -> ``("a", "b", "c")``; raises ``ValueError`` on empty or odd segments."""
    if not isinstance(path, str) or not path:
        raise ValueError("expected a dotted path like 'broker.url', got an empty path")
    parts = tuple(path.split("."))
    for part in parts:
        if not PATH_SEGMENT.fullmatch(part):
            raise ValueError(f"path {path!r} has an invalid segment {part!r} (letters, digits, _ and - only)")
    return parts


def parse_patch(raw: object) -> list[PatchOp]:
    """Read operations from wire/CLI data (a list of ``{"op", "path", "value"}`` maps)."""
    if not isinstance(raw, list):
        raise PatchError(f"patch: expected a list of operations, got {type(raw).__name__}")
    ops: list[PatchOp] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise PatchError(f"patch[{i}]: expected a map with op and path, got {type(item).__name__}")
        unknown = sorted(set(item) - {"op", "path", "value"})
        if unknown:
            raise PatchError(f"patch[{i}]: unknown key {unknown[0]!r}")
        op, path = item.get("op"), item.get("path")
        if op not in OPS:
            raise PatchError(f"patch[{i}].op: expected one of set, remove, got {op!r}")
        if not isinstance(path, str):
            raise PatchError(f"patch[{i}].path: expected a dotted path string, got {path!r}")
        if op == "set" and "value" not in item:
            raise PatchError(f"patch[{i}].value: a set needs a value")
        ops.append(PatchOp(op=op, path=path, value=item.get("value")))
    return ops


def patch_to_wire(ops: Iterable[PatchOp]) -> list[dict[str, Any]]:
    """The inverse of :func:`parse_patch`."""
    return [{"op": o.op, "path": o.path, **({"value": o.value} if o.op == "set" else {})} for o in ops]


def apply_patch(doc: Mapping[str, Any], ops: Sequence[PatchOp]) -> dict[str, Any]:
    """A new document with every operation applied in order, or :class:`PatchError` and nothing applied."""
    out: dict[str, Any] = copy.deepcopy(dict(doc))
    for i, op in enumerate(ops):
        where = f"patch[{i}] ({op.op} {op.path})"
        try:
            parts = split_path(op.path)
        except ValueError as exc:
            raise PatchError(f"{where}: {exc}") from None
        parent: Any = out
        for depth, part in enumerate(parts[:-1]):
            child = parent.get(part)
            if child is None and op.op == "set":
                child = parent[part] = {}
            if not isinstance(child, dict):
                at = ".".join(parts[: depth + 1])
                found = "nothing" if child is None else f"a {type(child).__name__}"
                raise PatchError(f"{where}: {at} is {found}, not a table")
            parent = child
        leaf = parts[-1]
        if op.op == "set":
            parent[leaf] = copy.deepcopy(op.value)
        elif leaf in parent:
            del parent[leaf]
        else:
            raise PatchError(f"{where}: no such key")
    return out


def diff(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[PatchOp]:
    """The leaf operations that turn ``old`` into ``new`` (tables recursed into, keys sorted)."""
    ops: list[PatchOp] = []
    for key in sorted(set(old) | set(new)):
        path = f"{prefix}{key}"
        if key not in new:
            ops.append(PatchOp(op="remove", path=path))
        elif key in old and isinstance(old[key], dict) and isinstance(new[key], dict):
            ops.extend(diff(old[key], new[key], f"{path}."))
        elif key not in old or not same_value(old[key], new[key]):
            ops.append(PatchOp(op="set", path=path, value=copy.deepcopy(new[key])))
    return ops
