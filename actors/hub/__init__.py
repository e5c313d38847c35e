"""The hub role: subscribes to a fleet, deduplicates frames and stores readings in SQLite."""

from .actor import Flush, GetStats, HubActor, HubSettings
from .core import HubCore, HubCounters
from .role import HubRole

__all__ = ["Flush", "GetStats", "HubActor", "HubCore", "HubCounters", "HubRole", "HubSettings"]
