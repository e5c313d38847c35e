"""DDSketch: quantiles with a relative-error guarantee, mergeable, small enough to ship in a message.

A value ``x > 0`` goes to bucket ``ceil(log_gamma(x))`` with ``gamma = (1 + alpha) / (1 - alpha)``;
the bucket's representative ``2 gamma^i / (gamma + 1)`` is within ``alpha * x`` of every value in
it, so ``quantile(q)`` is within ``alpha`` (relative) of the true lower q-quantile (the value of
rank ``floor(q * (n - 1))``). Negative values use a mirrored store, exact zeros a counter. Min and
max are kept exactly and quantiles are clamped to them (which only brings an estimate closer).

Each store keeps at most ``max_buckets``; past that its lowest (smallest-magnitude) buckets fold
into the lowest one kept, so the guarantee then holds for values away from zero. At alpha 1 % the
default 2,048 buckets span a ratio of about 6e17 between the smallest and largest magnitude, which
no physical sensor reaches. Folding keeps the top ``max_buckets`` indices of the union either way,
so merging sketches still gives exactly the buckets of a sketch of all the values.

Buckets come from numpy's ``log``; a scalar ``add`` goes through the same vectorised path, so a
value lands in the same bucket however it was added.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from pymonitor.messages.varint import VarintError, read_varints, unzigzag, write_varints, zigzag

from .errors import SummaryError

DEFAULT_ALPHA = 0.01
DEFAULT_MAX_BUCKETS = 2048
FORMAT_VERSION = 1


def _encode_store(store: dict[int, int]) -> bytes:
    """Sorted buckets as varint pairs: zigzag delta of the index, then the count."""
    out = bytearray()
    prev = 0
    for index in sorted(store):
        write_varints((zigzag(index - prev), store[index]), out)
        prev = index
    return bytes(out)


def _decode_store(data: bytes, field: str) -> dict[int, int]:
    try:
        numbers = read_varints(data)
    except VarintError as exc:
        raise SummaryError(f"sketch at {field}: {exc}") from None
    if len(numbers) % 2:
        raise SummaryError(f"sketch at {field}: truncated bucket list")
    store: dict[int, int] = {}
    index = 0
    for delta, count in zip(numbers[::2], numbers[1::2], strict=True):
        index += unzigzag(delta)
        if count <= 0:
            raise SummaryError(f"sketch at {field}: bucket {index} has count {count}")
        store[index] = count
    return store


class DDSketch:
    """A mergeable quantile sketch with relative accuracy ``alpha``; see the module docstring."""

    __slots__ = ("_log_gamma", "alpha", "gamma", "max", "max_buckets", "min", "neg", "pos", "zero")

    def __init__(self, alpha: float = DEFAULT_ALPHA, max_buckets: int = DEFAULT_MAX_BUCKETS) -> None:
        if not 0.0 < alpha < 1.0:
            raise SummaryError(f"sketch at alpha: expected 0 < alpha < 1, got {alpha!r}")
        if max_buckets < 2:
            raise SummaryError(f"sketch at max_buckets: expected at least 2, got {max_buckets!r}")
        self.alpha = float(alpha)
        self.max_buckets = int(max_buckets)
        self.gamma = (1.0 + alpha) / (1.0 - alpha)
        self._log_gamma = math.log(self.gamma)
        self.pos: dict[int, int] = {}
        self.neg: dict[int, int] = {}  # keyed by the bucket of |x|
        self.zero = 0
        self.min = math.inf
        self.max = -math.inf

    @property
    def count(self) -> int:
        return self.zero + sum(self.pos.values()) + sum(self.neg.values())

    def add(self, value: float) -> None:
        """Add one finite value."""
        self.add_many(np.array([value], dtype=np.float64))

    def add_many(self, values: npt.ArrayLike) -> None:
        """Add finite values in one vectorised pass; a NaN or inf is refused, naming its index."""
        arr = np.asarray(values, dtype=np.float64).ravel()
        if arr.size == 0:
            return
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise SummaryError(f"sketch at values[{int(bad[0])}]: expected a finite number, got {arr[bad[0]]!r}")
        self.min = min(self.min, float(arr.min()))
        self.max = max(self.max, float(arr.max()))
        self.zero += int(np.count_nonzero(arr == 0.0))
        for store, part in ((self.pos, arr[arr > 0.0]), (self.neg, -arr[arr < 0.0])):
            if part.size:
                indices, counts = np.unique(self.bucket_indices(part), return_counts=True)
                for index, count in zip(indices.tolist(), counts.tolist(), strict=True):
                    store[index] = store.get(index, 0) + count
                self._collapse(store)

    def bucket_indices(self, magnitudes: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """Bucket index of each positive magnitude (exposed so batch passes can bucket once)."""
        return np.ceil(np.log(magnitudes) / self._log_gamma).astype(np.int64)

    def add_buckets(self, positive: dict[int, int], negative: dict[int, int], zero: int, lo: float, hi: float) -> None:
        """Add counts already bucketed with :meth:`bucket_indices` (with their exact min and max)."""
        for store, extra in ((self.pos, positive), (self.neg, negative)):
            for index, count in extra.items():
                store[index] = store.get(index, 0) + count
            self._collapse(store)
        self.zero += zero
        self.min, self.max = min(self.min, lo), max(self.max, hi)

    def _collapse(self, store: dict[int, int]) -> None:
        if len(store) <= self.max_buckets:
            return
        keys = sorted(store)
        floor = keys[-self.max_buckets]
        folded = sum(store.pop(k) for k in keys[: -self.max_buckets])
        store[floor] += folded

    def merge(self, other: DDSketch) -> None:
        """Add another sketch's values; both must have the same alpha and bucket bound."""
        if (other.alpha, other.max_buckets) != (self.alpha, self.max_buckets):
            raise SummaryError(
                f"sketch at alpha: cannot merge alpha {other.alpha}/{other.max_buckets} buckets "
                f"into {self.alpha}/{self.max_buckets}"
            )
        self.add_buckets(other.pos, other.neg, other.zero, other.min, other.max)

    def copy(self) -> DDSketch:
        twin = DDSketch(self.alpha, self.max_buckets)
        twin.merge(self)
        return twin

    def _value(self, index: int) -> float:
        return 2.0 * math.exp(index * self._log_gamma) / (self.gamma + 1.0)

    def quantile(self, q: float) -> float:
        """The lower q-quantile within ``alpha``; an empty sketch raises :class:`SummaryError`."""
        if not 0.0 <= q <= 1.0:
            raise SummaryError(f"sketch at q: expected 0 <= q <= 1, got {q!r}")
        n = self.count
        if n == 0:
            raise SummaryError("sketch is empty: no quantile of zero values")
        rank = math.floor(q * (n - 1))
        if rank == 0:
            return self.min  # the extremes are kept exactly
        if rank == n - 1:
            return self.max
        seen = 0
        for index in sorted(self.neg, reverse=True):
            seen += self.neg[index]
            if seen > rank:
                return self._clamp(-self._value(index))
        seen += self.zero
        if seen > rank:
            return self._clamp(0.0)
        for index in sorted(self.pos):
            seen += self.pos[index]
            if seen > rank:
                return self._clamp(self._value(index))
        return self.max  # unreachable with consistent counts

    def _clamp(self, value: float) -> float:
        return min(max(value, self.min), self.max)

    def buckets(self) -> tuple[dict[int, int], dict[int, int], int]:
        """Positive store, negative store, zero count (copies; for comparisons and tests)."""
        return dict(self.pos), dict(self.neg), self.zero

    def to_dict(self) -> dict[str, Any]:
        """CBOR-native form: ints, floats and two byte strings of varint bucket pairs."""
        out: dict[str, Any] = {"v": FORMAT_VERSION, "a": self.alpha, "m": self.max_buckets, "z": self.zero}
        if self.pos:
            out["p"] = _encode_store(self.pos)
        if self.neg:
            out["n"] = _encode_store(self.neg)
        if self.count:
            out["lo"], out["hi"] = self.min, self.max
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DDSketch:
        """Inverse of :meth:`to_dict`; malformed input raises :class:`SummaryError` naming the key."""
        if not isinstance(data, dict):
            raise SummaryError(f"sketch: expected a map, got {type(data).__name__}")
        if data.get("v") != FORMAT_VERSION:
            raise SummaryError(f"sketch at v: expected format {FORMAT_VERSION}, got {data.get('v')!r}")
        for key, kind in (("a", float), ("m", int), ("z", int)):
            if not isinstance(data.get(key), kind) or isinstance(data.get(key), bool):
                raise SummaryError(f"sketch at {key}: expected {kind.__name__}, got {data.get(key)!r}")
        sketch = cls(data["a"], data["m"])
        if data["z"] < 0:
            raise SummaryError(f"sketch at z: expected a count >= 0, got {data['z']}")
        sketch.zero = data["z"]
        for key, store in (("p", sketch.pos), ("n", sketch.neg)):
            raw = data.get(key, b"")
            if not isinstance(raw, bytes):
                raise SummaryError(f"sketch at {key}: expected bytes, got {type(raw).__name__}")
            store.update(_decode_store(raw, key))
            if len(store) > sketch.max_buckets:
                raise SummaryError(f"sketch at {key}: {len(store)} buckets, more than m={sketch.max_buckets}")
        if sketch.count:
            for key in ("lo", "hi"):
                if not isinstance(data.get(key), float) or not math.isfinite(data[key]):
                    raise SummaryError(f"sketch at {key}: expected a finite float, got {data.get(key)!r}")
            sketch.min, sketch.max = data["lo"], data["hi"]
        return sketch

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DDSketch):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def sketch_of(values: Iterable[float], alpha: float = DEFAULT_ALPHA) -> DDSketch:
    """A sketch of some values (convenience for tests and one-off summaries)."""
    sketch = DDSketch(alpha)
    sketch.add_many(np.fromiter(values, dtype=np.float64))
    return sketch
