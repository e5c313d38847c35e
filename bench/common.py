"""Helpers every bench shares: progress on stderr, one JSON result as stdout's last line, CPU and memory.

The machine is shared and noisy, so a bench reports what it measured together with how: CPU is
counted per process (the bench itself, its children and the broker), never guessed from load.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import resource
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
import psutil

from pymonitor.broker import BrokerAddress

MB = 1024 * 1024


def progress(line: str) -> None:
    """Human-readable progress: stderr, so stdout stays the machine-readable result."""
    print(line, file=sys.stderr, flush=True)


def python_version() -> str:
    return platform.python_version()


def emit_result(result: Mapping[str, Any], *, out: Path | None = None) -> None:
    """Print the result as one JSON object, the last line of stdout; also write it to ``out`` if given."""
    data = orjson.dumps(dict(result), option=orjson.OPT_SERIALIZE_NUMPY)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data + b"\n")
    sys.stdout.buffer.write(data + b"\n")
    sys.stdout.flush()


def own_cpu_s() -> float:
    """User + system CPU seconds of this process so far (all its threads, not its children)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def own_peak_rss_mb() -> float:
    """The largest resident set this process has had (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def process_cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def process_peak_rss_mb(proc: psutil.Process) -> float:
    """Peak RSS of another process from ``VmHWM`` (Linux); its current RSS where that is not available."""
    try:
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float(proc.memory_info().rss) / MB


def children_named(name: str) -> list[psutil.Process]:
    """Live child processes of this one whose executable is called ``name`` (e.g. the broker we started)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.name() == name:
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


class CpuMeter:
    """CPU seconds of a changing set of processes over one measured span.

    A process may end inside the span (a restarted broker): call :meth:`sample` just before
    ending it, since an ended process can no longer be asked. Its last sample then counts.
    """

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._peak_rss_mb: dict[int, float] = {}

    def add(self, proc: psutil.Process, *, born_inside: bool = False) -> None:
        """Track ``proc`` from now on; ``born_inside``: it started within the span, so count all its CPU."""
        now = process_cpu_s(proc)
        self._procs[proc.pid] = proc
        self._first[proc.pid] = 0.0 if born_inside else now
        self._last[proc.pid] = now

    def sample(self) -> None:
        for pid, proc in self._procs.items():
            try:
                self._last[pid] = process_cpu_s(proc)
                self._peak_rss_mb[pid] = max(self._peak_rss_mb.get(pid, 0.0), process_peak_rss_mb(proc))
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                continue

    def seconds(self) -> float:
        return sum(self._last[pid] - self._first[pid] for pid in self._procs)

    def peak_rss_mb(self) -> float:
        return max(self._peak_rss_mb.values(), default=0.0)


def seeded_main(
    name: str,
    run_seed: Callable[[int, int, int], dict[str, Any]],
    headline: tuple[str, ...],
    days: int,
    argv: list[str] | None,
) -> int:
    """A fleet bench's command line: run each ``--seed``, emit every result and each headline's range as one object."""
    parser = argparse.ArgumentParser(prog=name, description=f"pymonitor bench {name}")
    parser.add_argument("--seed", type=int, nargs="+", default=[101, 102, 103, 104, 105])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=days)
    args = parser.parse_args(argv)
    results = []
    for seed in args.seed:
        progress(f"{name} seed {seed}")
        results.append(run_seed(seed, args.devices, args.days))
    summary: dict[str, Any] = {"bench": name, "seeds": args.seed}
    for key in headline:
        values = [r[key] for r in results]
        summary[key] = {"min": min(values), "max": max(values), "mean": round(sum(values) / len(values), 4)}
    emit_result({**summary, "per_seed": results})
    return 0


@contextlib.contextmanager
def bench_broker(broker: str, workdir: Path) -> Iterator[BrokerAddress]:
    """A mosquitto started on a free port under ``workdir`` (``broker == "mosquitto"``), or the given mqtt:// URL."""
    from pymonitor.broker import MosquittoBroker, parse_broker_url
    from pymonitor.broker.embedded import free_port

    started = (
        MosquittoBroker(port=free_port(), workdir=workdir / "mosquitto").start() if broker == "mosquitto" else None
    )
    try:
        address = parse_broker_url(started.url if started is not None else broker)
        progress(f"broker   {broker} at {address.host}:{address.port}")
        yield address
    finally:
        if started is not None:
            started.close()
