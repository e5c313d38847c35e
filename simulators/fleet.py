"""A simulated fleet: G gateway actors, each hosting its share of N devices."""

from __future__ import annotations

import contextlib
from typing import Any

import pykka

from pymonitor.actors.runtime.clock import Clock
from pymonitor.actors.runtime.supervisor import Supervisor
from pymonitor.broker import BrokerAddress, NetworkLoop

from .gateway import GatewayActor, GatewaySettings, SetLink, StopSampling
from .layout import FleetLayout, plan_fleet


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
    ) -> None:
        self.layout: FleetLayout = plan_fleet(fleet=fleet, devices=devices, gateways=gateways, seed=seed)
        self.address = address
        self.clock = clock
        self.supervisor = supervisor
        self.netloop = NetworkLoop("fleet-netloop")
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
        for settings in self.settings:
            self.supervisor.tell(settings.node, StopSampling())

    def generated(self) -> int:
        return sum(s.generated[0] for s in self.settings)

    def pending_frames(self) -> int:
        return sum(len(s.outbox) for s in self.settings)

    def totals(self) -> dict[str, int]:
        """Outbox counters summed over the fleet."""
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
