"""Anomalies a gateway finds in its devices' samples, rate-limited per series, as they are taken.

Pure: a block of samples goes in (rows in time order, NaN = not measured), the anomalies worth an
event come out, plus whether the block held any anomaly at all (its reading batch is then urgent).
A series raises at most one event per quiet period of *sample* time (``quiet_ms``, 1 h by default),
so a long disturbance does not flood a 2G link with events; the batch still carries every value.
Detector state and the last event time per series are part of the gateway's saved state.
"""

from __future__ import annotations

from dataclasses import dataclass

import cbor2
import numpy as np

from pymonitor.actors.anomaly.detector import DetectorParams
from pymonitor.actors.anomaly.fleet import ANOMALY_THRESHOLD, DetectorBank

from .models import METRICS, SampleBlock

ANOMALY_QUIET_MS = 3_600_000
_NEVER = np.iinfo(np.int64).min // 2  # "no event yet": far enough back that any quiet period has passed


@dataclass(frozen=True, slots=True)
class Anomaly:
    device: int  # index into the gateway's device list
    metric: str
    ts_ms: int
    value: float
    score: float


class AnomalyWatch:
    """Streaming anomaly scores for every (device, metric) of one gateway, and which deserve an event."""

    def __init__(
        self,
        devices: int,
        *,
        quiet_ms: int = ANOMALY_QUIET_MS,
        threshold: float = ANOMALY_THRESHOLD,
        params: DetectorParams | None = None,
    ) -> None:
        if quiet_ms < 0:
            raise ValueError(f"AnomalyWatch: quiet_ms must be >= 0, got {quiet_ms}")
        self.quiet_ms = quiet_ms
        self.bank = DetectorBank(devices, len(METRICS), params, threshold)
        self.last_event_ms = np.full(devices * len(METRICS), _NEVER, dtype=np.int64)
        self.suppressed = 0  # anomalies not raised as events because their series was in its quiet period

    def scan(self, block: SampleBlock) -> tuple[list[Anomaly], bool]:
        """(anomalies to raise as events, oldest first; whether ``block`` held any anomaly)."""
        found = self.bank.score(block.device_index, block.values)
        raised: list[Anomaly] = []
        for row, m in zip(found.anomaly_rows.tolist(), found.anomaly_metrics.tolist(), strict=True):
            device = int(block.device_index[row])
            ts = int(block.ts_ms[row])
            series = device * len(METRICS) + m
            if ts - int(self.last_event_ms[series]) < self.quiet_ms:
                self.suppressed += 1
                continue
            self.last_event_ms[series] = ts
            raised.append(Anomaly(device, METRICS[m], ts, float(block.values[m, row]), float(found.scores[m, row])))
        return raised, bool(found.anomaly_rows.size)

    def snapshot(self) -> bytes:
        return cbor2.dumps(
            {"bank": self.bank.snapshot(), "last_event_ms": self.last_event_ms.tobytes(), "suppressed": self.suppressed}
        )

    def restore(self, data: bytes) -> None:
        state = cbor2.loads(data)
        last = np.frombuffer(state["last_event_ms"], dtype=np.int64).copy()
        if last.shape != self.last_event_ms.shape:
            raise ValueError(f"AnomalyWatch.restore: {last.size} series, expected {self.last_event_ms.size}")
        self.bank.restore(state["bank"])
        self.last_event_ms = last
        self.suppressed = int(state["suppressed"])
