"""Compressed frames: round trips, and every way a packed frame can lie is refused with the reason."""

from __future__ import annotations

import zlib

import pytest
import zstandard
from conftest import written

from pymonitor.actors.hub import HubCore
from pymonitor.actors.runtime.intake import Inbound
from pymonitor.broker import topics
from pymonitor.messages import (
    MessageError,
    PackedFrame,
    ReadingBatch,
    decode,
    decode_unpacked,
    encode,
    encode_packed,
)
from pymonitor.messages.packing import pack

BATCH = ReadingBatch.build(
    node="gw-1", session=1, seq=1, devices=[f"dev-{i}" for i in range(50)], metrics=["t", "h"],
    device_index=list(range(50)), device_seq=[1] * 50, ts_ms=[1_767_225_600_000 + i for i in range(50)],
    values=[[20.0 + i / 10 for i in range(50)], [50.0] * 50],
)  # fmt: skip


@pytest.mark.parametrize("codec", ["zstd", "zlib"])
def test_a_packed_batch_inflates_to_the_same_batch_and_is_smaller(codec: str) -> None:
    frame = encode_packed(BATCH, codec)
    assert decode_unpacked(frame) == BATCH
    assert isinstance(decode(frame), PackedFrame)  # the plain codec keeps the envelope
    assert len(frame) < len(encode(BATCH))


def test_plain_frames_pass_through_decode_unpacked() -> None:
    assert decode_unpacked(encode(BATCH)) == BATCH


def test_a_declared_size_over_the_limit_is_refused_before_inflating() -> None:
    frame = encode(pack(encode(BATCH)))
    limit = len(frame)  # the envelope fits; what it declares does not
    with pytest.raises(MessageError, match=rf"at \$\.size: declares \d+ bytes, over the limit of {limit}"):
        decode_unpacked(frame, max_bytes=limit)


@pytest.mark.parametrize("codec", ["zstd", "zlib"])
def test_a_body_that_inflates_past_its_declared_size_is_refused(codec: str) -> None:
    bomb = b"\x00" * 1_000_000
    body = zstandard.ZstdCompressor().compress(bomb) if codec == "zstd" else zlib.compress(bomb)
    frame = encode(PackedFrame(codec=codec, size=100, body=body))
    with pytest.raises(MessageError, match=r"\$\.(body|size)"):
        decode_unpacked(frame)


def test_a_corrupt_body_is_refused() -> None:
    frame = encode(PackedFrame(codec="zstd", size=10, body=b"not zstd at all"))
    with pytest.raises(MessageError, match=r"at \$\.body: cannot decompress"):
        decode_unpacked(frame)


def test_an_unknown_codec_is_refused() -> None:
    with pytest.raises(MessageError, match=r"at \$\.codec: expected one of zstd, zlib"):
        pack(b"x", "lz4")


def test_a_packed_frame_inside_a_packed_frame_is_refused() -> None:
    inner = encode(pack(encode(BATCH)))
    with pytest.raises(MessageError, match="packed frame inside a packed frame"):
        decode_unpacked(encode(pack(inner)))


def test_a_packed_frame_whose_inner_frame_is_bad_names_both_layers() -> None:
    with pytest.raises(MessageError, match=r"inside frame.packed.v1: .*not a CBOR frame"):
        decode_unpacked(encode(pack(b"\xff\xfe garbage")))


def test_the_hub_stores_a_packed_batch_like_a_plain_one() -> None:
    hub = HubCore("f", "hub", flush_max_frames=1)
    effects = hub.on_frame(Inbound(topics.up("f", "gw-1", "readings"), encode_packed(BATCH)), 1)
    assert written(effects) == [BATCH]
