"""Process limits a node raises for itself at start."""

from __future__ import annotations

import logging
import resource

log = logging.getLogger(__name__)

FDS_PER_CONNECTION = 4
"""A paho client holds its socket plus a wake-up socket pair; keep headroom for SQLite files."""


def raise_open_file_limit(connections: int) -> int:
    """Lift the soft open-files limit toward the hard one so many MQTT clients fit; returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections * FDS_PER_CONNECTION + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new_soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
        soft = new_soft
        if soft < wanted:
            log.warning("open-files limit %d is below the %d wanted for %d connections", soft, wanted, connections)
    return int(soft)
