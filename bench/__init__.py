"""Benchmarks run by ``pymonitor bench NAME``; each prints one JSON object as its last stdout line.

Each is a module here with ``main(argv) -> int``, imported only when asked for (some pull in
numpy-heavy or broker-starting code a CLI call for another bench should not pay for).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

MODULES: dict[str, str] = {
    "ingest": "ingest",
    "uplink": "uplink",
    "crash": "crash",
    "offline": "offline",
    "clocks": "clocks",
    "gateway": "gateway_load",
    "nab": "nab",
    "summarize": "summarize",
    "rollout": "rollout",
    "alerts": "alerts",
    "fleet_battery": "fleet_battery",
    "fleet_calibration": "fleet_calibration",
    "config_sync": "config_sync",
    "fleet": "fleet",
}
"""Bench name -> module in this package."""


def _runner(module: str) -> Callable[[list[str]], int]:
    def run(argv: list[str]) -> int:
        main: Callable[[list[str]], int] = importlib.import_module(f"{__name__}.{module}").main
        return main(argv)

    return run


BENCHMARKS: dict[str, Callable[[list[str]], int]] = {name: _runner(module) for name, module in MODULES.items()}

__all__ = ["BENCHMARKS", "MODULES"]
