"""The one codec: message dataclass <-> CBOR frame ``{"t": tag, **fields}``.

Decoding validates everything and raises only :class:`MessageError`, whatever the bytes.
Unknown fields are ignored so that a newer sender (a field added with a default) still
talks to an older receiver; a missing required field is an error.
"""

from __future__ import annotations

from typing import Any, TypeVar

import cbor2

from .errors import MessageError
from .packing import PackedFrame, pack, unpack
from .registry import spec_for_class, spec_for_tag

MAX_FRAME_BYTES = 4 * 1024 * 1024
"""Frames above this size are refused before parsing (a gateway batch is far smaller)."""

M = TypeVar("M")


def _refuse_tag(*args: Any) -> Any:
    # cbor2 5 calls hook(decoder, tag); cbor2 6 calls hook(tag, immutable): find the tag either way.
    tag = next((a for a in args if isinstance(a, cbor2.CBORTag)), None)
    number = tag.tag if tag is not None else "?"
    raise MessageError(f"CBOR tag {number} is not allowed in a frame")


def encode(msg: object) -> bytes:
    """Encode a registered message as a CBOR frame."""
    spec = spec_for_class(type(msg))
    if spec is None:
        raise MessageError(f"{type(msg).__name__} is not a registered message")
    body: dict[str, Any] = {"t": spec.tag}
    for field in spec.fields:
        body[field.name] = getattr(msg, field.name)
    try:
        return cbor2.dumps(body)
    except (cbor2.CBOREncodeError, TypeError, ValueError) as exc:
        raise MessageError(f"cannot encode: {exc}", tag=spec.tag) from None


def decode_unpacked(frame: bytes, *, max_bytes: int = MAX_FRAME_BYTES) -> Any:
    """Like :func:`decode`, but a ``frame.packed.v1`` envelope is inflated and its frame decoded.

    What receivers use: a sender may compress any frame.
    """
    msg = decode(frame, max_bytes=max_bytes)
    if not isinstance(msg, PackedFrame):
        return msg
    try:
        inner = decode(unpack(msg, max_bytes), max_bytes=max_bytes)
    except MessageError as exc:
        raise MessageError(f"inside frame.packed.v1: {exc}") from None
    if isinstance(inner, PackedFrame):
        raise MessageError("a packed frame inside a packed frame", tag="frame.packed.v1", path="$.body")
    return inner


def encode_packed(msg: object, codec: str = "zstd") -> bytes:
    """Encode a message and wrap it in a compressed ``frame.packed.v1`` envelope."""
    return encode(pack(encode(msg), codec))


def decode(frame: bytes, *, max_bytes: int = MAX_FRAME_BYTES) -> Any:
    """Decode and validate a CBOR frame into its registered message instance."""
    if len(frame) > max_bytes:
        raise MessageError(f"frame of {len(frame)} bytes exceeds the limit of {max_bytes} bytes")
    try:
        body = cbor2.loads(frame, tag_hook=_refuse_tag)
    except MessageError:
        raise
    except Exception as exc:  # noqa: BLE001 - cbor2 raises many types on garbage; all mean "not CBOR"
        inner = exc.__cause__ or exc.__context__
        if isinstance(inner, MessageError):  # our tag hook, wrapped by cbor2
            raise MessageError(inner.reason) from None
        raise MessageError(f"not a CBOR frame ({type(exc).__name__}: {exc})") from None
    if type(body) is not dict:
        raise MessageError(f"expected a map with a 't' tag, got {type(body).__name__}")
    tag = body.get("t")
    if type(tag) is not str:
        raise MessageError(f"expected str, got {type(tag).__name__}", path="$.t")
    spec = spec_for_tag(tag)
    if spec is None:
        raise MessageError(f"unknown message tag {tag[:60]!r}", path="$.t")
    kwargs: dict[str, Any] = {}
    for field in spec.fields:
        if field.name in body:
            try:
                kwargs[field.name] = field.validate(body[field.name], f"$.{field.name}")
            except MessageError as exc:
                raise MessageError(exc.reason, tag=tag, path=exc.path) from None
        elif field.required:
            raise MessageError("missing required field", tag=tag, path=f"$.{field.name}")
    try:
        return spec.cls(**kwargs)
    except MessageError as exc:
        raise MessageError(exc.reason, tag=tag, path=exc.path) from None
    except (TypeError, ValueError) as exc:
        raise MessageError(str(exc), tag=tag) from None


def decode_as(frame: bytes, cls: type[M], *, max_bytes: int = MAX_FRAME_BYTES) -> M:
    """Decode a frame that must be of one message class."""
    msg = decode(frame, max_bytes=max_bytes)
    if not isinstance(msg, cls):
        spec = spec_for_class(cls)
        want = spec.tag if spec else cls.__name__
        raise MessageError(f"expected a {want} frame, got {type(msg).__name__}", path="$.t")
    return msg
