"""The one exception of the battery package."""

from __future__ import annotations


class BatteryError(ValueError):
    """A battery input the cores cannot take (unknown chemistry, bad config, ragged arrays); names field and reason."""
