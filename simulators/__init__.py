"""Simulated fleets: device models as numpy arrays, one actor per gateway, the demo scenario.

Everything here is deterministic for a seed; the scenario records what it did (link cuts) so
results can be checked against it.
"""

from .layout import FleetLayout, plan_fleet
from .models import METRICS, DeviceBank, SampleBlock

__all__ = ["METRICS", "DeviceBank", "FleetLayout", "SampleBlock", "plan_fleet"]
