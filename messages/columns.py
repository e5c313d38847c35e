"""Packed columns for batches: little-endian fixed-width arrays, integers delta-coded.

Packing a column costs one C-level pass (``array`` or numpy), and delta-coded timestamps and
sequence numbers are mostly small repeated values, which a compressor shrinks well. Values are
float64, or int64 steps of a sensor's resolution (:func:`quantize`), which carry no noise below
that resolution and so compress far better.
"""

from __future__ import annotations

import math
import operator
import sys
from array import array
from collections.abc import Iterable, Sequence
from itertools import accumulate

import numpy as np
import numpy.typing as npt

_SWAP = sys.byteorder != "little"


def _to_bytes(arr: array) -> bytes:  # type: ignore[type-arg]
    if _SWAP:  # pragma: no cover - big-endian hosts only
        arr.byteswap()
    return arr.tobytes()


def _from_bytes(code: str, data: bytes) -> array:  # type: ignore[type-arg]
    arr = array(code)
    arr.frombytes(data)
    if _SWAP:  # pragma: no cover - big-endian hosts only
        arr.byteswap()
    return arr


def pack_deltas(values: Sequence[int]) -> bytes:
    """int64 deltas: the first value, then each value minus the one before."""
    if not values:
        return b""
    deltas = array("q", [values[0]])
    deltas.extend(map(operator.sub, values[1:], values[:-1]))
    return _to_bytes(deltas)


def unpack_deltas(data: bytes) -> list[int]:
    """Inverse of :func:`pack_deltas`."""
    return list(accumulate(_from_bytes("q", data)))


def pack_indexes(values: Iterable[int]) -> bytes:
    """uint32 indexes into a dictionary list (devices, metrics)."""
    return _to_bytes(array("I", values))


def unpack_indexes(data: bytes) -> array:  # type: ignore[type-arg]
    """Inverse of :func:`pack_indexes`, as a compact array."""
    return _from_bytes("I", data)


def pack_floats(values: Iterable[float | None]) -> bytes:
    """float64 values; None (not measured) is stored as NaN."""
    return _to_bytes(array("d", (math.nan if v is None else v for v in values)))


def unpack_floats(data: bytes) -> array:  # type: ignore[type-arg]
    """Inverse of :func:`pack_floats`; NaN means not measured."""
    return _from_bytes("d", data)


# Quantized values: int64 steps of a sensor's resolution (``value = step * scale``). Plain, not
# delta-coded: rows of a batch follow time across many devices, so neighbouring rows are different
# devices and their differences are no smaller than the values (measured on the simulator's fleet
# data, 4096-row zstd frames: delta-coding cost 10 % more bytes).

NOT_MEASURED = -(2**63)
"""The int64 a quantized column holds where a value was not measured (NaN)."""

_QUANTIZED_LIMIT = 2.0**63  # |steps| must stay below this to fit int64 (and not be the sentinel)


def _divisor(scale: float) -> int | None:
    """``n`` when ``scale`` is the float nearest ``1 / n`` (0.01, 0.001...), else None.

    Dividing by the integer gives the float nearest the decimal (2151 / 1000 is 2.151, where
    2151 * 0.001 is 2.1510000000000002), so quantized values read back as people write them.
    """
    if not 2.0**-53 <= scale <= 1.0:  # keeps n an integer a float holds exactly
        return None
    n = round(1.0 / scale)
    return n if 1.0 / n == scale else None


def quantize(values: npt.ArrayLike, scale: float) -> npt.NDArray[np.int64]:
    """Steps of ``scale`` nearest each value (half to even); NaN becomes :data:`NOT_MEASURED`.

    Raises OverflowError for an infinite value or one whose step count does not fit int64.
    """
    floats = np.asarray(values, dtype=np.float64)
    missing = np.isnan(floats)
    n = _divisor(scale)
    with np.errstate(over="ignore"):  # an overflow to inf is refused just below
        steps = np.rint(floats * n if n is not None else floats / scale)
    steps[missing] = 0.0
    bad = ~(np.abs(steps) < _QUANTIZED_LIMIT)  # also catches inf
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        value = float(floats[i])
        why = "is not finite" if math.isinf(value) else f"is 2**63 or more steps of {scale!r}"
        raise OverflowError(f"row {i}: {value!r} {why}")
    out = steps.astype(np.int64)
    out[missing] = NOT_MEASURED
    return out


def dequantize(steps: npt.NDArray[np.int64], scale: float) -> npt.NDArray[np.float64]:
    """Inverse of :func:`quantize`: the float nearest ``step * scale``; NaN for :data:`NOT_MEASURED`."""
    n = _divisor(scale)
    with np.errstate(over="ignore"):  # a huge scale gives inf, as a float64 column could say
        floats = steps / n if n is not None else steps * scale
    floats[steps == NOT_MEASURED] = np.nan
    return np.asarray(floats, dtype=np.float64)


def pack_quantized(values: Iterable[float | None], scale: float) -> bytes:
    """int64 steps of ``scale``; None and NaN (not measured) are stored as :data:`NOT_MEASURED`."""
    floats = np.fromiter((math.nan if v is None else v for v in values), dtype=np.float64)
    return quantize(floats, scale).astype("<i8").tobytes()


def unpack_quantized(data: bytes, scale: float) -> array:  # type: ignore[type-arg]
    """Inverse of :func:`pack_quantized` (floats, NaN where not measured), as :func:`unpack_floats` gives."""
    return _from_bytes("d", dequantize(np.frombuffer(data, dtype="<i8"), scale).astype("<f8").tobytes())
