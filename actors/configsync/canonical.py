"""The one canonical encoding of config documents: what hashes and signatures are taken over."""

from __future__ import annotations

import hashlib
from typing import Any

import cbor2

from .errors import ConfigSyncError


def canonical_bytes(value: Any) -> bytes:
    """Canonical CBOR (sorted map keys, shortest forms): equal documents give equal bytes."""
    try:
        return bytes(cbor2.dumps(value, canonical=True))
    except (cbor2.CBOREncodeError, TypeError, ValueError) as exc:
        raise ConfigSyncError(f"value cannot be encoded canonically: {exc}") from None


def content_hash(doc: Any) -> str:
    """sha256 (hex) of the canonical encoding; what a node reports back to prove what it runs."""
    return hashlib.sha256(canonical_bytes(doc)).hexdigest()


def same_value(a: Any, b: Any) -> bool:
    """Equal as config values: 1, 1.0 and True differ (Python says equal); NaN equals NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b) or (isinstance(a, float) and a != a and b != b)
