"""Node configuration and deployment.

Errors: :class:`ConfigError` names the file, the key and the reason.
"""

from .config import (
    BrokerSection,
    ClockSection,
    ConfigError,
    HubSection,
    NodeConfig,
    NodeSection,
    SimulatorSection,
    load_config,
    parse_config,
)

__all__ = [
    "BrokerSection",
    "ClockSection",
    "ConfigError",
    "HubSection",
    "NodeConfig",
    "NodeSection",
    "SimulatorSection",
    "load_config",
    "parse_config",
]
