"""A link impairment harness: make a loopback connection look like a 2G, 3G or satellite uplink.

- :class:`ImpairedLink` (userspace TCP proxy): one-way delay, jitter, a rate (token bucket or a
  recorded mahimahi :class:`DeliveryTrace`), outages ("stall" or "drop") and the effect of loss
  as retransmission delay. Runs anywhere.
- :class:`VethPair` (network namespaces): real kernel rate limiting (tbf) and random packet loss
  (nftables), for root with iproute2 and nftables; :func:`netns_available` says why not.
- :class:`LinkProfile` and :func:`get_profile`: named links; :class:`OutageSchedule`: when it is down.

Errors: :class:`LinkError` (a ``ValueError``: a bad profile, outage, trace file or option, with
where and why); :class:`NetnsError` (a ``RuntimeError``: a namespace command failed, with its stderr).
"""

from .netns import NetnsError, VethPair, netns_available, remove_stale_namespaces
from .profiles import DAY_S, HOUR_S, PROFILES, LinkError, LinkProfile, Outage, OutageSchedule, get_profile
from .proxy import ImpairedLink, LinkCounters, OutageMode
from .traces import DeliveryTrace, LinkDirection, TokenBucket, TraceShaper, shared_data_dir

__all__ = [
    "DAY_S",
    "HOUR_S",
    "PROFILES",
    "DeliveryTrace",
    "ImpairedLink",
    "LinkCounters",
    "LinkDirection",
    "LinkError",
    "LinkProfile",
    "NetnsError",
    "Outage",
    "OutageMode",
    "OutageSchedule",
    "TokenBucket",
    "TraceShaper",
    "VethPair",
    "get_profile",
    "netns_available",
    "remove_stale_namespaces",
    "shared_data_dir",
]
