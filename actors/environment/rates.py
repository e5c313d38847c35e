"""Failure-rate ratios with 95% confidence intervals: crude incidence rate ratios and a Poisson regression.

Crude ratio (one exposure, one site): failures per device-day of exposed over unexposed devices.
Its interval is exact when counts are small (conditional on the total, the exposed count is
binomial; Clopper-Pearson bounds found by bisection on the binomial tail) and the usual log-scale
Wald interval otherwise. The adjusted ratios come from a Poisson regression (log link, offset
log device-days, all exposures plus a baseline per site, fitted by IRLS in numpy) so a hot site
with a higher baseline failure rate does not make heat look worse than it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pymonitor.actors.environment.errors import EnvironmentDataError
from pymonitor.actors.environment.exposure import FloatArray

Z95 = 1.959963984540054
EXACT_BELOW_EVENTS = 20  # under this many events in a group, Wald intervals are too narrow
IRLS_MAX_ITER = 50
IRLS_TOL = 1e-10


@dataclass(frozen=True, slots=True, kw_only=True)
class RateRatio:
    ratio: float  # NaN when undefined (no unexposed failures, or an empty group)
    low: float
    high: float
    exposed_failures: int
    exposed_days: float
    unexposed_failures: int
    unexposed_days: float
    method: str  # "wald" | "exact" | "poisson-regression" | "undefined"

    @property
    def significant(self) -> bool:
        return self.low > 1.0 or self.high < 1.0


def _log_binom_pmf(k: int, n: int, p: float) -> float:
    """log P(X = k), X ~ Binomial(n, p), for 0 < p < 1 (bisection never asks for the end points)."""
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p) + (n - k) * math.log1p(-p)


def _binom_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    return min(1.0, sum(math.exp(_log_binom_pmf(i, n, p)) for i in range(k, n + 1)))


def _bisect(increasing: Callable[[float], float], target: float) -> float:
    """The p in [0, 1] where ``increasing(p)`` crosses ``target``."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if increasing(mid) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def clopper_pearson(k: int, n: int) -> tuple[float, float]:
    """Exact 95% interval for a binomial proportion with k successes of n."""
    alpha = 0.05
    low = 0.0 if k == 0 else _bisect(lambda p: _binom_sf(k, n, p), alpha / 2)
    high = 1.0 if k == n else _bisect(lambda p: _binom_sf(k + 1, n, p), 1 - alpha / 2)
    return low, high


def rate_ratio(a: int, pt_a: float, b: int, pt_b: float) -> RateRatio:
    """Incidence rate ratio of a events in pt_a device-days against b events in pt_b, with a 95% interval."""
    if pt_a <= 0 or pt_b <= 0 or a + b == 0:
        ratio, low, high, method = math.nan, math.nan, math.nan, "undefined"
    elif min(a, b) < EXACT_BELOW_EVENTS:
        # Conditional on n = a + b, a ~ Binomial(n, p) with p = IRR pt_a / (IRR pt_a + pt_b); map p bounds to IRR.
        p_low, p_high = clopper_pearson(a, a + b)
        ratio = (a / pt_a) / (b / pt_b) if b else math.inf
        low = p_low / (1 - p_low) * pt_b / pt_a
        high = math.inf if p_high >= 1.0 else p_high / (1 - p_high) * pt_b / pt_a
        method = "exact"
    else:
        ratio = (a / pt_a) / (b / pt_b)
        se = math.sqrt(1 / a + 1 / b)
        low, high, method = ratio * math.exp(-Z95 * se), ratio * math.exp(Z95 * se), "wald"
    return RateRatio(
        ratio=ratio,
        low=low,
        high=high,
        exposed_failures=a,
        exposed_days=pt_a,
        unexposed_failures=b,
        unexposed_days=pt_b,
        method=method,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PoissonFit:
    names: tuple[str, ...]
    coef: FloatArray
    se: FloatArray
    iterations: int

    def rate_ratio(self, name: str) -> tuple[float, float, float]:
        """exp(coefficient) and its 95% interval."""
        i = self.names.index(name)
        return (
            math.exp(self.coef[i]),
            math.exp(self.coef[i] - Z95 * self.se[i]),
            math.exp(self.coef[i] + Z95 * self.se[i]),
        )


def poisson_regression(x: FloatArray, y: FloatArray, offset: FloatArray, names: tuple[str, ...]) -> PoissonFit:
    """Poisson GLM (log link) by iteratively reweighted least squares; standard errors from the Fisher information."""
    if x.ndim != 2 or x.shape[0] != y.shape[0] or offset.shape != y.shape or x.shape[1] != len(names):
        shapes = f"x {x.shape}, y {y.shape}, offset {offset.shape}, {len(names)} names"
        raise EnvironmentDataError(f"poisson_regression: shapes disagree ({shapes})")
    beta = np.zeros(x.shape[1])
    beta[0] = math.log(max(float(y.sum()), 0.5) / float(np.exp(offset).sum()))  # intercept: the overall rate
    iterations = 0
    for iterations in range(1, IRLS_MAX_ITER + 1):  # noqa: B007 - the count is reported
        mu = np.exp(x @ beta + offset)
        info = x.T @ (x * mu[:, None])
        step = np.linalg.lstsq(info, x.T @ (y - mu), rcond=None)[0]
        beta = beta + step
        if float(np.max(np.abs(step))) < IRLS_TOL:
            break
    mu = np.exp(x @ beta + offset)
    cov = np.linalg.pinv(x.T @ (x * mu[:, None]))
    return PoissonFit(names=names, coef=beta, se=np.sqrt(np.maximum(np.diag(cov), 0.0)), iterations=iterations)
