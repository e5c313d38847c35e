"""Compressed frames: a ``frame.packed.v1`` envelope around any other frame.

The envelope says which compressor was used and how big the inner frame is, so a receiver can
refuse a decompression bomb before inflating it (the declared size must fit the frame limit, and
inflation stops at that size). ``decode`` unwraps envelopes transparently.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import zstandard

from .errors import MessageError
from .registry import message

CODECS = ("zstd", "zlib")
ZSTD_LEVEL = 9
ZLIB_LEVEL = 9


@message("frame.packed.v1")
@dataclass(frozen=True, slots=True, kw_only=True)
class PackedFrame:
    """An inner CBOR frame, compressed; ``size`` is the inner frame's length in bytes."""

    codec: str
    size: int
    body: bytes

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise MessageError(f"expected one of {', '.join(CODECS)}, got {self.codec!r}", path="$.codec")
        if self.size < 0:
            raise MessageError("must not be negative", path="$.size")


def pack(frame: bytes, codec: str = "zstd") -> PackedFrame:
    """Compress an encoded frame."""
    if codec == "zstd":
        body = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(frame)
    elif codec == "zlib":
        body = zlib.compress(frame, ZLIB_LEVEL)
    else:
        raise MessageError(f"expected one of {', '.join(CODECS)}, got {codec!r}", path="$.codec")
    return PackedFrame(codec=codec, size=len(frame), body=body)


def unpack(packed: PackedFrame, max_bytes: int) -> bytes:
    """The inner frame, refusing to inflate past ``max_bytes`` or past the declared size."""
    if packed.size > max_bytes:
        raise MessageError(f"declares {packed.size} bytes, over the limit of {max_bytes}", path="$.size")
    try:
        if packed.codec == "zstd":
            inner = zstandard.ZstdDecompressor().decompress(packed.body, max_output_size=packed.size)
        else:
            inflater = zlib.decompressobj()
            inner = inflater.decompress(packed.body, packed.size)
            if inflater.unconsumed_tail:
                raise MessageError("inflates past its declared size", path="$.body")
    except (zstandard.ZstdError, zlib.error) as exc:
        raise MessageError(f"cannot decompress: {exc}", path="$.body") from None
    if len(inner) != packed.size:
        raise MessageError(f"inflated to {len(inner)} bytes, declared {packed.size}", path="$.size")
    return inner
