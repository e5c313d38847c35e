"""Fleet health roles: battery, firmware, calibration, environment and gateway load, live and on demand.

Two faces over the same pure cores (actors/battery, firmware, calibration, environment, gateways):

- :class:`FleetService` answers queries from the hub store (the CLI's ``pymonitor fleet ...``);
- :class:`FleetRoles` runs one supervised actor per role, fed from the hub's stream through a
  bounded, coalescing inbox each, raising ``event.v1`` events (``battery.depletion_soon``,
  ``firmware.unauthorised_change``, ``calibration.drift``, ``environment.recommendation``,
  ``gateway.rebalance``).

Errors: a query that cannot be answered raises :class:`FleetQueryError` (a ``ValueError``) naming
the option or file and why; bad readings never raise, they are counted by the cores.
"""

from .actor import Analyse, GetRoleStats, RoleActor, Wake
from .battery_query import BatteryOptions
from .calibration_query import CalibrationOptions
from .environment_query import EnvironmentOptions
from .errors import FleetQueryError
from .firmware_query import Approved, FirmwareOptions, load_approved
from .gateways_query import GatewayOptions
from .host import FleetRoles, plain_roles, store_roles
from .inbox import RoleInbox
from .live import Readings
from .roles import ROLE_CLASSES, ROLE_NAMES, LiveRole
from .service import FleetService

__all__ = [
    "ROLE_CLASSES",
    "ROLE_NAMES",
    "Analyse",
    "Approved",
    "BatteryOptions",
    "CalibrationOptions",
    "EnvironmentOptions",
    "FirmwareOptions",
    "FleetQueryError",
    "FleetRoles",
    "FleetService",
    "GatewayOptions",
    "GetRoleStats",
    "LiveRole",
    "Readings",
    "RoleActor",
    "RoleInbox",
    "Wake",
    "load_approved",
    "plain_roles",
    "store_roles",
]
