"""Escalation chains as configured: levels, repeats, ``then`` links; parsed from ``[escalation]``.

The runtime that walks them is :mod:`.escalation`. ``then`` links may not loop back
(a -> b -> a): that would page forever, so such a config is refused naming the cycle.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from .fields import count, duration_ms, fail, items, table, text, texts

MAX_LEVELS = 20
MAX_REPEAT = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class EscalationLevel:
    receivers: tuple[str, ...]
    ack_timeout_ms: int
    fallback: tuple[str, ...] = ()  # told at once when delivery to this level fails


@dataclass(frozen=True, slots=True, kw_only=True)
class EscalationChain:
    name: str
    levels: tuple[EscalationLevel, ...]
    repeat: int = 0  # how many more times to run the levels before ``then`` (or stopping)
    then: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EscalationPolicy:
    """All chains, and which one starts in and out of business hours."""

    chains: Mapping[str, EscalationChain]
    in_hours: str
    off_hours: str

    @classmethod
    def from_config(cls, raw: Mapping[str, object], *, receivers: Collection[str]) -> EscalationPolicy:
        """Parse ``[escalation]``: ``in_hours``, optional ``off_hours`` and ``[escalation.chains.<name>]``."""
        spec = table(raw.get("escalation"), "escalation", {"in_hours", "off_hours", "chains"})
        chains_raw = table(spec.get("chains", {}), "escalation.chains")
        if not chains_raw:
            raise fail("escalation.chains", "at least one chain")
        known = frozenset(receivers)
        chains = {name: _chain(name, value, known) for name, value in chains_raw.items()}
        for name, chain in chains.items():
            if chain.then is not None and chain.then not in chains:
                raise fail(f"escalation.chains.{name}.then", f"unknown chain {chain.then!r}")
        _refuse_cycles(chains)
        if "in_hours" not in spec:
            raise fail("escalation.in_hours", "missing (the chain that starts in business hours)")
        in_hours = chain_named(spec["in_hours"], "escalation.in_hours", chains)
        off_hours = chain_named(spec.get("off_hours", in_hours), "escalation.off_hours", chains)
        return cls(chains=chains, in_hours=in_hours, off_hours=off_hours)


def chain_named(raw: object, where: str, chains: Mapping[str, EscalationChain]) -> str:
    name = text(raw, where)
    if name not in chains:
        raise fail(where, f"unknown chain {name!r} (known: {', '.join(sorted(chains))})")
    return name


def _receivers(raw: object, where: str, known: frozenset[str]) -> tuple[str, ...]:
    names = texts(raw, where)
    for i, name in enumerate(names):
        if name not in known:
            raise fail(f"{where}[{i}]", f"unknown receiver {name!r}")
    return names


def _chain(name: str, raw: object, known: frozenset[str]) -> EscalationChain:
    where = f"escalation.chains.{name}"
    spec = table(raw, where, {"levels", "repeat", "then"})
    levels_raw = items(spec.get("levels", []), f"{where}.levels")
    if not 1 <= len(levels_raw) <= MAX_LEVELS:
        raise fail(f"{where}.levels", f"expected 1 to {MAX_LEVELS} levels, got {len(levels_raw)}")
    levels = []
    for i, level_raw in enumerate(levels_raw):
        at = f"{where}.levels[{i}]"
        level = table(level_raw, at, {"receivers", "ack_timeout", "fallback"})
        for key in ("receivers", "ack_timeout"):
            if key not in level:
                raise fail(f"{at}.{key}", "missing")
        receivers = _receivers(level["receivers"], f"{at}.receivers", known)
        if not receivers:
            raise fail(f"{at}.receivers", "at least one receiver")
        levels.append(
            EscalationLevel(
                receivers=receivers,
                ack_timeout_ms=duration_ms(level["ack_timeout"], f"{at}.ack_timeout"),
                fallback=_receivers(level.get("fallback", []), f"{at}.fallback", known),
            )
        )
    return EscalationChain(
        name=name,
        levels=tuple(levels),
        repeat=count(spec.get("repeat", 0), f"{where}.repeat", maximum=MAX_REPEAT),
        then=text(spec["then"], f"{where}.then") if "then" in spec else None,
    )


def _refuse_cycles(chains: Mapping[str, EscalationChain]) -> None:
    """Each chain has at most one ``then``, so following it from each chain finds any loop."""
    for start in chains:
        path = [start]
        following = chains[start].then
        while following is not None:
            if following in path:
                cycle = " -> ".join([*path[path.index(following) :], following])
                raise fail(f"escalation.chains.{path[-1]}.then", f"chains loop back: {cycle}")
            path.append(following)
            following = chains[following].then
