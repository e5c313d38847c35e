"""The fleet roles of a hub: five supervised role actors fed from one stream, each through its own inbox.

Wiring: give :meth:`FleetRoles.on_frame` the hub's frames (the same ``(topic, payload)`` its MQTT
bridge hands the hub actor) or :meth:`FleetRoles.offer` decoded messages. A frame is decoded and
unpacked once and the read-only columns are shared by every role that wants them; each role
gets them through its own bounded :class:`~.inbox.RoleInbox`, so a slow role drops (and counts)
its own backlog instead of stalling the feeder, the hub or the other roles.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pykka

from pymonitor.actors.runtime.clock import Clock
from pymonitor.actors.runtime.intake import Inbound, accept
from pymonitor.actors.runtime.supervisor import Supervisor
from pymonitor.messages import MAX_FRAME_BYTES, Event, ReadingBatch
from pymonitor.store.fleet_answers import AnswerStore, answers_path

from .actor import Analyse, EventSink, GetRoleStats, RoleActor, Wake
from .answers import options_key
from .battery_query import BatteryOptions
from .calibration_query import CalibrationOptions
from .environment_query import EnvironmentOptions
from .firmware_query import Approved, FirmwareOptions, build
from .gateways_query import GatewayOptions
from .inbox import CAPACITY_READINGS, RoleInbox
from .live import Item, Readings
from .roles import (
    ROLE_CLASSES,
    ROLE_NAMES,
    BatteryRole,
    CalibrationRole,
    EnvironmentRole,
    FirmwareRole,
    GatewaysRole,
    LiveRole,
    Query,
)
from .service import FleetService

ANALYSE_EVERY_S = 300.0
ALL = 1_000_000_000
"""The actors want every alert of an answer, not the CLI's first 20."""

RoleMaker = Callable[[], LiveRole]


def store_roles(db_path: Path, node: str, approved: Approved | None = None) -> dict[str, RoleMaker]:
    """Role factories whose analyses query the hub store at ``db_path`` (each opens its own read-only connection).

    Each analysis also keeps its answer in the answers file beside the store
    (:func:`~pymonitor.store.fleet_answers.answers_path`), which is what ``pymonitor fleet ...`` serves.
    """

    def asking(kind: type[LiveRole], role: str, options: Any) -> RoleMaker:
        def make() -> LiveRole:
            service = FleetService(db_path)
            answers = AnswerStore(answers_path(db_path))
            key = options_key(options)
            one_at_a_time = threading.Lock()  # a tick's worker and an on-demand analysis share the connections

            def query(now_ms: int) -> dict[str, Any]:
                with one_at_a_time:
                    start = time.perf_counter()
                    answer = service.ask(role, now_ms, options)
                    answers.put(role, key, now_ms, (time.perf_counter() - start) * 1000, answer)
                return answer

            if kind is FirmwareRole:  # judges reports as they come: needs the store's inventory first
                inventory, _, _ = build(service.data, approved or Approved())
                return FirmwareRole(node, query, inventory)
            return kind(node, query)

        return make

    return {
        "battery": asking(BatteryRole, "battery", BatteryOptions(limit=ALL)),
        "firmware": asking(FirmwareRole, "firmware", FirmwareOptions(limit=ALL)),
        "calibration": asking(CalibrationRole, "calibration", CalibrationOptions(limit=ALL)),
        "environment": asking(EnvironmentRole, "environment", EnvironmentOptions(limit=ALL)),
        "gateways": asking(GatewaysRole, "gateways", GatewayOptions(limit=ALL)),
    }


def plain_roles(node: str, queries: dict[str, Query] | None = None) -> dict[str, RoleMaker]:
    """Role factories without a store (tests, benches): ``queries`` by role name, if any."""
    q = queries or {}

    def maker(kind: type[LiveRole], name: str) -> RoleMaker:
        return lambda: kind(node, q.get(name))

    return {name: maker(kind, name) for name, kind in ROLE_CLASSES.items()}


class FleetRoles:
    """Starts the role actors under a supervisor and fans the stream out to them."""

    def __init__(
        self,
        supervisor: Supervisor,
        clock: Clock,
        roles: dict[str, RoleMaker],
        sink: EventSink,
        *,
        node: str = "fleet-roles",
        capacity: int = CAPACITY_READINGS,
        analyse_every_s: float | None = ANALYSE_EVERY_S,
    ) -> None:
        unknown = sorted(set(roles) - set(ROLE_NAMES))
        if unknown:
            raise ValueError(f"roles: expected names from {', '.join(ROLE_NAMES)}, got {', '.join(unknown)}")
        self.supervisor = supervisor
        self.clock = clock
        self.roles = roles
        self.sink = sink
        self.node = node
        self.analyse_every_s = analyse_every_s
        self.inboxes = {name: RoleInbox(capacity) for name in roles}
        self.refused = 0  # frames that were not a reading batch or an event, or did not decode

    @staticmethod
    def actor_name(role: str) -> str:
        return f"fleet.{role}"

    def start(self) -> FleetRoles:
        for name, make in self.roles.items():
            self.supervisor.start(self.actor_name(name), self._factory(name, make))
        return self

    def _factory(self, name: str, make: RoleMaker) -> Callable[[Supervisor], pykka.ActorRef[Any]]:
        inbox = self.inboxes[name]

        def factory(sup: Supervisor) -> pykka.ActorRef[Any]:
            return RoleActor.start(sup, self.actor_name(name), make, inbox, self.clock, self.sink, self.analyse_every_s)

        return factory

    def on_frame(self, topic: str, payload: bytes) -> None:
        """A bridge callback: decode once, hand to every role that wants it; never blocks."""
        accepted = accept(self.node, Inbound(topic, payload), self.clock.now_ms(), MAX_FRAME_BYTES)
        message = getattr(accepted, "message", None)
        if isinstance(message, ReadingBatch | Event):
            self.offer(message)
        else:
            self.refused += 1

    def offer(self, message: ReadingBatch | Event) -> None:
        item: Item = Readings.of(message) if isinstance(message, ReadingBatch) else message
        for name, inbox in self.inboxes.items():
            if not ROLE_CLASSES[name].wants(item):
                continue
            _, wake = inbox.offer(item)
            if wake:
                self.supervisor.tell(self.actor_name(name), Wake())

    def analyse(self, role: str, timeout_s: float = 600.0) -> int:
        """Run one role's analysis now (not waiting for its tick); the number of events it raised."""
        ref = self.supervisor.ref(self.actor_name(role))
        if ref is None:
            raise KeyError(role)
        return cast("int", ref.ask(Analyse(scheduled=False), timeout=timeout_s))

    def stats(self, timeout_s: float = 5.0) -> dict[str, Any]:
        out: dict[str, Any] = {"refused_frames": self.refused}
        children = self.supervisor.stats()
        for name, inbox in self.inboxes.items():
            child = children.get(self.actor_name(name))
            entry: dict[str, Any] = {"depth_readings": inbox.depth, **vars(inbox.stats)}
            if child is not None:
                entry["failures"] = child.failures
                entry["restarts"] = child.restarts
            ref = self.supervisor.ref(self.actor_name(name))
            try:
                entry["role"] = ref.ask(GetRoleStats(), timeout=timeout_s) if ref is not None else None
            except (pykka.ActorDeadError, pykka.Timeout):
                entry["role"] = None
            out[name] = entry
        return out

    def stop(self, timeout_s: float = 10.0) -> None:
        for name in self.roles:
            ref = self.supervisor.ref(self.actor_name(name))
            if ref is not None and ref.is_alive():
                ref.stop(block=True, timeout=timeout_s)
