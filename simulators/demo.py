"""The demo scenario: a broker, a hub and a simulated fleet in one process, with a link cut.

Partway through, one gateway's link is cut (the broker sees it die and publishes its Will);
its frames pile up in its outbox and catch up when the link returns. The summary counts
every reading from the hub's database, not from what the senders believe.
"""

from __future__ import annotations

import resource
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pymonitor.actors.runtime.node import start_node
from pymonitor.deploy import NodeConfig, parse_config
from pymonitor.store import HubStore

from .fleet import FleetSimulator

DRAIN_TIMEOUT_S = 60.0
POLL_S = 0.25


@dataclass(frozen=True, slots=True)
class DemoOptions:
    devices: int = 500
    gateways: int = 10
    seconds: float = 20.0
    interval_s: float = 1.0
    speed: float = 1.0
    seed: int = 1
    broker: str = "auto"  # auto (mosquitto if installed, else embedded), embedded, mosquitto, or a mqtt:// URL
    db: Path | None = None
    cut_link: bool = True
    fleet: str = "demo"


@dataclass(frozen=True, slots=True)
class DemoSummary:
    devices: int
    gateways: int
    broker: str
    generated: int
    stored: int
    lost: int
    duplicates: int
    duplicate_frames_dropped: int
    resent_frames: int
    evicted: int
    worst_catch_up_s: float
    cut_gateway: str | None
    cut_s: float
    startup_s: float
    wall_s: float
    readings_per_s: float
    peak_rss_mb: float  # this process: the simulated fleet and the hub together
    db: str

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicates == 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Progress = Callable[[str], None]


def _node_config(options: DemoOptions, db_path: Path) -> NodeConfig:
    return parse_config(
        {
            "node": {"name": "hub", "fleet": options.fleet},
            "broker": {"url": options.broker},
            "clock": {"speed": options.speed},
            "hub": {"db": str(db_path)},
            "simulator": {
                "devices": options.devices,
                "gateways": options.gateways,
                "interval_s": options.interval_s,
                "seed": options.seed,
                "ack_timeout_s": max(5.0, options.interval_s * 5),
            },
        },
        "demo options",
    )


def run_demo(options: DemoOptions, progress: Progress = lambda _line: None) -> DemoSummary:
    """Run the scenario and account for every reading."""
    t0 = time.monotonic()
    tmp = tempfile.TemporaryDirectory(prefix="pymonitor-demo-") if options.db is None else None
    db_path = options.db if options.db is not None else Path(tmp.name) / "demo.db"  # type: ignore[union-attr]
    node = start_node(_node_config(options, db_path))
    kind = getattr(node.broker, "kind", None)
    broker_label = node.broker_url + (f" ({kind}, started here)" if kind else "")
    progress(f"broker   {broker_label}")
    fleet: FleetSimulator = node.fleet
    hub = node.hub
    assert hub is not None
    startup_s = time.monotonic() - t0
    progress(f"fleet    {options.devices} devices behind {options.gateways} gateways, started in {startup_s:.1f} s")
    cut = fleet.gateways[0] if options.cut_link and options.gateways > 1 else None
    cut_at, restore_at = options.seconds * 0.3, options.seconds * 0.6
    cut_done = restored = False
    run_start = time.monotonic()
    next_report = 0.0
    try:
        while (elapsed := time.monotonic() - run_start) < options.seconds:
            if cut and not cut_done and elapsed >= cut_at:
                fleet.set_link(cut, False)
                cut_done = True
                progress(f"link     cut {cut} at {elapsed:.1f} s: its frames wait in its outbox")
            if cut and cut_done and not restored and elapsed >= restore_at:
                fleet.set_link(cut, True)
                restored = True
                progress(f"link     restored {cut} at {elapsed:.1f} s: catching up")
            if elapsed >= next_report:
                totals = fleet.totals()
                progress(
                    f"{elapsed:5.1f} s  generated {totals['generated']:>10,}  acked {totals['acked_readings']:>10,}"
                    f"  waiting frames {totals['pending_frames']:>5}"
                )
                next_report += max(1.0, options.seconds / 10)
            time.sleep(POLL_S)
        fleet.stop_sampling()
        if cut and not restored:
            fleet.set_link(cut, True)
        progress("drain    sampling stopped; waiting for every frame to be acknowledged")
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while fleet.pending_frames() and time.monotonic() < deadline:
            time.sleep(POLL_S)
        hub_counters = hub.stats().get("counters", {})
        totals = fleet.totals()
    finally:
        node.stop()
    store = HubStore(db_path)
    accounting = store.reading_accounting()
    store.close()
    wall_s = time.monotonic() - t0
    generated = totals["generated"]
    summary = DemoSummary(
        devices=options.devices,
        gateways=options.gateways,
        broker=broker_label,
        generated=generated,
        stored=accounting["distinct"],
        lost=max(0, generated - accounting["distinct"]),
        duplicates=accounting["duplicates"],
        duplicate_frames_dropped=int(hub_counters.get("duplicates", 0)),
        resent_frames=totals["resends"],
        evicted=totals["evicted_readings"],
        worst_catch_up_s=totals["worst_delay_ms"] / 1000,
        cut_gateway=cut,
        cut_s=restore_at - cut_at if cut else 0.0,
        startup_s=round(startup_s, 2),
        wall_s=round(wall_s, 2),
        readings_per_s=round(accounting["distinct"] / max(1e-9, options.seconds), 1),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        db=str(db_path) if tmp is None else "(temporary)",
    )
    if tmp is not None:
        tmp.cleanup()
    return summary
