"""Typed readers for TOML-shaped config dicts: each error names the path of the offending key.

Shared by routing, silences, schedules and escalation so that every alerting config error reads
the same way: ``AlertConfigError: route.routes[1].group_wait: expected a duration like "30s", got 'soon'``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from .errors import AlertConfigError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def fail(where: str, reason: str) -> AlertConfigError:
    """The one error shape of the package: ``path: reason``."""
    return AlertConfigError(f"{where}: {reason}")


def table(raw: object, where: str, allowed: Collection[str] | None = None) -> Mapping[str, object]:
    """A TOML table; with ``allowed``, unknown keys are refused (a typo must not silently do nothing)."""
    if not isinstance(raw, Mapping):
        raise fail(where, f"expected a table, got {type(raw).__name__}")
    for key in raw:
        if not isinstance(key, str):
            raise fail(where, f"expected string keys, got {key!r}")
        if allowed is not None and key not in allowed:
            raise fail(f"{where}.{key}", f"unknown key (expected one of {', '.join(sorted(allowed))})")
    return raw


def items(raw: object, where: str) -> list[object]:
    if not isinstance(raw, list | tuple):
        raise fail(where, f"expected a list, got {type(raw).__name__}")
    return list(raw)


def text(raw: object, where: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise fail(where, f"expected a non-empty string, got {raw!r}")
    return raw


def texts(raw: object, where: str) -> tuple[str, ...]:
    return tuple(text(item, f"{where}[{i}]") for i, item in enumerate(items(raw, where)))


def flag(raw: object, where: str) -> bool:
    if not isinstance(raw, bool):
        raise fail(where, f"expected true or false, got {raw!r}")
    return raw


def count(raw: object, where: str, *, maximum: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= maximum:
        raise fail(where, f"expected an integer from 0 to {maximum}, got {raw!r}")
    return raw


def duration_ms(raw: object, where: str) -> int:
    """A positive duration: seconds as a number, or text like ``"30s"``, ``"5m"``, ``"1h30m"``."""
    ms: float | None = None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        ms = raw * 1000.0
    elif isinstance(raw, str) and raw and _DURATION.sub("", raw) == "":
        ms = sum(float(n) * _UNIT_MS[unit] for n, unit in _DURATION.findall(raw))
    if ms is None or not ms > 0:
        raise fail(where, f'expected a positive duration like "30s" or "5m", got {raw!r}')
    return round(ms)
