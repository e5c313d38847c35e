"""The devices behind one gateway turned into outbox frames: samples, threshold alerts, sequence numbers.

Pure (time comes in): the gateway actor asks for everything due up to now and buffers what comes
out. Each group of frames (the alerts a block raised, then the block's reading batch) comes with
the sampler's state *after* that group, so the gateway can commit the state in the same
transaction as the group's last frame: after a power cut it resumes exactly where its outbox
ends, sampling nothing twice and skipping nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cbor2
import numpy as np

from pymonitor.actors.summary.config import SummarySection
from pymonitor.actors.summary.summarizer import Summarizer
from pymonitor.actors.summary.uplink_plan import uplink_summarizers
from pymonitor.messages import Event, ReadingBatch, decode_unpacked, encode, encode_packed
from pymonitor.messages.summaries import SummaryBatch
from pymonitor.store.outbox import Priority

from .alerts import Alert, AlertDetector
from .anomalies import ANOMALY_QUIET_MS, Anomaly, AnomalyWatch
from .frames import block_to_batch
from .models import DeviceBank, SampleBlock

BYTES_PER_ROW_ROWS = 4096
"""A frame of this many rows replaces the bytes-per-row estimate; smaller frames move it in proportion."""


@dataclass(frozen=True, slots=True)
class OutFrame:
    seq: int
    payload: bytes
    readings: int  # measured values carried (0 for an event)
    priority: Priority
    urgent: bool = False  # a reading batch whose block held an anomaly: send it with the events
    local: bool = False  # kept in the node's raw tier only, not sent (summaries go instead)
    span: tuple[int, int] | None = None  # first and last sample time (a summary frame: its windows' bounds)
    rows: int = 0  # a reading batch's samples, a summary frame's windows
    stream: str | None = None  # the up-topic kind when not the priority's usual one


def _extent(made: SummaryBatch) -> dict[str, Any]:
    """``span`` and ``rows`` of a summary frame, for the node's summary tier."""
    starts = np.cumsum(np.frombuffer(made.window_start_ms, dtype="<i8"))
    span = (int(starts.min()), int(starts.max()) + made.window_ms - 1) if made.rows else None
    return {"span": span, "rows": made.rows}


@dataclass(frozen=True, slots=True)
class SamplerSpec:
    """What fixes a gateway's devices; a restarted gateway must be given the same spec."""

    fleet: str
    node: str
    devices: list[str]
    seed: int
    site_index: int
    interval_s: float
    start_ms: int


class SiteSampler:
    """Samples, alerts and frame numbering for one gateway session."""

    def __init__(
        self,
        spec: SamplerSpec,
        *,
        session: int,
        max_rows_per_frame: int = 4096,
        compression: str | None = None,
        alerts: bool = True,
        anomalies: bool = False,
        anomaly_quiet_s: float = ANOMALY_QUIET_MS / 1000,
        summary_window_s: float | None = None,
        summary: SummarySection | None = None,
    ) -> None:
        """``anomalies``: score every sample with a streaming detector per series (opt-in: it costs about
        as much CPU as drawing the samples, which slows 100,000-device fleet simulations; remote sites want it);
        ``anomaly_quiet_s``: at most one anomaly event per series per this much sample time;
        ``summary_window_s``: send window summaries instead of raw batches (progressive resolution):
        a batch is then kept locally (``OutFrame.local``) unless it holds an anomaly; ``summary``: the
        node's per-metric ``[summary]`` config (window sizes, functions; see actors.summary.uplink_plan)."""
        self.spec = spec
        self.session = session
        self.seq = 0
        self.max_rows_per_frame = max_rows_per_frame
        self.compression = compression
        self.stride = 1  # keep every stride-th sample of each device (a daily budget lowers sampling)
        self.bank = DeviceBank(
            spec.devices,
            seed=spec.seed,
            start_ms=spec.start_ms,
            interval_s=spec.interval_s,
            site_index=spec.site_index,
        )
        self.alerts = AlertDetector(len(spec.devices)) if alerts else None
        quiet_ms = round(anomaly_quiet_s * 1000)
        self.anomalies = AnomalyWatch(len(spec.devices), quiet_ms=quiet_ms) if anomalies else None
        self.skipped = 0  # samples taken but not sent because of the stride
        self.bytes_per_row: float | None = None  # measured on the frames made, for sizing the next ones
        self.summarizers: list[Summarizer] = (
            []
            if summary_window_s is None
            else uplink_summarizers(
                summary,
                node=spec.node,
                session=session,
                default_window_ms=round(summary_window_s * 1000),
                min_rows=len(spec.devices),
            )
        )

    def _encode(self, msg: object) -> bytes:
        return encode_packed(msg, self.compression) if self.compression else encode(msg)

    def frames_until(self, now_ms: int) -> Iterator[tuple[list[OutFrame], bytes]]:
        """Groups of frames due up to ``now_ms``, each with the state to save with its last frame."""
        while True:
            block = self.bank.sample_until(now_ms, self.max_rows_per_frame)
            if block.rows == 0:
                return
            group = [self._event(alert) for alert in (self.alerts.scan(block) if self.alerts else [])]
            unusual, urgent = self.anomalies.scan(block) if self.anomalies else ([], False)
            group.extend(self._anomaly_event(a) for a in unusual)
            kept = self._thin(block)
            if kept.rows:
                self.seq += 1
                batch, readings = block_to_batch(
                    kept, node=self.spec.node, session=self.session, seq=self.seq, devices=self.spec.devices
                )
                payload = self._encode(batch)
                self._measure(len(payload), kept.rows)
                span = (int(kept.ts_ms.min()), int(kept.ts_ms.max()))
                local = bool(self.summarizers) and not urgent  # the detail of what matters goes anyway
                group.append(
                    OutFrame(
                        self.seq,
                        payload,
                        readings,
                        Priority.LIVE,
                        urgent=urgent,
                        local=local,
                        span=span,
                        rows=kept.rows,
                    )
                )
                for summarizer in self.summarizers:
                    group.extend(self._summaries(summarizer.add(batch, now_ms)))
            yield group, self.snapshot()
            if block.rows < self.max_rows_per_frame:
                return

    def tick(self, now_ms: int) -> list[OutFrame]:
        """Summary windows that closed with time alone (devices gone quiet)."""
        return [frame for summarizer in self.summarizers for frame in self._summaries(summarizer.tick(now_ms))]

    def _summaries(self, made: SummaryBatch | None) -> list[OutFrame]:
        """Number a summary frame in the sampler's sequence (one sequence space per session)."""
        if made is None:
            return []
        self.seq += 1
        numbered = dataclasses.replace(made, session=self.session, seq=self.seq)
        return [OutFrame(self.seq, self._encode(numbered), 0, Priority.LIVE, stream="summaries", **_extent(made))]

    def replay(self, payload: bytes) -> OutFrame:
        """A raw batch from the node's raw tier, renumbered in this session, to go as backfill.

        Renumbered because the hub deduplicates on (node, session, seq): two requests cutting the
        same stored batch differently must not look like one frame.
        """
        batch = decode_unpacked(payload)
        if isinstance(batch, SummaryBatch):  # from the summary tier: the hub keeps each window once
            self.seq += 1
            again_summary = dataclasses.replace(batch, session=self.session, seq=self.seq)
            return OutFrame(self.seq, self._encode(again_summary), 0, Priority.BACKFILL, stream="summaries")
        if not isinstance(batch, ReadingBatch):
            raise ValueError(f"the raw tier held a {type(batch).__name__}, not a reading batch")
        self.seq += 1
        again = dataclasses.replace(batch, session=self.session, seq=self.seq, backfill=True)
        return OutFrame(self.seq, self._encode(again), again.reading_count(), Priority.BACKFILL)

    def _measure(self, nbytes: int, rows: int) -> None:
        """Bytes per row, smoothed over recent frames (a frame of a few rows says little alone)."""
        sample = nbytes / rows
        weight = min(1.0, rows / BYTES_PER_ROW_ROWS)
        old = self.bytes_per_row
        self.bytes_per_row = sample if old is None else old + weight * (sample - old)

    def _thin(self, block: SampleBlock) -> SampleBlock:
        if self.stride == 1:
            return block
        keep = block.device_seq % self.stride == 0
        self.skipped += int((~keep).sum())
        return SampleBlock(
            device_index=block.device_index[keep],
            device_seq=block.device_seq[keep],
            ts_ms=block.ts_ms[keep],
            values=block.values[:, keep],
        )

    def _event(self, alert: Alert) -> OutFrame:
        device = self.spec.devices[alert.device]
        t = alert.threshold
        relation = "above" if t.above else "below"
        return self._held_event(
            ts_ms=alert.ts_ms,
            kind=t.kind,
            severity=t.severity,
            message=f"{device} {t.metric} {alert.value:.3g} is {relation} {t.limit:g}",
            source=device,
            value=alert.value,
            labels={"metric": t.metric},
            details={"limit": t.limit},
        )

    def _anomaly_event(self, anomaly: Anomaly) -> OutFrame:
        device = self.spec.devices[anomaly.device]
        return self._held_event(
            ts_ms=anomaly.ts_ms,
            kind="anomaly.detected",
            severity="warning",
            message=f"{device} {anomaly.metric} {anomaly.value:.3g} is unusual (score {anomaly.score:.3f})",
            source=device,
            value=anomaly.value,
            labels={"metric": anomaly.metric},
            details={"score": anomaly.score},
        )

    def event(self, ts_ms: int, kind: str, severity: str, message: str, details: dict[str, int]) -> OutFrame:
        """A frame for an event about the gateway itself (its outbox, its link)."""
        return self._held_event(
            ts_ms=ts_ms, kind=kind, severity=severity, message=message, source=self.spec.node, details=dict(details)
        )

    def _held_event(self, **fields: Any) -> OutFrame:
        """The next frame number, for an event kept in the outbox until the hub acknowledges it."""
        self.seq += 1
        event = Event(node=self.spec.node, session=self.session, seq=self.seq, **fields)
        return OutFrame(self.seq, self._encode(event), 0, Priority.EVENT)

    # state

    def snapshot(self) -> bytes:
        alerts = self.alerts.snapshot() if self.alerts else b""
        anomalies = self.anomalies.snapshot() if self.anomalies else b""
        return cbor2.dumps(
            {
                "start_ms": self.spec.start_ms,
                "session": self.session,
                "bank": self.bank.snapshot(),
                "alerts": alerts,
                "anomalies": anomalies,
            }
        )

    def restore(self, data: bytes) -> None:
        """Carry on from a snapshot of an earlier session of the same gateway."""
        state = cbor2.loads(data)
        if state["start_ms"] != self.spec.start_ms:
            raise ValueError("SiteSampler.restore: the snapshot is of a sampler with another start_ms")
        self.bank.restore(state["bank"])
        if self.alerts and state["alerts"]:
            self.alerts.restore(state["alerts"])
        if self.anomalies and state.get("anomalies"):  # older snapshots have no detector state: it learns anew
            self.anomalies.restore(state["anomalies"])


def saved_spec_fields(data: bytes) -> tuple[int, int]:
    """(start_ms, session) of a snapshot: a restarted gateway rebuilds its devices from them."""
    state = cbor2.loads(data)
    return int(state["start_ms"]), int(state["session"])
