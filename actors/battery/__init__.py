"""Battery role: discharge rates, depletion forecasts with an uncertainty band, alerts and replacement trips.

Pure cores (no pykka, no clock reads; ``now_ms`` is passed in): :func:`forecast_fleet` turns a
:class:`FleetHistory` of voltages into per-device forecasts, quarantining garbage readings and
saying "insufficient data" rather than guessing; :mod:`.fleet` turns forecasts into group rates,
:class:`DepletionAlert` events and a :class:`SiteTrip` plan.

Errors: every bad input (unknown chemistry, ragged arrays, a bad threshold) raises the one
:class:`BatteryError`, a ``ValueError``, naming the field and the reason.
"""

from .chemistry import CHEMISTRIES, CHEMISTRY_NAMES, Chemistry, chemistry
from .errors import BatteryError
from .fleet import (
    AlertConfig,
    BatteryDataAlert,
    DepletionAlert,
    GroupRate,
    Replacement,
    SiteTrip,
    depletion_alerts,
    rates_by_group,
    replacement_plan,
)
from .forecast import FleetForecast, Forecast, ForecastConfig, ForecastStatus, forecast, forecast_fleet
from .history import FleetHistory

__all__ = [
    "CHEMISTRIES",
    "CHEMISTRY_NAMES",
    "AlertConfig",
    "BatteryDataAlert",
    "BatteryError",
    "Chemistry",
    "DepletionAlert",
    "FleetForecast",
    "FleetHistory",
    "Forecast",
    "ForecastConfig",
    "ForecastStatus",
    "GroupRate",
    "Replacement",
    "SiteTrip",
    "chemistry",
    "depletion_alerts",
    "forecast",
    "forecast_fleet",
    "rates_by_group",
    "replacement_plan",
]
