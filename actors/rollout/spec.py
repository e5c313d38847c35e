"""What a rollout is: which version goes to which devices, in which waves, behind which gates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from pymonitor.broker.topics import NAME_PATTERN

from .errors import RolloutSpecError
from .gates import GatePolicy
from .plan import LabelMatcher, WavePlan, parse_selector

KINDS = ("config", "firmware")


@dataclass(frozen=True, slots=True, kw_only=True)
class RolloutSpec:
    """A rollout of ``target_version`` (a config or firmware version) to the devices ``selector`` matches.

    ``version_label`` is the inventory label holding each device's current version: the version a
    rollback returns it to. ``concurrency`` bounds the commands in flight: one count for every
    wave, or one per wave (the last one holding for any further wave; rollbacks use the largest).
    ``timeout_ms`` is how long a device may take to answer one command.
    """

    rollout_id: str
    target_version: str
    kind: str = "firmware"
    selector: tuple[LabelMatcher, ...] = ()
    waves: WavePlan = field(default_factory=WavePlan)
    gates: GatePolicy = field(default_factory=GatePolicy)
    concurrency: int | tuple[int, ...] = 100
    timeout_ms: int = 60_000
    version_label: str = "version"

    def __post_init__(self) -> None:
        if not isinstance(self.rollout_id, str) or not NAME_PATTERN.fullmatch(self.rollout_id):
            raise RolloutSpecError(
                f"rollout_id: expected 1-64 letters, digits or _ . : - (no spaces), got {self.rollout_id!r}"
            )
        if not isinstance(self.target_version, str) or not self.target_version.strip():
            raise RolloutSpecError(f"target_version: expected a non-empty version, got {self.target_version!r}")
        if self.kind not in KINDS:
            raise RolloutSpecError(f"kind: expected one of {', '.join(KINDS)}, got {self.kind!r}")
        counts = self.concurrency if isinstance(self.concurrency, tuple) else (self.concurrency,)
        for i, count in enumerate(counts):
            if not isinstance(count, int) or count < 1:
                where = f"concurrency[{i}]" if isinstance(self.concurrency, tuple) else "concurrency"
                raise RolloutSpecError(f"{where}: expected a positive count, got {count!r}")
        if not counts:
            raise RolloutSpecError("concurrency: expected a count or a non-empty list of counts per wave")
        if not isinstance(self.timeout_ms, int) or self.timeout_ms < 1:
            raise RolloutSpecError(f"timeout_ms: expected a positive duration, got {self.timeout_ms!r}")

    def concurrency_of(self, wave: int) -> int:
        """Commands in flight allowed during ``wave``; ``-1``: during the rollback (the largest count)."""
        if isinstance(self.concurrency, int):
            return self.concurrency
        return max(self.concurrency) if wave < 0 else self.concurrency[min(wave, len(self.concurrency) - 1)]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form; :func:`spec_from_dict` reads it back."""
        return {
            "rollout_id": self.rollout_id,
            "target_version": self.target_version,
            "kind": self.kind,
            "selector": [str(m) for m in self.selector],
            "waves": {**asdict(self.waves), "percentages": list(self.waves.percentages)},
            "gates": asdict(self.gates),
            "concurrency": list(self.concurrency) if isinstance(self.concurrency, tuple) else self.concurrency,
            "timeout_ms": self.timeout_ms,
            "version_label": self.version_label,
        }


def _section(data: Mapping[str, Any], name: str, known: set[str]) -> dict[str, Any]:
    section = data.get(name, {})
    if not isinstance(section, Mapping):
        raise RolloutSpecError(f"{name}: expected a table of settings, got {type(section).__name__}")
    unknown = sorted(set(section) - known)
    if unknown:
        raise RolloutSpecError(f"{name}.{unknown[0]}: unknown setting (known: {', '.join(sorted(known))})")
    return dict(section)


def spec_from_dict(data: Mapping[str, Any]) -> RolloutSpec:
    """Validate a spec read from JSON or TOML; every error names the field."""
    if not isinstance(data, Mapping):
        raise RolloutSpecError(f"spec: expected a table, got {type(data).__name__}")
    top = {"rollout_id", "target_version", "kind", "selector", "waves", "gates", "concurrency", "timeout_ms"}
    top.add("version_label")
    unknown = sorted(set(data) - top)
    if unknown:
        raise RolloutSpecError(f"{unknown[0]}: unknown setting (known: {', '.join(sorted(top))})")
    for name in ("rollout_id", "target_version"):
        if name not in data:
            raise RolloutSpecError(f"{name}: required")
    waves = _section(data, "waves", {"canary", "percentages", "growth_factor"})
    if "percentages" in waves:
        if not isinstance(waves["percentages"], list | tuple):
            raise RolloutSpecError(f"waves.percentages: expected a list, got {waves['percentages']!r}")
        waves["percentages"] = tuple(waves["percentages"])
    gates = _section(data, "gates", set(GatePolicy.__dataclass_fields__))
    rest = {k: data[k] for k in ("kind", "concurrency", "timeout_ms", "version_label") if k in data}
    if isinstance(rest.get("concurrency"), list):
        rest["concurrency"] = tuple(rest["concurrency"])
    return RolloutSpec(
        rollout_id=data["rollout_id"],
        target_version=data["target_version"],
        selector=parse_selector(data.get("selector", ())),
        waves=WavePlan(**waves),
        gates=GatePolicy(**gates),
        **rest,
    )
