"""The one exception of the calibration package."""

from __future__ import annotations


class CalibrationError(ValueError):
    """A calibration input the cores cannot take (ragged arrays, a bad config, an unknown metric); says where."""
