"""Ed25519 signatures over config commands, with expiry and replay protection.

A hub signs a command body together with its key id, issue/expiry times and a per-issuer
sequence number, over one canonical CBOR encoding; a node verifies against the public keys
it trusts and refuses with one of five reasons (see :data:`RefusalReason`): unsigned,
unknown key, forged, stale, replayed. The key id is a short hash of the public key, so a
node needs nothing but the public key files to know who may configure it.

Pure apart from the key-file helpers: no clock reads (``now_ms`` is passed in).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .canonical import canonical_bytes
from .errors import ConfigSyncError, KeyFileError, SignatureError
from .files import replace_file

SIGNATURE_DOMAIN = "pymonitor.configsync.sig.v1"
"""Signed together with the fields, so a signature made for something else never verifies here."""

KEY_ID_HEX_CHARS = 16
CLOCK_SKEW_MS = 5 * 60_000
"""How far in the future ``issued_ms`` may be before the envelope counts as stale."""

REPLAY_WINDOW = 64
"""Sequences this far below an issuer's highest seen may still arrive (out of order) once."""

PRIVATE_KEY_MODE = 0o600


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedEnvelope:
    """A command body with who signed it, when, until when, its sequence and the signature.

    ``signature`` empty means unsigned. ``seq`` is per issuer and increases with each command
    the issuer signs (the hub keeps it across restarts, see ``ConfigStore.next_seq``).
    """

    body: dict[str, Any]
    key_id: str
    issued_ms: int
    expires_ms: int
    seq: int
    signature: bytes = b""


def key_id(public_key: Ed25519PublicKey) -> str:
    """The short id of a public key: the first hex digits of the sha256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:KEY_ID_HEX_CHARS]


def generate_key() -> Ed25519PrivateKey:
    """A fresh signing key (the hub's, or an operator's)."""
    return Ed25519PrivateKey.generate()


def trusted_keys(public_keys: Iterable[Ed25519PublicKey]) -> dict[str, Ed25519PublicKey]:
    """The trust set of a node: public keys by key id."""
    return {key_id(k): k for k in public_keys}


def signed_bytes(body: Mapping[str, Any], key: str, issued_ms: int, expires_ms: int, seq: int) -> bytes:
    """The canonical bytes a signature covers; raises :class:`SignatureError` if the body is not CBOR-native."""
    try:
        return canonical_bytes([SIGNATURE_DOMAIN, dict(body), key, issued_ms, expires_ms, seq])
    except ConfigSyncError as exc:
        raise SignatureError("forged", f"body: {exc}") from None


def sign(
    body: Mapping[str, Any], private_key: Ed25519PrivateKey, *, issued_ms: int, expires_ms: int, seq: int
) -> SignedEnvelope:
    """Sign ``body`` for delivery until ``expires_ms``; ``seq`` must grow per signing key."""
    if expires_ms <= issued_ms:
        raise ValueError(f"expires_ms ({expires_ms}) must be after issued_ms ({issued_ms})")
    kid = key_id(private_key.public_key())
    data = signed_bytes(body, kid, issued_ms, expires_ms, seq)
    return SignedEnvelope(
        body=dict(body),
        key_id=kid,
        issued_ms=issued_ms,
        expires_ms=expires_ms,
        seq=seq,
        signature=private_key.sign(data),
    )


@dataclass(slots=True)
class ReplayGuard:
    """Per-issuer replay window: the highest sequence seen plus the seen ones just below it.

    Bounded: at most ``window`` sequences per trusted issuer. A sequence at or below
    ``highest - window`` is refused as a replay even if never seen (too old to tell).
    Persist :meth:`snapshot` on the node so a restart does not reopen old sequences.
    """

    window: int = REPLAY_WINDOW
    _highest: dict[str, int] = field(default_factory=dict)
    _seen: dict[str, set[int]] = field(default_factory=dict)

    def check(self, issuer: str, seq: int) -> None:
        """Raise ``SignatureError("replayed")`` if ``seq`` was seen or is too old for the window."""
        highest = self._highest.get(issuer)
        if highest is None:
            return
        if seq <= highest - self.window:
            raise SignatureError("replayed", f"seq {seq} is older than the replay window (highest {highest})")
        if seq in self._seen[issuer]:
            raise SignatureError("replayed", f"seq {seq} of {issuer} was already accepted")

    def record(self, issuer: str, seq: int) -> None:
        """Remember an accepted sequence and forget those that fell out of the window."""
        seen = self._seen.setdefault(issuer, set())
        seen.add(seq)
        highest = max(seq, self._highest.get(issuer, seq))
        self._highest[issuer] = highest
        floor = highest - self.window
        self._seen[issuer] = {s for s in seen if s > floor}

    def snapshot(self) -> dict[str, int]:
        """The highest sequence per issuer, to persist (older ones are refused after a restore)."""
        return dict(self._highest)

    @classmethod
    def restore(cls, highest: Mapping[str, int], window: int = REPLAY_WINDOW) -> ReplayGuard:
        """A guard that refuses every sequence at or below the persisted highest ones."""
        guard = cls(window=window)
        for issuer, seq in highest.items():
            guard._highest[issuer] = seq
            guard._seen[issuer] = set(range(seq - window + 1, seq + 1))
        return guard


def verify(
    envelope: SignedEnvelope,
    trusted: Mapping[str, Ed25519PublicKey],
    replay: ReplayGuard,
    now_ms: int,
    *,
    skew_ms: int = CLOCK_SKEW_MS,
) -> None:
    """Accept the envelope (and record its sequence) or raise :class:`SignatureError` with the reason.

    Checks in order: signed at all, key trusted, signature valid, within its time window, not
    replayed; only a fully accepted envelope is recorded in ``replay``.
    """
    if not envelope.signature or not envelope.key_id:
        raise SignatureError("unsigned", "the envelope carries no signature")
    public_key = trusted.get(envelope.key_id)
    if public_key is None:
        raise SignatureError("unknown_key", f"key id {envelope.key_id!r} is not trusted by this node")
    data = signed_bytes(envelope.body, envelope.key_id, envelope.issued_ms, envelope.expires_ms, envelope.seq)
    try:
        public_key.verify(envelope.signature, data)
    except InvalidSignature:
        raise SignatureError("forged", f"signature does not match the content for key {envelope.key_id}") from None
    if now_ms >= envelope.expires_ms:
        raise SignatureError("stale", f"expired at {envelope.expires_ms}, now {now_ms}")
    if envelope.issued_ms > now_ms + skew_ms:
        raise SignatureError(
            "stale", f"issued at {envelope.issued_ms}, more than {skew_ms} ms after now ({now_ms}): check the clocks"
        )
    replay.check(envelope.key_id, envelope.seq)
    replay.record(envelope.key_id, envelope.seq)


def save_private_key(private_key: Ed25519PrivateKey, path: str | Path) -> None:
    """Write the key as unencrypted PKCS#8 PEM, readable by the owner only (0600), atomically."""
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        replace_file(Path(path), pem, mode=PRIVATE_KEY_MODE)
    except ConfigSyncError as exc:
        raise KeyFileError(f"cannot write private key: {exc}") from None


def save_public_key(public_key: Ed25519PublicKey, path: str | Path) -> None:
    """Write the public key as SubjectPublicKeyInfo PEM (what a node's trust directory holds)."""
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        Path(path).write_bytes(pem)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot write public key: {exc.strerror}") from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read: {exc.strerror}") from None


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """Read a PEM ed25519 private key; refuses other key types and group/world-readable files."""
    path = Path(path)
    data = _read(path)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise KeyFileError(f"{path}: private key is readable by others (mode {mode:o}); chmod 600 it")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: expected an ed25519 key, got {type(key).__name__}")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """Read a PEM ed25519 public key."""
    path = Path(path)
    data = _read(path)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path}: expected an ed25519 key, got {type(key).__name__}")
    return key


def load_trusted_keys(directory: str | Path) -> dict[str, Ed25519PublicKey]:
    """The trust set from every ``*.pem`` public key in a directory (a node's ``trusted_keys/``)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise KeyFileError(f"{directory}: not a directory of trusted public keys")
    return trusted_keys(load_public_key(p) for p in sorted(directory.glob("*.pem")))
