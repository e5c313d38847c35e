"""Columnar window summaries: what a remote node uplinks instead of (or before) its raw readings.

One row is one closed window of one (device, metric) series: its start, sample count, extremes,
sum, first and last values, the sum of squared deviations (``m2``, so moments merge exactly at
the hub) and a compact DDSketch of the values (quantiles within ``alpha``, relative).

With ``value_scale`` (one resolution per metric, as in a reading batch) ``min``, ``max``,
``sum``, ``first`` and ``last`` travel as int64 counts of the row's metric step: exact for values
on a sensor's grid, and far more compressible than float64; ``m2`` then travels as the int64
``count * m2 / scale**2`` (``n * sum(k*k) - sum(k)**2`` of the steps ``k``: an exact integer).
Without it every one of those columns is float64.

A sketch is varints: the zero count, a header per store (positive, then negative, keyed by the
bucket of ``|x|``), then each store's buckets: when they sit close together, dense (zigzag delta
of the first index, then one count per index up to the last, zeros included; header
``span << 1 | 1``), else (zigzag index delta, count) pairs (header ``buckets << 1``). Each
store's first delta is taken from a base the receiver can compute too: the bucket of ``|min|``
(positive store, when min > 0) or of ``|max|`` (negative store, when max < 0), else 0, so it is
usually 0. Min and max come from their columns, alpha from the batch.

An empty sketch (``b""``) means the row carries none: the node's ``[summary]`` config asks no
quantile of that metric, and the sketch is about half a row's bytes. Such a row answers every
function but quantiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .columns import dequantize
from .errors import MessageError
from .readings import INT64_BYTES, INT64_MAX, UINT32_BYTES, check_scales, min_max
from .registry import message
from .varint import VarintError, read_varints, unzigzag, write_varints, zigzag

TAG = "summary.batch.v1"
STAT_COLUMNS = ("min", "max", "sum", "first", "last")
"""Columns carried as int64 steps when ``value_scale`` is given (float64 otherwise)."""


def sketch_bases(alpha: float, lo: float, hi: float) -> tuple[int, int]:
    """Where the positive and negative stores' index deltas start (see the module docstring)."""
    log_gamma = math.log((1.0 + alpha) / (1.0 - alpha))
    pos = int(np.ceil(np.log(np.float64(lo)) / log_gamma)) if lo > 0.0 and math.isfinite(lo) else 0
    neg = int(np.ceil(np.log(np.float64(-hi)) / log_gamma)) if hi < 0.0 and math.isfinite(hi) else 0
    return pos, neg


def _store_numbers(store: dict[int, int], base: int) -> tuple[int, list[int]]:
    """(header, numbers): dense counts from the first bucket when the buckets sit close together
    (header ``span << 1 | 1``), else (index delta, count) pairs (header ``buckets << 1``)."""
    if not store:
        return 0, []
    keys = sorted(store)
    span = keys[-1] - keys[0] + 1
    delta = keys[0] - base
    if span <= 2 * len(keys):
        return span << 1 | 1, [zigzag(delta), *(store.get(k, 0) for k in range(keys[0], keys[-1] + 1))]
    numbers: list[int] = []
    prev = base
    for index in keys:
        delta = index - prev
        prev = index
        numbers += (zigzag(delta), store[index])
    return len(keys) << 1, numbers


def pack_sketch(
    positive: dict[int, int], negative: dict[int, int], zero: int, bases: tuple[int, int] = (0, 0)
) -> bytes:
    """A sketch's buckets in the compact form described in the module docstring."""
    pos_header, pos = _store_numbers(positive, bases[0])
    neg_header, neg = _store_numbers(negative, bases[1])
    out = bytearray()
    write_varints([zero, pos_header, neg_header, *pos, *neg], out)
    return bytes(out)


def _read_store(numbers: list[int], at: int, header: int, base: int, path: str) -> tuple[dict[int, int], int]:
    n, dense = header >> 1, header & 1
    need = (1 + n) if dense else 2 * n
    if n and at + need > len(numbers):
        raise MessageError("truncated sketch", tag=TAG, path=path)
    store: dict[int, int] = {}
    if not n:
        return store, at
    if dense:
        first = base + unzigzag(numbers[at])
        counts = numbers[at + 1 : at + need]
        if not counts[0] or not counts[-1]:
            raise MessageError("a dense store must start and end with a full bucket", tag=TAG, path=path)
        store = {first + i: c for i, c in enumerate(counts) if c}
        return store, at + need
    index = base
    for delta, count in zip(numbers[at : at + need : 2], numbers[at + 1 : at + need : 2], strict=True):
        index += unzigzag(delta)
        if count <= 0 or index in store:
            raise MessageError(f"bucket {index} is empty or repeated", tag=TAG, path=path)
        store[index] = count
    return store, at + need


def unpack_sketch(
    data: bytes, path: str = "$.sketches", bases: tuple[int, int] = (0, 0)
) -> tuple[dict[int, int], dict[int, int], int]:
    """Inverse of :func:`pack_sketch`: (positive, negative, zero); malformed bytes raise naming ``path``."""
    try:
        numbers = read_varints(data)
    except VarintError as exc:
        raise MessageError(str(exc), tag=TAG, path=path) from None
    if len(numbers) < 3:
        raise MessageError("truncated sketch", tag=TAG, path=path)
    zero, pos_header, neg_header = numbers[:3]
    positive, at = _read_store(numbers, 3, pos_header, bases[0], path)
    negative, at = _read_store(numbers, at, neg_header, bases[1], path)
    if at != len(numbers):
        raise MessageError(f"{len(numbers) - at} numbers after the buckets", tag=TAG, path=path)
    return positive, negative, zero


@dataclass(frozen=True, slots=True)
class SummaryRow:
    """One window of one series, unpacked (``mean`` and ``stddev`` follow from the columns)."""

    device: str
    metric: str
    start_ms: int
    count: int
    min: float
    max: float
    sum: float
    first: float
    last: float
    m2: float
    positive: dict[int, int]
    negative: dict[int, int]
    zero: int
    sketched: bool = True  # False: the row carries no sketch (no quantiles were asked of its metric)

    @property
    def mean(self) -> float:
        return self.sum / self.count

    @property
    def stddev(self) -> float:
        return math.sqrt(max(self.m2, 0.0) / self.count)


@message(TAG)
@dataclass(frozen=True, slots=True, kw_only=True)
class SummaryBatch:
    """Closed tumbling windows of many (device, metric) series, columnar; see the module docstring.

    ``(node, session, seq)`` identifies the frame for dedup and acknowledgement, in the node's
    one seq space. ``late`` counts samples that arrived after their window had closed (since the
    previous batch): they are in no row, and this says how many.
    """

    node: str
    session: int
    seq: int
    devices: list[str]
    metrics: list[str]
    window_ms: int
    alpha: float  # the sketches' relative accuracy
    rows: int
    device_index: bytes  # uint32 LE per row
    metric_index: bytes  # uint32 LE per row
    window_start_ms: bytes  # int64 LE per row, delta-coded
    count: bytes  # int64 LE per row, >= 1
    min: bytes  # per row: float64 LE, or int64 LE steps of value_scale[metric]
    max: bytes
    sum: bytes
    first: bytes
    last: bytes
    m2: bytes  # per row: float64 LE sum of squared deviations from the mean, or int64 (see module docstring)
    sketches: list[bytes]  # one per row, see pack_sketch
    value_scale: list[float] = field(default_factory=list)  # optional: per metric resolution
    late: int = 0

    def __post_init__(self) -> None:
        for name in ("session", "seq", "rows", "late"):
            if not 0 <= getattr(self, name) <= INT64_MAX:
                raise MessageError("must be from 0 to 2**63-1 (a signed 64-bit integer)", path=f"$.{name}")
        if self.window_ms <= 0:
            raise MessageError(f"must be positive, got {self.window_ms}", path="$.window_ms")
        if not 0.0 < self.alpha < 1.0:
            raise MessageError(f"expected 0 < alpha < 1, got {self.alpha!r}", path="$.alpha")
        check_scales(self.value_scale, len(self.metrics))
        widths = {"device_index": UINT32_BYTES, "metric_index": UINT32_BYTES}
        for name in ("window_start_ms", "count", *STAT_COLUMNS, "m2"):
            widths[name] = INT64_BYTES
        for name, width in widths.items():
            size = len(getattr(self, name))
            if size != self.rows * width:
                raise MessageError(f"{size} bytes do not hold {self.rows} rows of {width} bytes", path=f"$.{name}")
        if len(self.sketches) != self.rows:
            raise MessageError(f"{len(self.sketches)} sketches for {self.rows} rows", path="$.sketches")
        if not self.rows:
            return
        for name, names in (("device_index", self.devices), ("metric_index", self.metrics)):
            if int(np.frombuffer(getattr(self, name), dtype="<u4").max()) >= len(names):
                raise MessageError(f"index beyond the {len(names)} listed", path=f"$.{name}")
        if not -(2**63) <= min_max(self.window_start_ms) <= INT64_MAX:
            raise MessageError("values leave the 64-bit range", path="$.window_start_ms")
        counts = np.frombuffer(self.count, dtype="<i8")
        if counts.min() < 1:
            raise MessageError(f"must be >= 1, got {int(counts.min())}", path=f"$.count[{int(counts.argmin())}]")
        lows, highs = self.stat("min").tolist(), self.stat("max").tolist()
        for i, (data, n) in enumerate(zip(self.sketches, counts.tolist(), strict=True)):
            if not data:
                continue  # no quantiles asked of this metric
            pos, neg, zero = unpack_sketch(data, f"$.sketches[{i}]", sketch_bases(self.alpha, lows[i], highs[i]))
            held = zero + sum(pos.values()) + sum(neg.values())
            if held != n:
                raise MessageError(f"holds {held} values, count says {n}", path=f"$.sketches[{i}]")

    def stat(self, name: str) -> npt.NDArray[np.float64]:
        """One of min, max, sum, first, last, m2 as floats per row (steps scaled back)."""
        if not self.value_scale:
            return np.frombuffer(getattr(self, name), dtype="<f8").astype(np.float64)
        steps = np.frombuffer(getattr(self, name), dtype="<i8").astype(np.int64)
        metric = np.frombuffer(self.metric_index, dtype="<u4")
        out = np.empty(self.rows, dtype=np.float64)
        counts = np.frombuffer(self.count, dtype="<i8")
        for m, scale in enumerate(self.value_scale):
            sel = metric == m
            if name == "m2":
                out[sel] = steps[sel] * (scale * scale) / counts[sel]
            else:
                out[sel] = dequantize(steps[sel], scale)
        return out

    def unpacked(self) -> list[SummaryRow]:
        """Every row, decoded."""
        dev = np.frombuffer(self.device_index, dtype="<u4").tolist()
        met = np.frombuffer(self.metric_index, dtype="<u4").tolist()
        starts = np.cumsum(np.frombuffer(self.window_start_ms, dtype="<i8")).tolist()
        counts = np.frombuffer(self.count, dtype="<i8").tolist()
        stats = [self.stat(name).tolist() for name in (*STAT_COLUMNS, "m2")]
        out = []
        for i in range(self.rows):
            lo, hi, total, first, last, m2 = (column[i] for column in stats)
            bases = sketch_bases(self.alpha, lo, hi)
            data = self.sketches[i]
            pos, neg, zero = unpack_sketch(data, f"$.sketches[{i}]", bases) if data else ({}, {}, 0)
            out.append(
                SummaryRow(
                    device=self.devices[dev[i]],
                    metric=self.metrics[met[i]],
                    start_ms=starts[i],
                    count=counts[i],
                    min=lo,
                    max=hi,
                    sum=total,
                    first=first,
                    last=last,
                    m2=m2,
                    positive=pos,
                    negative=neg,
                    zero=zero,
                    sketched=bool(data),
                )
            )
        return out
