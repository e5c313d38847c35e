"""A simulated fleet: G gateway actors, each hosting its share of N devices."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pykka
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pymonitor.actors.runtime.clock import Clock
from pymonitor.actors.runtime.supervisor import Supervisor
from pymonitor.actors.summary.config import SummarySection
from pymonitor.broker import BrokerAddress, NetworkLoop
from pymonitor.store.raw_tier import SUMMARY_KEEP_DAYS

from .gateway import DURABLE_CAP_BYTES, LIVE_WINDOW_S, GatewayActor, GatewaySettings, SetLink, StopSampling
from .layout import FleetLayout, plan_fleet

STATUS_TIMEOUT_S = 5.0


class FleetSimulator:
    """Starts, steers and counts a fleet of simulated gateways."""

    def __init__(
        self,
        *,
        fleet: str,
        devices: int,
        gateways: int,
        address: BrokerAddress,
        clock: Clock,
        supervisor: Supervisor,
        interval_s: float = 1.0,
        seed: int = 1,
        max_rows_per_frame: int = 4096,
        ack_timeout_s: float = 10.0,
        compression: str | None = None,
        alerts: bool = True,
        outbox_dir: str | Path | None = None,
        outbox_cap_bytes: int = DURABLE_CAP_BYTES,
        durability: str = "normal",
        live_window_s: float = LIVE_WINDOW_S,
        daily_budget_bytes: int | None = None,
        uplink: str = "raw",
        summary_window_s: float = 3600.0,
        raw_keep_days: float = 7.0,
        summary: SummarySection | None = None,
        summary_keep_days: float = SUMMARY_KEEP_DAYS,
        trusted_keys: Mapping[str, Ed25519PublicKey] | None = None,
    ) -> None:
        self.layout: FleetLayout = plan_fleet(fleet=fleet, devices=devices, gateways=gateways, seed=seed)
        self.address = address
        self.clock = clock
        self.supervisor = supervisor
        self.netloop = NetworkLoop("fleet-netloop")
        self.durable = outbox_dir is not None
        if outbox_dir is not None:
            Path(outbox_dir).mkdir(parents=True, exist_ok=True)
        start_ms = clock.now_ms()
        site_numbers = {site: n for n, site in enumerate(sorted(set(self.layout.sites)))}
        self.settings = [
            GatewaySettings(
                fleet=fleet,
                node=name,
                devices=self.layout.devices_by_gateway[i],
                seed=seed,
                site_index=site_numbers[self.layout.sites[i]],
                interval_s=interval_s,
                start_ms=start_ms,
                max_rows_per_frame=max_rows_per_frame,
                ack_timeout_s=ack_timeout_s,
                compression=compression,
                alerts=alerts,
                outbox_path=None if outbox_dir is None else str(Path(outbox_dir) / f"{name}.outbox"),
                outbox_cap_bytes=outbox_cap_bytes,
                durability=durability,
                live_window_s=live_window_s,
                daily_budget_bytes=daily_budget_bytes,
                uplink=uplink,
                summary_window_s=summary_window_s,
                raw_keep_days=raw_keep_days,
                summary=summary,
                summary_keep_days=summary_keep_days,
                trusted_keys=trusted_keys,  # set: control commands must be signed by one of these
            )
            for i, name in enumerate(self.layout.gateways)
        ]

    def start(self) -> FleetSimulator:
        for settings in self.settings:

            def factory(sup: Supervisor, s: GatewaySettings = settings) -> pykka.ActorRef[Any]:
                return GatewayActor.start(sup, s, self.clock, self.address, self.netloop)

            self.supervisor.start(settings.node, factory)
        return self

    @property
    def gateways(self) -> list[str]:
        return list(self.layout.gateways)

    def set_link(self, gateway: str, up: bool) -> None:
        self.supervisor.tell(gateway, SetLink(up))

    def stop_sampling(self) -> None:
        """Stop every gateway's sampling and return once each has done so.

        Asked, not told: a tick already in a gateway's mailbox still samples before the stop, and a
        caller that then waits for empty outboxes and reads ``generated`` must see that tick's frames.
        """
        for settings in self.settings:
            ref = self.supervisor.ref(settings.node)
            if ref is None or not ref.is_alive():
                continue
            with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                ref.ask(StopSampling(), timeout=STATUS_TIMEOUT_S)

    def generated(self) -> int:
        return sum(s.generated[0] for s in self.settings)

    def statuses(self) -> list[dict[str, Any]]:
        """Each live gateway's own status (asked: a durable outbox belongs to its actor's thread)."""
        out = []
        for settings in self.settings:
            ref = self.supervisor.ref(settings.node)
            if ref is None or not ref.is_alive():
                continue
            with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                out.append(ref.proxy().status().get(timeout=STATUS_TIMEOUT_S))
        return out

    def pending_frames(self) -> int:
        if self.durable:
            return sum(s["pending_frames"] for s in self.statuses())
        return sum(len(s.outbox) for s in self.settings)

    def totals(self) -> dict[str, int]:
        """Outbox counters summed over the fleet."""
        if self.durable:
            statuses = self.statuses()
            out = {"generated": self.generated(), "pending_frames": sum(s["pending_frames"] for s in statuses)}
            for key in ("acked_readings", "resends", "evicted_readings"):
                out[key] = sum(s[key] for s in statuses)
            out["worst_delay_ms"] = max((s["worst_delay_ms"] for s in statuses), default=0)
            return out
        out = {"generated": self.generated(), "pending_frames": self.pending_frames()}
        for key in ("frames", "acked_readings", "resends", "evicted_readings"):
            out[key] = sum(getattr(s.outbox.counters, key) for s in self.settings)
        out["worst_delay_ms"] = max((s.outbox.counters.worst_delay_ms for s in self.settings), default=0)
        return out

    def stop(self) -> None:
        for settings in self.settings:
            ref = self.supervisor.ref(settings.node)
            if ref is not None and ref.is_alive():
                ref.stop(block=False)
        for settings in self.settings:
            ref = self.supervisor.ref(settings.node)
            if ref is not None:
                with contextlib.suppress(pykka.Timeout):
                    ref.stop(block=True, timeout=10)
        self.netloop.stop()
