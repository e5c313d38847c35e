"""The one exception of the fleet-roles package."""

from __future__ import annotations

import math


class FleetQueryError(ValueError):
    """A fleet query that cannot be answered (no such store, a bad option, an unreadable file); says which and why."""


def check_positive(options: object, *names: str) -> None:
    """A ``FleetQueryError`` naming the first of ``names`` that is not a positive finite number."""
    for name in names:
        value = getattr(options, name)
        if not (math.isfinite(value) and value > 0):
            raise FleetQueryError(f"{name}: expected a positive number, got {value}")
