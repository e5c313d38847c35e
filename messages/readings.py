"""The columnar reading batch: many samples of many devices and metrics in one frame."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .columns import (
    NOT_MEASURED,
    pack_deltas,
    pack_floats,
    pack_indexes,
    pack_quantized,
    unpack_deltas,
    unpack_floats,
    unpack_indexes,
    unpack_quantized,
)
from .errors import MessageError
from .registry import message

INT64_BYTES = 8
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def min_max(packed: bytes) -> int:
    """The value furthest from zero in a delta-coded column (to check it stays in int64)."""
    values = unpack_deltas(packed)
    low, high = min(values), max(values)
    return low if -low > high else high


UINT32_BYTES = 4


def check_scales(scales: Sequence[float], metrics: int) -> None:
    """A ``value_scale`` must be empty (float64 columns) or one positive finite scale per metric."""
    if scales and len(scales) != metrics:
        raise MessageError(f"{len(scales)} scales for {metrics} metrics", path="$.value_scale")
    for i, scale in enumerate(scales):
        if not (math.isfinite(scale) and scale > 0.0):
            raise MessageError(f"must be positive and finite, got {scale!r}", path=f"$.value_scale[{i}]")


@dataclass(frozen=True, slots=True)
class BatchColumns:
    """A batch unpacked: row ``i`` is one sample of ``devices[device_index[i]]``."""

    device_index: Sequence[int]
    device_seq: list[int]
    ts_ms: list[int]
    values: list[Sequence[float]]  # one column per metric; NaN = not measured
    received_ms: list[int] | None = None  # when the gateway got each sample, if the batch says


@message("reading.batch.v1")
@dataclass(frozen=True, slots=True, kw_only=True)
class ReadingBatch:
    """Samples of many devices, as a gateway uplinks them; columns are packed arrays.

    A row is one sample: a device (index into ``devices``), that device's own 64-bit sample
    sequence number, the measurement time (ms since the Unix epoch, UTC, stamped on the
    device) and one value per metric (NaN where the metric was not measured). Optionally,
    ``received_ms`` says when the gateway got each sample, on its own (NTP-disciplined)
    clock: the pairs let the hub estimate and correct each device's clock.
    ``(node, session, seq)`` identifies the frame for dedup and acknowledgement.

    Values are float64 columns in ``values`` unless ``value_scale`` gives each metric's
    resolution (a sensor's ADC step: 0.01 degC, 1 mV): then ``values`` is empty and ``steps[i]``
    holds int64 counts of ``value_scale[i]`` (:data:`~.columns.NOT_MEASURED` where not measured),
    which is lossless for the sensor and carries no noise below its resolution, so it compresses
    several times better. The steps travel in their own field so that a receiver from before
    ``value_scale`` refuses such a frame (its ``values`` do not match its metrics) instead of
    reading integers as floats; the sender keeps the frame until a newer receiver acknowledges it.
    :meth:`columns` gives floats either way.
    """

    node: str
    session: int
    seq: int
    devices: list[str]
    metrics: list[str]
    rows: int
    device_index: bytes  # uint32 LE per row
    device_seq: bytes  # int64 LE per row, delta-coded
    ts_ms: bytes  # int64 LE per row, delta-coded
    values: list[bytes]  # per metric: float64 LE per row; empty when value_scale is given
    backfill: bool = False  # replayed from a store-and-forward outbox, not live
    received_ms: bytes = b""  # optional: int64 LE per row, delta-coded: when the gateway got the sample (its clock)
    value_scale: list[float] = field(default_factory=list)  # optional: per metric resolution (the ADC step)
    steps: list[bytes] = field(default_factory=list)  # with value_scale: per metric, int64 LE counts of its step

    def __post_init__(self) -> None:
        if self.rows < 0:
            raise MessageError("must not be negative", path="$.rows")
        for name in ("session", "seq"):
            if not 0 <= getattr(self, name) <= INT64_MAX:
                raise MessageError("must be from 0 to 2**63-1 (a signed 64-bit integer)", path=f"$.{name}")
        columns = [("device_index", UINT32_BYTES), ("device_seq", INT64_BYTES), ("ts_ms", INT64_BYTES)]
        if self.received_ms:
            columns.append(("received_ms", INT64_BYTES))
        for name, width in columns:
            size = len(getattr(self, name))
            if size != self.rows * width:
                raise MessageError(f"{size} bytes do not hold {self.rows} rows of {width} bytes", path=f"$.{name}")
        check_scales(self.value_scale, len(self.metrics))
        used, unused = ("steps", "values") if self.value_scale else ("values", "steps")
        if getattr(self, unused):
            raise MessageError(f"must be empty when {used} carries the columns", path=f"$.{unused}")
        if len(self.value_columns) != len(self.metrics):
            raise MessageError(f"{len(self.value_columns)} columns for {len(self.metrics)} metrics", path=f"$.{used}")
        kind = "int64" if self.value_scale else "float64"
        for i, column in enumerate(self.value_columns):
            if len(column) != self.rows * INT64_BYTES:
                raise MessageError(f"{len(column)} bytes do not hold {self.rows} {kind} rows", path=f"$.{used}[{i}]")
        if self.rows and max(unpack_indexes(self.device_index)) >= len(self.devices):
            raise MessageError(f"index beyond the {len(self.devices)} devices listed", path="$.device_index")
        for name in ("device_seq", "ts_ms", "received_ms"):
            if self.rows and getattr(self, name) and not INT64_MIN <= min_max(getattr(self, name)) <= INT64_MAX:
                raise MessageError("values leave the 64-bit range", path=f"$.{name}")

    @classmethod
    def build(
        cls,
        *,
        node: str,
        session: int,
        seq: int,
        devices: list[str],
        metrics: list[str],
        device_index: Sequence[int],
        device_seq: Sequence[int],
        ts_ms: Sequence[int],
        values: Sequence[Sequence[float | None]],
        backfill: bool = False,
        received_ms: Sequence[int] | None = None,
        value_scale: Sequence[float] | None = None,
    ) -> ReadingBatch:
        """Pack plain columns into a batch; values that do not fit the wire types raise MessageError.

        With ``value_scale`` (one resolution per metric) each value is rounded to the nearest step
        of its metric's scale and sent as an int64 count of steps.
        """
        scales = list(value_scale or ())
        check_scales(scales, len(metrics))
        where = "steps" if scales else "values"
        if scales and len(values) != len(scales):
            raise MessageError(f"{len(values)} columns for {len(metrics)} metrics", path=f"$.{where}")
        try:
            packed = {
                "device_index": pack_indexes(device_index),
                "device_seq": pack_deltas(device_seq),
                "ts_ms": pack_deltas(ts_ms),
                "received_ms": b"" if received_ms is None else pack_deltas(received_ms),
            }
        except OverflowError as exc:
            raise MessageError(f"a column value does not fit its wire type: {exc}", tag="reading.batch.v1") from None
        columns: list[bytes] = []
        for i, col in enumerate(values):
            try:
                columns.append(pack_quantized(col, scales[i]) if scales else pack_floats(col))
            except OverflowError as exc:
                raise MessageError(
                    f"does not fit int64 steps: {exc}", tag="reading.batch.v1", path=f"$.{where}[{i}]"
                ) from None
        return cls(
            node=node,
            session=session,
            seq=seq,
            devices=devices,
            metrics=metrics,
            rows=len(ts_ms),
            values=[] if scales else columns,
            steps=columns if scales else [],
            backfill=backfill,
            value_scale=scales,
            **packed,
        )

    @property
    def value_columns(self) -> list[bytes]:
        """The packed value columns, whichever field carries them (``steps`` or ``values``)."""
        return self.steps if self.value_scale else self.values

    def columns(self) -> BatchColumns:
        """Unpack the columns (one C-level pass each)."""
        return BatchColumns(
            device_index=unpack_indexes(self.device_index),
            device_seq=unpack_deltas(self.device_seq),
            ts_ms=unpack_deltas(self.ts_ms),
            values=[unpack_quantized(col, scale) for col, scale in zip(self.steps, self.value_scale, strict=True)]
            if self.value_scale
            else [unpack_floats(col) for col in self.values],
            received_ms=unpack_deltas(self.received_ms) if self.received_ms else None,
        )

    def measured(self) -> npt.NDArray[np.bool_]:
        """Shape ``(metrics, rows)``: True where a value was measured, whatever the column encoding.

        What code that reads the packed columns itself (not through :meth:`columns`) must use:
        a quantized column's "not measured" is an int64 sentinel, not a float NaN.
        """
        out = np.empty((len(self.value_columns), self.rows), dtype=np.bool_)
        for i, col in enumerate(self.value_columns):
            if self.value_scale:
                np.not_equal(np.frombuffer(col, dtype="<i8"), NOT_MEASURED, out=out[i])
            else:
                np.logical_not(np.isnan(np.frombuffer(col, dtype="<f8")), out=out[i])
        return out

    def reading_count(self) -> int:
        """How many values were measured (NaN cells are not readings)."""
        return int(np.count_nonzero(self.measured()))
