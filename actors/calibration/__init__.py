"""Calibration role: drift found by comparing co-located sensors, calibration history, recalibration schedule.

Pure cores (no pykka, no clock reads): :func:`detect_drift` judges every sensor against the median of
its location's other sensors and emits :class:`DriftDetected` events; :class:`CalibrationLog` keeps
drift and :class:`Recalibrated` events per device; :func:`recalibration_schedule` turns the log into
due dates.

Errors: every bad input (ragged arrays, unknown metric, a bad config) raises the one
:class:`CalibrationError`, a ``ValueError``, naming the field and the reason.
"""

from .drift import DRIFT_STATUSES, DriftConfig, DriftDetected, DriftResult, DriftStatus, detect_drift
from .errors import CalibrationError
from .schedule import (
    CalibrationEvent,
    CalibrationLog,
    DueCalibration,
    Recalibrated,
    ScheduleConfig,
    recalibration_schedule,
)

__all__ = [
    "DRIFT_STATUSES",
    "CalibrationError",
    "CalibrationEvent",
    "CalibrationLog",
    "DriftConfig",
    "DriftDetected",
    "DriftResult",
    "DriftStatus",
    "DueCalibration",
    "Recalibrated",
    "ScheduleConfig",
    "detect_drift",
    "recalibration_schedule",
]
