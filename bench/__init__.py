"""Benchmarks run by ``pymonitor bench NAME``; each prints one JSON object as its last stdout line."""

from __future__ import annotations

from collections.abc import Callable


def _ingest(argv: list[str]) -> int:
    from .ingest import main

    return main(argv)


def _crash(argv: list[str]) -> int:
    from .crash import main

    return main(argv)


def _offline(argv: list[str]) -> int:
    from .offline import main

    return main(argv)


def _clocks(argv: list[str]) -> int:
    from .clocks import main

    return main(argv)


def _gateway(argv: list[str]) -> int:
    from .gateway_load import main

    return main(argv)


def _uplink(argv: list[str]) -> int:
    from .uplink import main

    return main(argv)


def _nab(argv: list[str]) -> int:
    from .nab import main

    return main(argv)


def _summarize(argv: list[str]) -> int:
    from .summarize import main

    return main(argv)


BENCHMARKS: dict[str, Callable[[list[str]], int]] = {
    "ingest": _ingest,
    "uplink": _uplink,
    "crash": _crash,
    "offline": _offline,
    "clocks": _clocks,
    "gateway": _gateway,
    "nab": _nab,
    "summarize": _summarize,
}

__all__ = ["BENCHMARKS"]
