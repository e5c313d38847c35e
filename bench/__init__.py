"""Benchmarks run by ``pymonitor bench NAME``; each prints one JSON object as its last stdout line."""

from __future__ import annotations

from collections.abc import Callable


def _ingest(argv: list[str]) -> int:
    from .ingest import main

    return main(argv)


def _uplink(argv: list[str]) -> int:
    from .uplink import main

    return main(argv)


BENCHMARKS: dict[str, Callable[[list[str]], int]] = {"ingest": _ingest, "uplink": _uplink}

__all__ = ["BENCHMARKS"]
