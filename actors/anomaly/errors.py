"""The one exception of the anomaly package."""

from __future__ import annotations


class AnomalyError(ValueError):
    """Input the anomaly cores cannot take: a malformed CSV row, a window out of range, a bad profile; says where."""
