"""The one exception of the fleet-roles package."""

from __future__ import annotations


class FleetQueryError(ValueError):
    """A fleet query that cannot be answered (no such store, a bad option, an unreadable file); says which and why."""
