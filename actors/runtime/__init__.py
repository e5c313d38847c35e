"""What every role shares: injected clocks, supervision, frame intake and the node process.

Errors: a failing actor is not an error to its caller; the :class:`Supervisor` restarts it and
counts the failure. Config errors come from :mod:`pymonitor.deploy`.
"""

from .clock import Clock, RealClock, SimClock, TimerHandle
from .intake import Accepted, Inbound, accept, dead_letter
from .supervisor import ChildStats, SupervisedActor, Supervisor, tell_if_alive

__all__ = [
    "Accepted",
    "ChildStats",
    "Clock",
    "Inbound",
    "RealClock",
    "SimClock",
    "SupervisedActor",
    "Supervisor",
    "TimerHandle",
    "accept",
    "dead_letter",
    "tell_if_alive",
]
