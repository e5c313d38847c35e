"""Firmware: version comparison across vendor schemes, advisories, inventory and unauthorised-change detection.

Every error of this package is a ``FirmwareError`` (``VersionError`` for versions, ``AdvisoryError``
for advisory files). Pure cores only: reports and times are passed in.
"""

from pymonitor.actors.firmware.advisories import Advisory, VersionRange, load_advisories, parse_advisories, parse_range
from pymonitor.actors.firmware.errors import AdvisoryError, FirmwareError, VersionError
from pymonitor.actors.firmware.inventory import (
    Device,
    FirmwareInventory,
    FirmwareReport,
    GroupConsistency,
    Image,
    Rollout,
    RolloutProgress,
    UnauthorisedChange,
)
from pymonitor.actors.firmware.version import DEFAULT_REGISTRY, Scheme, SchemeRegistry, Version, parse_version

__all__ = [
    "DEFAULT_REGISTRY",
    "Advisory",
    "AdvisoryError",
    "Device",
    "FirmwareError",
    "FirmwareInventory",
    "FirmwareReport",
    "GroupConsistency",
    "Image",
    "Rollout",
    "RolloutProgress",
    "Scheme",
    "SchemeRegistry",
    "UnauthorisedChange",
    "Version",
    "VersionError",
    "VersionRange",
    "load_advisories",
    "parse_advisories",
    "parse_range",
    "parse_version",
]
