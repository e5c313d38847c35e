"""Which devices a rollout targets (label matchers over an inventory) and in which waves.

Waves are cumulative end positions in the ordered target list: a canary, then either a list of
cumulative percentages (``[1, 5, 25, 100]``) or an exponential growth (each wave ``factor`` times
the previous one). Targets are ordered by device name so a plan is the same on every run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .errors import NoTargetError, RolloutSpecError

Inventory = Mapping[str, Mapping[str, str]]
"""device name -> its labels (``{"region": "eu", "hw": "b2", "version": "1.4.0"}``)."""

_MATCHER = re.compile(r"^\s*(!?)([A-Za-z0-9_.:\-/]+)\s*(?:(!=|=)\s*(.*?))?\s*$")


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelMatcher:
    """One condition on a device's labels.

    ``op`` is ``=`` (value in ``values``), ``!=`` (label absent or value not in ``values``),
    ``exists`` or ``absent``.
    """

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.op == "exists":
            return value is not None
        if self.op == "absent":
            return value is None
        if self.op == "=":
            return value in self.values
        return value not in self.values  # "!="

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "absent":
            return f"!{self.key}"
        return f"{self.key}{self.op}{'|'.join(self.values)}"


def parse_matcher(text: str, where: str = "selector") -> LabelMatcher:
    """``region=eu``, ``hw=b1|b2`` (any of), ``tier!=gold``, ``canary`` (label set), ``!retired`` (unset)."""
    m = _MATCHER.match(text) if isinstance(text, str) else None
    if m is None:
        raise RolloutSpecError(f"{where}: expected 'key=value', 'key!=v1|v2', 'key' or '!key', got {text!r}")
    negate, key, op, raw = m.groups()
    if op is None:
        return LabelMatcher(key=key, op="absent" if negate else "exists")
    values = tuple(v.strip() for v in raw.split("|"))
    if negate or not all(values):
        raise RolloutSpecError(f"{where}: expected 'key=value' with non-empty values, got {text!r}")
    return LabelMatcher(key=key, op=op, values=values)


def parse_selector(items: Sequence[str], where: str = "selector") -> tuple[LabelMatcher, ...]:
    """Every matcher must hold (AND); an empty selector targets the whole inventory."""
    if isinstance(items, str):
        raise RolloutSpecError(f"{where}: expected a list of matchers, got the string {items!r}")
    return tuple(parse_matcher(item, f"{where}[{i}]") for i, item in enumerate(items))


def select_targets(inventory: Inventory, selector: Sequence[LabelMatcher]) -> list[str]:
    """The devices every matcher accepts, sorted by name; raises :class:`NoTargetError` if there are none."""
    targets = sorted(d for d, labels in inventory.items() if all(m.matches(labels) for m in selector))
    if not targets:
        shown = ", ".join(str(m) for m in selector) or "(everything)"
        raise NoTargetError(f"selector [{shown}] matches none of the {len(inventory)} devices of the inventory")
    return targets


@dataclass(frozen=True, slots=True, kw_only=True)
class WavePlan:
    """How targets are split: ``canary`` devices first, then percentages or exponential growth."""

    canary: int = 1
    percentages: tuple[float, ...] = ()
    growth_factor: float = 2.0

    def __post_init__(self) -> None:
        if not isinstance(self.canary, int) or self.canary < 1:
            raise RolloutSpecError(f"waves.canary: expected a positive device count, got {self.canary!r}")
        previous = 0.0
        for i, pct in enumerate(self.percentages):
            if not isinstance(pct, int | float) or not previous < pct <= 100:
                raise RolloutSpecError(
                    f"waves.percentages[{i}]: expected a percentage above {previous:g} and at most 100, got {pct!r}"
                )
            previous = float(pct)
        if self.percentages and previous != 100:
            raise RolloutSpecError(f"waves.percentages: the last wave must reach 100, got {previous:g}")
        if not self.percentages and not (isinstance(self.growth_factor, int | float) and self.growth_factor > 1):
            raise RolloutSpecError(f"waves.growth_factor: expected a factor above 1, got {self.growth_factor!r}")

    def ends(self, targets: int) -> list[int]:
        """Cumulative end position of each wave in the target list; waves that would be empty are dropped."""
        if targets < 1:
            raise RolloutSpecError(f"waves: expected at least one target, got {targets}")
        ends = [min(self.canary, targets)]
        if self.percentages:
            wanted = [math.ceil(targets * pct / 100) for pct in self.percentages]
        else:
            wanted, end, size = [], ends[0], float(self.canary)
            while end < targets:
                size *= self.growth_factor
                end += math.ceil(size)
                wanted.append(end)
        for end in wanted:
            if end > ends[-1]:
                ends.append(min(end, targets))
        return ends
