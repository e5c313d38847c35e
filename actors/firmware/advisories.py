"""Security advisories: which firmware versions of which model are vulnerable.

An advisory file is TOML or JSON holding a list ``advisory`` of tables::

    [[advisory]]
    id = "PMSA-2026-004"            # required, unique in the file
    model = "TH-200"                # required: the device model it concerns
    affected = ">=1.2.0,<1.4.3"     # required: a range, or a list of ranges (vulnerable if in any)
    scheme = "semver"               # optional: version scheme of the bounds (default: detect per bound)
    severity = "high"               # optional: low | medium | high | critical (default "medium")
    fixed = "1.4.3"                 # optional: first fixed version, for the recommendation text

JSON is the same shape: ``{"advisory": [{"id": ..., "model": ..., "affected": ...}, ...]}``.
A range is comma-separated constraints, all of which must hold: ``>=``, ``>``, ``<=``, ``<``,
``==``, ``!=`` followed by a version. A malformed file raises ``AdvisoryError`` naming the
entry (``advisory[2]``, with its id when known) and the field.
"""

from __future__ import annotations

import json
import operator
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymonitor.actors.firmware.errors import AdvisoryError, VersionError
from pymonitor.actors.firmware.version import DEFAULT_REGISTRY, SchemeRegistry, Version

SEVERITIES = ("low", "medium", "high", "critical")
_CONSTRAINT = re.compile(r"\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*")
_OPS: dict[str, Callable[[Version, Version], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Constraint:
    op: str
    bound: Version

    def admits(self, version: Version) -> bool:
        # A version of another scheme is never inside a range: comparing across schemes means nothing.
        return version.scheme == self.bound.scheme and _OPS[self.op](version, self.bound)


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionRange:
    """All constraints must hold (``>=1.2.0,<1.4.3``)."""

    text: str
    constraints: tuple[Constraint, ...]

    def __contains__(self, version: Version) -> bool:
        return all(c.admits(version) for c in self.constraints)


@dataclass(frozen=True, slots=True, kw_only=True)
class Advisory:
    id: str
    model: str
    affected: tuple[VersionRange, ...]
    severity: str = "medium"
    fixed: Version | None = None

    def affects(self, model: str, version: Version) -> bool:
        return model == self.model and any(version in r for r in self.affected)


def parse_range(text: str, *, registry: SchemeRegistry = DEFAULT_REGISTRY, scheme: str | None = None) -> VersionRange:
    """A range like ``>=1.2.0,<1.4.3``; ``VersionError`` names the bad constraint."""
    constraints = []
    for part in text.split(","):
        found = _CONSTRAINT.fullmatch(part)
        if found is None:
            ops = " ".join(_OPS)
            raise VersionError(f"range {text!r}: constraint {part.strip()!r} is not <op><version>, op one of {ops}")
        constraints.append(Constraint(op=found[1], bound=registry.parse(found[2], scheme)))
    return VersionRange(text=text, constraints=tuple(constraints))


def _field(entry: Mapping[str, Any], name: str, where: str, *, required: bool = True) -> Any:
    value = entry.get(name)
    if value is None and required:
        raise AdvisoryError(f"{where}.{name}: missing")
    if value is not None and name != "affected" and not isinstance(value, str):
        raise AdvisoryError(f"{where}.{name}: expected a string, got {type(value).__name__} {value!r}")
    return value


def _advisory(entry: object, index: int, registry: SchemeRegistry) -> Advisory:
    where = f"advisory[{index}]"
    if not isinstance(entry, Mapping):
        raise AdvisoryError(f"{where}: expected a table, got {type(entry).__name__}")
    ident = _field(entry, "id", where)
    where = f"{where} ({ident})"
    model = _field(entry, "model", where)
    scheme = _field(entry, "scheme", where, required=False)
    severity = _field(entry, "severity", where, required=False) or "medium"
    if severity not in SEVERITIES:
        raise AdvisoryError(f"{where}.severity: expected one of {list(SEVERITIES)}, got {severity!r}")
    affected = _field(entry, "affected", where)
    ranges = [affected] if isinstance(affected, str) else affected
    if not isinstance(ranges, list) or not ranges or not all(isinstance(r, str) for r in ranges):
        raise AdvisoryError(f"{where}.affected: expected a range string or a non-empty list of them, got {affected!r}")
    try:
        parsed = tuple(parse_range(r, registry=registry, scheme=scheme) for r in ranges)
        fixed_text = _field(entry, "fixed", where, required=False)
        fixed = None if fixed_text is None else registry.parse(fixed_text, scheme)
    except VersionError as exc:
        raise AdvisoryError(f"{where}.affected/fixed: {exc}") from None
    return Advisory(id=ident, model=model, affected=parsed, severity=severity, fixed=fixed)


def parse_advisories(
    text: str, *, fmt: str = "toml", registry: SchemeRegistry = DEFAULT_REGISTRY, source: str = "advisories"
) -> tuple[Advisory, ...]:
    """Advisories of a TOML or JSON document; ``AdvisoryError`` names the entry and field of the first problem."""
    if fmt not in ("toml", "json"):
        raise AdvisoryError(f"{source}: format must be 'toml' or 'json', got {fmt!r}")
    try:
        document: object = tomllib.loads(text) if fmt == "toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise AdvisoryError(f"{source}: not valid {fmt}: {exc}") from None
    entries = document.get("advisory") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise AdvisoryError(f"{source}: expected a list 'advisory' at the top level")
    advisories = [_advisory(entry, i, registry) for i, entry in enumerate(entries)]
    seen: set[str] = set()
    for i, advisory in enumerate(advisories):
        if advisory.id in seen:
            raise AdvisoryError(f"{source}: advisory[{i}].id: duplicate id {advisory.id!r}")
        seen.add(advisory.id)
    return tuple(advisories)


def load_advisories(path: Path, *, registry: SchemeRegistry = DEFAULT_REGISTRY) -> tuple[Advisory, ...]:
    """Advisories of a ``.toml`` or ``.json`` file (format from the suffix)."""
    fmt = "json" if path.suffix.lower() == ".json" else "toml"
    return parse_advisories(path.read_text(encoding="utf-8"), fmt=fmt, registry=registry, source=path.name)


def vulnerable(advisories: Sequence[Advisory], model: str, version: Version) -> tuple[Advisory, ...]:
    """The advisories that affect this model at this version."""
    return tuple(a for a in advisories if a.affects(model, version))
