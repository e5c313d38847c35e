"""Varints and zigzag: the small-integer coding under the sketch buckets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymonitor.messages.varint import VarintError, read_varints, unzigzag, write_varints, zigzag


@given(st.lists(st.integers(0, 2**64 - 1)))
def test_varints_round_trip(numbers: list[int]) -> None:
    out = bytearray()
    write_varints(numbers, out)
    assert read_varints(bytes(out)) == numbers


@given(st.integers(-(2**63), 2**63 - 1))
def test_zigzag_round_trips_and_keeps_small_magnitudes_small(n: int) -> None:
    assert unzigzag(zigzag(n)) == n
    assert zigzag(n) <= 2 * abs(n)


def test_bad_varints_say_what_is_wrong() -> None:
    with pytest.raises(VarintError, match="longer than 10 bytes"):
        read_varints(b"\xff" * 11)
    with pytest.raises(VarintError, match="cut short"):
        read_varints(b"\x05\x80")
