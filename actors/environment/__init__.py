"""Environment correlation: heat, humidity and vibration exposure against failures, with effect sizes.

Pure numpy cores. Every error of this package is an ``EnvironmentDataError``; impossible samples
and unknown failure devices are quarantined and counted.
"""

from pymonitor.actors.environment.correlate import DEFAULT_EXPOSURES, EnvironmentReport, Exposure, SiteEffect, analyse
from pymonitor.actors.environment.errors import EnvironmentDataError
from pymonitor.actors.environment.exposure import EnvironmentData, Features, features
from pymonitor.actors.environment.rates import PoissonFit, RateRatio, clopper_pearson, poisson_regression, rate_ratio

__all__ = [
    "DEFAULT_EXPOSURES",
    "EnvironmentData",
    "EnvironmentDataError",
    "EnvironmentReport",
    "Exposure",
    "Features",
    "PoissonFit",
    "RateRatio",
    "SiteEffect",
    "analyse",
    "clopper_pearson",
    "features",
    "poisson_regression",
    "rate_ratio",
]
