"""Fleet layout: which devices sit behind which gateway, and which gateway is at which site.

Pure and deterministic for a seed, so a scenario can be rebuilt exactly from its parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

GATEWAYS_PER_SITE = 4  # a site (a field, a building) usually has a few gateways
_GATEWAY_DIGITS_MIN = 4
_DEVICE_DIGITS_MIN = 6
_SITE_DIGITS_MIN = 2


@dataclass(frozen=True, slots=True)
class FleetLayout:
    """A fleet's shape: gateway i hosts ``devices_by_gateway[i]`` and stands at ``sites[i]``."""

    fleet: str
    gateways: list[str]  # "gw-0007": zero-padded so names sort like their numbers
    devices_by_gateway: list[list[str]]  # "dev-000123": globally unique, zero-padded
    sites: list[str]  # site of each gateway, "site-03"; several gateways share a site

    @property
    def device_count(self) -> int:
        return sum(len(devices) for devices in self.devices_by_gateway)


def _width(count: int, minimum: int) -> int:
    return max(minimum, len(str(max(count - 1, 0))))


def _check_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"plan_fleet: {name} must be an int, got {type(value).__name__} {value!r}")
    return value


def plan_fleet(*, fleet: str, devices: int, gateways: int, seed: int) -> FleetLayout:
    """Spread ``devices`` over ``gateways`` as evenly as possible (sizes differ by at most 1).

    The seed decides which gateways get the one extra device and how gateways group into
    sites; device names are handed out in gateway order, so each gateway's list is sorted.
    """
    devices = _check_int("devices", devices)
    gateways = _check_int("gateways", gateways)
    seed = _check_int("seed", seed)
    if not fleet:
        raise ValueError("plan_fleet: fleet must be a non-empty name")
    if devices < 1:
        raise ValueError(f"plan_fleet: devices must be >= 1, got {devices}")
    if gateways < 1:
        raise ValueError(f"plan_fleet: gateways must be >= 1, got {gateways}")
    if gateways > devices:
        raise ValueError(
            f"plan_fleet: gateways must be <= devices ({devices}), got {gateways}: a gateway needs a device"
        )
    if seed < 0:
        raise ValueError(f"plan_fleet: seed must be >= 0, got {seed}")

    rng = np.random.default_rng(seed)
    base, extra = divmod(devices, gateways)
    sizes = np.full(gateways, base, dtype=np.int64)
    sizes[rng.permutation(gateways)[:extra]] += 1
    bounds = np.concatenate(([0], np.cumsum(sizes))).tolist()

    dev_w = _width(devices, _DEVICE_DIGITS_MIN)
    names = [f"dev-{i:0{dev_w}d}" for i in range(devices)]
    devices_by_gateway = [names[bounds[g] : bounds[g + 1]] for g in range(gateways)]

    gw_w = _width(gateways, _GATEWAY_DIGITS_MIN)
    gateway_names = [f"gw-{g:0{gw_w}d}" for g in range(gateways)]

    # Every site gets at least one gateway; which ones is the seed's choice.
    site_count = max(1, math.ceil(gateways / GATEWAYS_PER_SITE))
    site_of = rng.permutation(np.arange(gateways) % site_count).tolist()
    site_w = _width(site_count, _SITE_DIGITS_MIN)
    sites = [f"site-{s:0{site_w}d}" for s in site_of]

    return FleetLayout(fleet=fleet, gateways=gateway_names, devices_by_gateway=devices_by_gateway, sites=sites)
