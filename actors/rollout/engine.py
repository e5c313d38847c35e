"""The rollout state machine: waves of apply commands, gates between them, rollback on abort.

Pure: time is passed in (``now_ms``), effects are returned (:class:`Command` lists), nothing is
sent or stored here. Per-device state is one byte (``bytearray``) plus one int64 send time
(``array('q')``); counts per wave are kept incrementally, so a tick costs what it does (the
timeouts it expires and the commands it issues), not the fleet size. The one full scan is the
abort itself (finding every changed device), done once.

Delivery is at most once: :meth:`RolloutEngine.tick` marks a device as commanded before the
caller sends the command, so a hub that dies between the two never commands a device twice;
that device times out instead.
"""

from __future__ import annotations

import bisect
from array import array
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np

from .errors import RolloutSpecError, RolloutStateError, RolloutStoreError
from .gates import Tally, abort_reason, gate_reason
from .plan import Inventory, select_targets
from .spec import RolloutSpec, spec_from_dict


class DeviceState(IntEnum):
    """Where one device is in the rollout (stored as one byte)."""

    PENDING = 0
    APPLYING = 1
    APPLIED = 2
    FAILED = 3
    HEALTH_FAILED = 4
    TIMED_OUT = 5
    ROLLBACK_QUEUED = 6
    ROLLING_BACK = 7
    ROLLED_BACK = 8
    ROLLBACK_UNCONFIRMED = 9


N_STATES = len(DeviceState)
OUTCOMES = ("applied", "failed", "health_failed", "rolled_back")
PENDING, RUNNING, PAUSED, ABORTING, ABORTED, COMPLETED = (
    "pending",
    "running",
    "paused",
    "aborting",
    "aborted",
    "completed",
)
ROLLOUT_STATES = (PENDING, RUNNING, PAUSED, ABORTING, ABORTED, COMPLETED)
UNCONFIRMED_SHOWN = 100
"""Devices named in a status that never confirmed their rollback (all of them: :meth:`unconfirmed_devices`)."""

_S = DeviceState
_APPLY_RESULT = {"applied": _S.APPLIED, "failed": _S.FAILED, "health_failed": _S.HEALTH_FAILED}
_SAME_OUTCOME = {(_S.APPLIED, "applied"), (_S.FAILED, "failed"), (_S.HEALTH_FAILED, "health_failed")}
_PAST_APPLY = {_S.ROLLBACK_QUEUED, _S.ROLLING_BACK, _S.ROLLED_BACK, _S.ROLLBACK_UNCONFIRMED}
_MAYBE_CHANGED = (_S.APPLIED, _S.HEALTH_FAILED, _S.TIMED_OUT)


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """Something to send to one device: ``apply`` the target version or ``rollback`` to the previous one."""

    action: str
    device: str
    version: str
    rollout_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """Devices per outcome, of one wave or of the whole rollout."""

    pending: int
    in_flight: int
    applied: int
    failed: int
    health_failed: int
    timed_out: int

    @staticmethod
    def of(counts: Sequence[int]) -> dict[str, int]:
        """The fields from a row of per-state counts."""
        return {
            "pending": counts[DeviceState.PENDING],
            "in_flight": counts[DeviceState.APPLYING],
            "applied": counts[DeviceState.APPLIED],
            "failed": counts[DeviceState.FAILED],
            "health_failed": counts[DeviceState.HEALTH_FAILED],
            "timed_out": counts[DeviceState.TIMED_OUT],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class WaveStatus(Progress):
    """Progress of one wave; ``gate`` is waiting, open, soaking, passed or failed."""

    index: int
    size: int
    gate: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RolloutStatus(Progress):
    """Where a rollout stands. ``changed`` counts devices that (may have) left their version and were
    sent back on abort; ``rolled_back`` only those that confirmed being on their previous version."""

    rollout_id: str
    kind: str
    target_version: str
    state: str
    reason: str
    wave: int
    waves: tuple[WaveStatus, ...]
    targets: int
    changed: int
    rollback_pending: int
    rolled_back: int
    rollback_unconfirmed: int
    unconfirmed_devices: tuple[str, ...]
    reports: dict[str, int]
    started_ms: int
    updated_ms: int

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["waves"] = [{n: getattr(w, n) for n in w.__dataclass_fields__} for w in self.waves]
        out["unconfirmed_devices"] = list(self.unconfirmed_devices)
        return out


class RolloutEngine:
    """One rollout over a fixed target list; see the module docstring for the cost model."""

    def __init__(self, spec: RolloutSpec, names: Sequence[str], previous: Sequence[str], ends: Sequence[int]) -> None:
        self.spec = spec
        self.names = list(names)
        self._index = {name: i for i, name in enumerate(self.names)}
        self._versions: list[str] = sorted(set(previous))
        version_id = {v: i for i, v in enumerate(self._versions)}
        self._previous = array("I", (version_id[v] for v in previous))
        self._ends = list(ends)
        n = len(self.names)
        self._states = bytearray(n)
        self._sent_ms = array("q", bytes(8 * n))
        self._counts = [[0] * N_STATES for _ in self._ends]
        for w, (start, end) in enumerate(zip([0, *self._ends], self._ends, strict=False)):
            self._counts[w][_S.PENDING] = end - start
        self._total = [0] * N_STATES
        self._total[_S.PENDING] = n
        self.state = PENDING
        self.reason = ""
        self.wave = 0
        self._cursor = 0
        self._settled_ms: int | None = None
        self._failed_wave: int | None = None
        self.changed = 0
        self._applying: deque[tuple[int, int]] = deque()
        self._in_flight = 0
        self._rollback_queue: deque[int] = deque()
        self._rolling: deque[tuple[int, int]] = deque()
        self._rolling_in_flight = 0
        self._dirty: set[int] = set(range(n))
        self.reports = {"accepted": 0, "duplicate": 0, "stale": 0, "rejected": 0, "late": 0}
        self.last_rejection = ""
        self.started_ms = 0
        self.updated_ms = 0

    # life cycle

    @classmethod
    def start(cls, spec: RolloutSpec, inventory: Inventory, now_ms: int) -> RolloutEngine:
        """Pick the targets (refusing an empty selection), plan the waves and start running."""
        targets = select_targets(inventory, spec.selector)
        previous = []
        for device in targets:
            version = inventory[device].get(spec.version_label)
            if not isinstance(version, str) or not version:
                raise RolloutSpecError(
                    f"inventory[{device!r}].{spec.version_label}: missing; a device whose current version is "
                    "unknown could not be rolled back"
                )
            previous.append(version)
        engine = cls(spec, targets, previous, spec.waves.ends(len(targets)))
        engine.state = RUNNING
        engine.started_ms = engine.updated_ms = now_ms
        return engine

    def pause(self, now_ms: int) -> None:
        """Stop sending applies; answers, timeouts and abort thresholds still count."""
        self._require((RUNNING,), "pause")
        self.state = PAUSED
        self.updated_ms = now_ms

    def resume(self, now_ms: int) -> None:
        self._require((PAUSED,), "resume")
        self.state = RUNNING
        self.updated_ms = now_ms

    def abort(self, now_ms: int, reason: str = "aborted by the operator") -> None:
        """Stop sending applies and roll back every device that changed (or may have: it timed out)."""
        self._require((PENDING, RUNNING, PAUSED), "abort")
        self._begin_abort(reason, now_ms)

    def _require(self, states: tuple[str, ...], action: str) -> None:
        if self.state not in states:
            raise RolloutStateError(
                f"{action}: rollout {self.spec.rollout_id} is {self.state}; only a {' or '.join(states)} rollout can"
            )

    # inputs

    def on_report(self, device: str, outcome: str, version: str, now_ms: int) -> str:
        """Take one device's answer; returns accepted, duplicate, stale (a state it already left) or rejected."""
        self.updated_ms = max(self.updated_ms, now_ms)
        idx = self._index.get(device)
        if idx is None:
            return self._reject(f"device {device!r}: not a target of rollout {self.spec.rollout_id}")
        if outcome not in OUTCOMES:
            return self._reject(
                f"device {device!r}: outcome {outcome!r} unknown, expected one of {', '.join(OUTCOMES)}"
            )
        current = _S(self._states[idx])
        if outcome == "rolled_back":
            return self._on_rolled_back(idx, current, version)
        if current == _S.APPLYING:
            self._in_flight -= 1
            self._note_settled(now_ms)
        elif current == _S.TIMED_OUT:
            self.reports["late"] += 1
        elif current == _S.APPLIED and outcome == "health_failed":
            self._set(idx, _S.HEALTH_FAILED)
            return self._accept()
        elif (current, outcome) in _SAME_OUTCOME:
            self.reports["duplicate"] += 1
            return "duplicate"
        elif current in _PAST_APPLY or current in (_S.APPLIED, _S.HEALTH_FAILED, _S.FAILED):
            self.reports["stale"] += 1
            return "stale"
        else:
            return self._reject(f"device {device!r}: reported {outcome} but was never commanded")
        new = _APPLY_RESULT[outcome]
        if new == _S.APPLIED and version != self.spec.target_version:
            new = _S.FAILED  # it answered, but is not on the version we asked for
        if self.state == ABORTING and new != _S.FAILED:
            self._queue_rollback(idx)
        else:
            self._set(idx, new)
        return self._accept()

    def _on_rolled_back(self, idx: int, current: DeviceState, version: str) -> str:
        if current in (_S.ROLLING_BACK, _S.ROLLBACK_UNCONFIRMED):
            expected = self._versions[self._previous[idx]]
            if version != expected:
                return self._reject(f"device {self.names[idx]!r}: rolled back to {version!r}, expected {expected!r}")
            if current == _S.ROLLING_BACK:
                self._rolling_in_flight -= 1
            self._set(idx, _S.ROLLED_BACK)
            self._finish_abort_when_done()
            return self._accept()
        if current == _S.ROLLED_BACK:
            self.reports["duplicate"] += 1
            return "duplicate"
        return self._reject(f"device {self.names[idx]!r}: reported rolled_back but no rollback was asked")

    def _accept(self) -> str:
        self.reports["accepted"] += 1
        return "accepted"

    def _reject(self, why: str) -> str:
        self.reports["rejected"] += 1
        self.last_rejection = why
        return "rejected"

    # the clock

    def tick(self, now_ms: int) -> list[Command]:
        """Expire what timed out, judge gates, and return the commands to send now."""
        self.updated_ms = max(self.updated_ms, now_ms)
        commands: list[Command] = []
        self._expire(now_ms)
        if self.state in (RUNNING, PAUSED):
            reason = abort_reason(self.spec.gates, self._tally(self._total))
            if reason is not None:
                self._begin_abort(reason, now_ms)
        if self.state == RUNNING:
            self._advance(now_ms, commands)
        if self.state == ABORTING:
            self._send_rollbacks(now_ms, commands)
        return commands

    def _expire(self, now_ms: int) -> None:
        deadline = now_ms - self.spec.timeout_ms
        applying, rolling = self._applying, self._rolling
        while applying and applying[0][0] <= deadline:
            sent, idx = applying.popleft()
            if self._states[idx] == _S.APPLYING and self._sent_ms[idx] == sent:
                self._in_flight -= 1
                if self.state == ABORTING:
                    self._queue_rollback(idx)  # it may have applied without telling us
                else:
                    self._set(idx, _S.TIMED_OUT)
                    self._note_settled(now_ms)
        while rolling and rolling[0][0] <= deadline:
            sent, idx = rolling.popleft()
            if self._states[idx] == _S.ROLLING_BACK and self._sent_ms[idx] == sent:
                self._rolling_in_flight -= 1
                self._set(idx, _S.ROLLBACK_UNCONFIRMED)
        self._finish_abort_when_done()

    def _advance(self, now_ms: int, commands: list[Command]) -> None:
        spec = self.spec
        while True:
            end = self._ends[self.wave]
            budget = min(spec.concurrency_of(self.wave) - self._in_flight, end - self._cursor)
            for idx in range(self._cursor, self._cursor + max(budget, 0)):
                self._set(idx, _S.APPLYING)
                self._sent_ms[idx] = now_ms
                self._applying.append((now_ms, idx))
                commands.append(
                    Command(
                        action="apply", device=self.names[idx], version=spec.target_version, rollout_id=spec.rollout_id
                    )
                )
            if budget > 0:
                self._cursor += budget
                self._in_flight += budget
            if self._cursor < end or self._in_flight:
                return
            if self._settled_ms is None:
                self._settled_ms = now_ms
            if now_ms < self._settled_ms + spec.gates.soak_ms:
                return
            reason = gate_reason(spec.gates, self.wave, self._tally(self._counts[self.wave]))
            if reason is not None:
                self._failed_wave = self.wave
                self._begin_abort(reason, now_ms)
                return
            if self.wave + 1 == len(self._ends):
                self.state = COMPLETED
                return
            self.wave += 1
            self._settled_ms = None

    def _note_settled(self, now_ms: int) -> None:
        """The soak starts at the wave's last answer, even while paused (not at the next tick)."""
        if not self._in_flight and self._cursor == self._ends[self.wave] and self._settled_ms is None:
            self._settled_ms = now_ms

    def _begin_abort(self, reason: str, now_ms: int) -> None:
        self.state = ABORTING
        self.reason = reason
        self.updated_ms = max(self.updated_ms, now_ms)
        states = np.frombuffer(self._states, dtype=np.uint8)
        for idx in np.flatnonzero(np.isin(states, np.array(_MAYBE_CHANGED, dtype=np.uint8))).tolist():
            self._queue_rollback(idx)
        del states
        self._finish_abort_when_done()

    def _queue_rollback(self, idx: int) -> None:
        self._set(idx, _S.ROLLBACK_QUEUED)
        self._rollback_queue.append(idx)
        self.changed += 1

    def _send_rollbacks(self, now_ms: int, commands: list[Command]) -> None:
        budget = self.spec.concurrency_of(-1) - self._rolling_in_flight
        queue = self._rollback_queue
        while budget > 0 and queue:
            idx = queue.popleft()
            self._set(idx, _S.ROLLING_BACK)
            self._sent_ms[idx] = now_ms
            self._rolling.append((now_ms, idx))
            self._rolling_in_flight += 1
            budget -= 1
            commands.append(
                Command(
                    action="rollback",
                    device=self.names[idx],
                    version=self._versions[self._previous[idx]],
                    rollout_id=self.spec.rollout_id,
                )
            )

    def _finish_abort_when_done(self) -> None:
        if self.state == ABORTING and not (self._in_flight or self._rollback_queue or self._rolling_in_flight):
            self.state = ABORTED

    # bookkeeping

    def _set(self, idx: int, new: DeviceState) -> None:
        old = self._states[idx]
        row = self._counts[bisect.bisect_right(self._ends, idx)]
        row[old] -= 1
        row[new] += 1
        self._total[old] -= 1
        self._total[new] += 1
        self._states[idx] = new
        self._dirty.add(idx)

    @staticmethod
    def _tally(counts: Sequence[int]) -> Tally:
        return Tally(
            size=sum(counts),
            applied=counts[_S.APPLIED],
            failed=counts[_S.FAILED],
            health_failed=counts[_S.HEALTH_FAILED],
            timed_out=counts[_S.TIMED_OUT],
        )

    # views

    def device_state(self, device: str) -> DeviceState:
        return _S(self._states[self._index[device]])

    def unconfirmed_devices(self) -> list[str]:
        """Devices sent a rollback that never confirmed being back on their previous version."""
        states = np.frombuffer(self._states, dtype=np.uint8)
        return [self.names[i] for i in np.flatnonzero(states == _S.ROLLBACK_UNCONFIRMED).tolist()]

    def _gate(self, w: int) -> str:
        if w == self._failed_wave:
            return "failed"
        if w < self.wave or self.state == COMPLETED:
            return "passed"
        if w > self.wave:
            return "waiting"
        return "soaking" if self._settled_ms is not None else "open"

    def status(self) -> RolloutStatus:
        t = self._total
        waves = tuple(
            WaveStatus(index=w, size=sum(row), gate=self._gate(w), **Progress.of(row))
            for w, row in enumerate(self._counts)
        )
        unconfirmed = self.unconfirmed_devices()[:UNCONFIRMED_SHOWN] if t[_S.ROLLBACK_UNCONFIRMED] else []
        return RolloutStatus(
            rollout_id=self.spec.rollout_id,
            kind=self.spec.kind,
            target_version=self.spec.target_version,
            state=self.state,
            reason=self.reason,
            wave=self.wave,
            waves=waves,
            targets=len(self.names),
            **Progress.of(t),
            changed=self.changed,
            rollback_pending=t[_S.ROLLBACK_QUEUED] + t[_S.ROLLING_BACK],
            rolled_back=t[_S.ROLLED_BACK],
            rollback_unconfirmed=t[_S.ROLLBACK_UNCONFIRMED],
            unconfirmed_devices=tuple(unconfirmed),
            reports=dict(self.reports),
            started_ms=self.started_ms,
            updated_ms=self.updated_ms,
        )

    # persistence (the store writes these; the engine never touches a file)

    def take_dirty(self) -> list[int]:
        """Positions of the devices changed since the last call, to write to the store."""
        dirty, self._dirty = sorted(self._dirty), set()
        return dirty

    def device_rows(self, positions: Iterable[int]) -> list[tuple[int, str, str, int, int]]:
        """(position, name, previous version, state, sent_ms) of each device position."""
        return [
            (i, self.names[i], self._versions[self._previous[i]], self._states[i], self._sent_ms[i]) for i in positions
        ]

    def header(self) -> dict[str, Any]:
        """Everything but the per-device rows, JSON-able."""
        return {
            "spec": self.spec.to_dict(),
            "ends": self._ends,
            "state": self.state,
            "reason": self.reason,
            "wave": self.wave,
            "cursor": self._cursor,
            "settled_ms": self._settled_ms,
            "failed_wave": self._failed_wave,
            "changed": self.changed,
            "reports": self.reports,
            "last_rejection": self.last_rejection,
            "started_ms": self.started_ms,
            "updated_ms": self.updated_ms,
        }

    @classmethod
    def restore(cls, header: Mapping[str, Any], rows: Sequence[tuple[int, str, str, int, int]]) -> RolloutEngine:
        """Rebuild an engine from :meth:`header` and every device row (in position order)."""
        try:
            spec = spec_from_dict(header["spec"])
            if [r[0] for r in rows] != list(range(len(rows))):
                raise RolloutStoreError("device rows are not positions 0..n-1 in order")
            engine = cls(spec, [r[1] for r in rows], [r[2] for r in rows], header["ends"])
            engine._states[:] = bytes(r[3] for r in rows)
            engine._sent_ms = array("q", (r[4] for r in rows))
            for name in ("state", "reason", "wave", "changed", "last_rejection", "started_ms", "updated_ms"):
                setattr(engine, name, header[name])
            engine._cursor = header["cursor"]
            engine._settled_ms = header["settled_ms"]
            engine._failed_wave = header["failed_wave"]
            engine.reports = dict(header["reports"])
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, RolloutStoreError):
                raise
            raise RolloutStoreError(f"saved rollout state does not load: {type(exc).__name__}: {exc}") from None
        engine._rebuild()
        return engine

    def _rebuild(self) -> None:
        """Counts, in-flight queues and the rollback queue from the per-device states."""
        states = np.frombuffer(self._states, dtype=np.uint8)
        sent = np.frombuffer(self._sent_ms, dtype=np.int64)
        starts = [0, *self._ends]
        self._counts = [
            np.bincount(states[s:e], minlength=N_STATES).tolist() for s, e in zip(starts, self._ends, strict=False)
        ]
        self._total = np.bincount(states, minlength=N_STATES).tolist()
        for kind in (_S.APPLYING, _S.ROLLING_BACK):
            idx = np.flatnonzero(states == kind)
            order = idx[np.argsort(sent[idx], kind="stable")].tolist()
            queue = deque((int(self._sent_ms[i]), i) for i in order)
            if kind == _S.APPLYING:
                self._applying, self._in_flight = queue, len(order)
            else:
                self._rolling, self._rolling_in_flight = queue, len(order)
        self._rollback_queue = deque(np.flatnonzero(states == _S.ROLLBACK_QUEUED).tolist())
        del states, sent
        self._dirty = set()
