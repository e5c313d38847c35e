"""Typed messages and their one CBOR codec.

Errors: every failure to encode or decode raises :class:`MessageError`, which names the
message tag and the path (``$.values[3]``) where the frame was wrong.
"""

from .codec import MAX_FRAME_BYTES, decode, decode_as, decode_unpacked, encode, encode_packed
from .commands import Command, CommandAck, DeliveryAck, to_ranges
from .config import ConfigDesired, ConfigReport
from .errors import MessageError
from .events import SEVERITIES, DeadLetter, Event
from .lifecycle import NodeBirth, NodeDeath
from .packing import PackedFrame
from .readings import BatchColumns, ReadingBatch
from .registry import message, registered_tags
from .requests import RawRequest
from .signed import SignedCommand
from .summaries import SummaryBatch, SummaryRow
from .validate import CborValue
from .views import to_view

__all__ = [
    "MAX_FRAME_BYTES",
    "SEVERITIES",
    "BatchColumns",
    "CborValue",
    "Command",
    "CommandAck",
    "ConfigDesired",
    "ConfigReport",
    "DeadLetter",
    "DeliveryAck",
    "Event",
    "MessageError",
    "NodeBirth",
    "NodeDeath",
    "PackedFrame",
    "RawRequest",
    "ReadingBatch",
    "SignedCommand",
    "SummaryBatch",
    "SummaryRow",
    "decode",
    "decode_as",
    "decode_unpacked",
    "encode",
    "encode_packed",
    "message",
    "registered_tags",
    "to_ranges",
    "to_view",
]
