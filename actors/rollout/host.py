"""What a hub does with rollouts, minus the socket and the clock: frames in, frames out.

:class:`RolloutHost` owns the engines of one state file. Each :meth:`~RolloutHost.tick` picks up
rollouts stored by someone else (``pymonitor rollout start``), applies queued operator commands,
ticks every live engine, saves it (before anything is sent: at most once per device) and returns
the (topic, frame) pairs to publish. Finished rollouts stay (late health reports still count)
until :meth:`~RolloutHost.forget`. :meth:`~RolloutHost.on_frame` takes report frames. The hub's
actor only has to carry frames between this and its MQTT bridge and pass the time in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .engine import ABORTED, COMPLETED, RolloutEngine
from .errors import RolloutError
from .plan import Inventory
from .spec import RolloutSpec
from .state_store import RolloutStore, apply_controls
from .wire import MAX_BATCH, Signer, decode_reports, encode_commands

FINISHED = (COMPLETED, ABORTED)


@dataclass(slots=True)
class HostCounters:
    """Frames the host could not use, counted rather than raised (a bad device must not stop a rollout)."""

    report_frames: int = 0
    bad_frames: int = 0
    unknown_rollout: int = 0
    commands: int = 0
    last_error: str = ""
    results: dict[str, int] = field(default_factory=dict)


class RolloutHost:
    """Every live rollout of one state file; see the module docstring."""

    def __init__(
        self,
        store: RolloutStore,
        *,
        fleet: str,
        node_of: Callable[[str], str],
        signer: Signer | None = None,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.store = store
        self.fleet = fleet
        self.node_of = node_of
        self.signer = signer
        self.max_batch = max_batch
        self.engines: dict[str, RolloutEngine] = {}
        self.counters = HostCounters()
        self.log: list[str] = []
        self._pick_up()

    def start(self, spec: RolloutSpec, inventory: Inventory, now_ms: int) -> RolloutEngine:
        """Start and store a rollout (raises RolloutError for a bad spec, an empty target or a taken id)."""
        if spec.rollout_id in self.store.states():
            raise RolloutError(f"rollout_id: {spec.rollout_id!r} already exists in {self.store.path}")
        engine = RolloutEngine.start(spec, inventory, now_ms)
        self.store.save(engine)
        self.engines[spec.rollout_id] = engine
        return engine

    def on_frame(self, payload: bytes, now_ms: int) -> None:
        """Feed one ``rollout.report`` frame (other events are ignored, bad ones counted)."""
        try:
            decoded = decode_reports(payload)
        except RolloutError as exc:
            self.counters.bad_frames += 1
            self.counters.last_error = str(exc)
            return
        if decoded is None:
            return
        engine = self.engines.get(decoded[0])
        if engine is None:
            self.counters.unknown_rollout += 1
            return
        self.counters.report_frames += 1
        results = self.counters.results
        for device, outcome, version in decoded[1]:
            result = engine.on_report(device, outcome, version, now_ms)
            results[result] = results.get(result, 0) + 1

    def tick(self, now_ms: int) -> list[tuple[str, bytes]]:
        """Controls, timeouts, gates and new commands of every live rollout; the frames to publish."""
        self._pick_up()
        frames: list[tuple[str, bytes]] = []
        for engine in self.engines.values():
            if engine.state not in FINISHED:
                self.log += apply_controls(self.store, engine, now_ms)
                commands = engine.tick(now_ms)
                self.counters.commands += len(commands)
                frames += encode_commands(
                    commands,
                    self.node_of,
                    fleet=self.fleet,
                    now_ms=now_ms,
                    signer=self.signer,
                    max_batch=self.max_batch,
                )
            self.store.save(engine)  # a finished one may still take late health reports
        return frames

    def forget(self, rollout_id: str) -> None:
        """Drop a finished rollout from memory (it stays in the file); its later reports count as unknown."""
        engine = self.engines.get(rollout_id)
        if engine is not None and engine.state in FINISHED:
            del self.engines[rollout_id]

    def _pick_up(self) -> None:
        for rollout_id, state in self.store.states().items():
            if state not in FINISHED and rollout_id not in self.engines:
                self.engines[rollout_id] = self.store.load(rollout_id)
