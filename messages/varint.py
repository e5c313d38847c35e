"""Unsigned LEB128 varints and zigzag signs: the small-integer coding of sketch buckets.

Shared by the sketch's own compact form and the ``summary.batch.v1`` sketch column, so one
reader decides what a malformed varint is.
"""

from __future__ import annotations

from collections.abc import Iterable

MAX_VARINT_BYTES = 10  # 70 bits: a 64-bit value always fits


class VarintError(ValueError):
    """Bytes that are not a whole list of varints (the message says which way)."""


def zigzag(n: int) -> int:
    """A signed int as an unsigned one, small magnitudes staying small (0, -1, 1, -2 -> 0, 1, 2, 3)."""
    return (n << 1) ^ (n >> 63)


def unzigzag(z: int) -> int:
    return (z >> 1) ^ -(z & 1)


def write_varints(numbers: Iterable[int], out: bytearray) -> None:
    """Append each non-negative int as a varint, 7 bits a byte, low bits first."""
    for number in numbers:
        while number >= 0x80:
            out.append((number & 0x7F) | 0x80)
            number >>= 7
        out.append(number)


def read_varints(data: bytes) -> list[int]:
    """Every varint of ``data``; raises :class:`VarintError` for one over 10 bytes or one cut short."""
    numbers: list[int] = []
    number = shift = 0
    for byte in data:
        number |= (byte & 0x7F) << shift
        shift += 7
        if shift > 7 * MAX_VARINT_BYTES:
            raise VarintError(f"varint longer than {MAX_VARINT_BYTES} bytes")
        if not byte & 0x80:
            numbers.append(number)
            number = shift = 0
    if shift:
        raise VarintError("the last varint is cut short")
    return numbers
