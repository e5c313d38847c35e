"""The one exception of the uplink package."""

from __future__ import annotations


class UplinkError(ValueError):
    """A value the uplink core cannot take: a negative size, a bad attempt number, a malformed saved state."""
