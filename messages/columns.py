"""Packed columns for batches: little-endian fixed-width arrays, integers delta-coded.

Packing a column costs one C-level pass (``array``), and delta-coded timestamps and
sequence numbers are mostly small repeated values, which a compressor shrinks well.
"""

from __future__ import annotations

import math
import operator
import sys
from array import array
from collections.abc import Iterable, Sequence
from itertools import accumulate

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
