"""Signing of config commands: ed25519 over canonical CBOR, with expiry and replay refusal."""

from __future__ import annotations

import dataclasses
import os
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from hypothesis import given
from hypothesis import strategies as st

from pymonitor.actors.configsync import (
    KeyFileError,
    ReplayGuard,
    SignatureError,
    generate_key,
    key_id,
    load_private_key,
    load_public_key,
    load_trusted_keys,
    save_private_key,
    save_public_key,
    sign,
    trusted_keys,
    verify,
)
from pymonitor.actors.configsync.signing import CLOCK_SKEW_MS, signed_bytes

NOW = 1_800_000_000_000
BODY = {"node": "gw-1", "version": 3, "doc": {"broker": {"url": "mqtt://hub:1883"}}}


@pytest.fixture(scope="module")
def key():
    return generate_key()


def _envelope(key, seq=1, issued=NOW, expires=NOW + 60_000, body=BODY):
    return sign(body, key, issued_ms=issued, expires_ms=expires, seq=seq)


def _refusal(envelope, trusted, guard=None, now=NOW):
    with pytest.raises(SignatureError) as info:
        verify(envelope, trusted, guard or ReplayGuard(), now)
    return info.value.reason


def test_signed_envelope_verifies_with_the_trusted_key(key):
    verify(_envelope(key), trusted_keys([key.public_key()]), ReplayGuard(), NOW)


def test_key_id_is_short_stable_hash_of_public_key(key):
    kid = key_id(key.public_key())
    assert len(kid) == 16 and int(kid, 16) >= 0
    assert kid == key_id(key.public_key())
    assert kid != key_id(generate_key().public_key())


def test_unsigned_envelope_is_refused_as_unsigned(key):
    env = dataclasses.replace(_envelope(key), signature=b"")
    assert _refusal(env, trusted_keys([key.public_key()])) == "unsigned"
    env = dataclasses.replace(_envelope(key), key_id="")
    assert _refusal(env, trusted_keys([key.public_key()])) == "unsigned"


def test_envelope_of_untrusted_key_is_refused_as_unknown_key(key):
    other = generate_key()
    with pytest.raises(SignatureError, match="unknown_key: key id .* is not trusted") as info:
        verify(_envelope(other), trusted_keys([key.public_key()]), ReplayGuard(), NOW)
    assert info.value.reason == "unknown_key"


def test_changed_body_or_times_or_seq_is_refused_as_forged(key):
    trusted = trusted_keys([key.public_key()])
    env = _envelope(key)
    tampered = [
        dataclasses.replace(env, body={**BODY, "version": 4}),
        dataclasses.replace(env, expires_ms=env.expires_ms + 1),
        dataclasses.replace(env, issued_ms=env.issued_ms - 1),
        dataclasses.replace(env, seq=2),
        dataclasses.replace(env, signature=bytes(64)),
    ]
    assert [_refusal(t, trusted) for t in tampered] == ["forged"] * len(tampered)


def test_key_id_swapped_to_another_trusted_key_is_refused_as_forged(key):
    other = generate_key()
    env = dataclasses.replace(_envelope(key), key_id=key_id(other.public_key()))
    assert _refusal(env, trusted_keys([key.public_key(), other.public_key()])) == "forged"


def test_body_that_cannot_be_encoded_is_refused_as_forged(key):
    env = dataclasses.replace(_envelope(key), body={"x": object()})
    assert _refusal(env, trusted_keys([key.public_key()])) == "forged"


def test_expired_envelope_is_refused_as_stale(key):
    env = _envelope(key, expires=NOW + 10)
    assert _refusal(env, trusted_keys([key.public_key()]), now=NOW + 10) == "stale"


def test_envelope_issued_beyond_clock_skew_is_refused_as_stale(key):
    trusted = trusted_keys([key.public_key()])
    future = NOW + CLOCK_SKEW_MS + 1
    env = _envelope(key, issued=future, expires=future + 60_000)
    with pytest.raises(SignatureError, match="check the clocks"):
        verify(env, trusted, ReplayGuard(), NOW)
    # within the allowance it is fine
    ok = _envelope(key, issued=NOW + CLOCK_SKEW_MS, expires=NOW + CLOCK_SKEW_MS + 1)
    verify(ok, trusted, ReplayGuard(), NOW)


def test_sign_refuses_expiry_not_after_issue(key):
    with pytest.raises(ValueError, match="must be after issued_ms"):
        _envelope(key, issued=NOW, expires=NOW)


def test_same_envelope_twice_is_refused_as_replayed(key):
    trusted = trusted_keys([key.public_key()])
    guard = ReplayGuard()
    env = _envelope(key, seq=7)
    verify(env, trusted, guard, NOW)
    assert _refusal(env, trusted, guard) == "replayed"


def test_out_of_order_within_window_is_accepted_once(key):
    trusted = trusted_keys([key.public_key()])
    guard = ReplayGuard(window=8)
    for seq in (5, 3, 4):
        verify(_envelope(key, seq=seq), trusted, guard, NOW)
    assert _refusal(_envelope(key, seq=3), trusted, guard) == "replayed"


def test_sequence_older_than_window_is_refused_as_replayed(key):
    trusted = trusted_keys([key.public_key()])
    guard = ReplayGuard(window=8)
    verify(_envelope(key, seq=100), trusted, guard, NOW)
    with pytest.raises(SignatureError, match="older than the replay window"):
        verify(_envelope(key, seq=92), trusted, guard, NOW)
    verify(_envelope(key, seq=93), trusted, guard, NOW)


def test_refused_envelope_does_not_consume_its_sequence(key):
    trusted = trusted_keys([key.public_key()])
    guard = ReplayGuard()
    expired = _envelope(key, seq=1, issued=NOW - 10, expires=NOW)
    assert _refusal(expired, trusted, guard) == "stale"
    verify(_envelope(key, seq=1), trusted, guard, NOW)


def test_replay_window_stays_bounded_per_issuer(key):
    trusted = trusted_keys([key.public_key()])
    guard = ReplayGuard(window=4)
    for seq in range(1, 50):
        verify(_envelope(key, seq=seq), trusted, guard, NOW)
    assert len(guard._seen[key_id(key.public_key())]) <= 4


def test_restored_guard_refuses_sequences_seen_before_a_restart(key):
    trusted = trusted_keys([key.public_key()])
    guard = ReplayGuard(window=8)
    for seq in (10, 12):
        verify(_envelope(key, seq=seq), trusted, guard, NOW)
    restored = ReplayGuard.restore(guard.snapshot(), window=8)
    assert restored.snapshot() == {key_id(key.public_key()): 12}
    assert _refusal(_envelope(key, seq=11), trusted, restored) == "replayed"
    assert _refusal(_envelope(key, seq=12), trusted, restored) == "replayed"
    verify(_envelope(key, seq=13), trusted, restored, NOW)


@given(
    body=st.dictionaries(
        st.text(max_size=5),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=5),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
            max_leaves=8,
        ),
        max_size=4,
    )
)
def test_canonical_bytes_do_not_depend_on_key_order(body):
    reordered = dict(reversed(list(body.items())))
    assert signed_bytes(body, "k", 1, 2, 3) == signed_bytes(reordered, "k", 1, 2, 3)


def test_private_key_round_trips_with_owner_only_mode(tmp_path, key):
    path = tmp_path / "hub.key"
    save_private_key(key, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key_id(load_private_key(path).public_key()) == key_id(key.public_key())


def test_private_key_readable_by_others_is_refused(tmp_path, key):
    path = tmp_path / "hub.key"
    save_private_key(key, path)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="readable by others"):
        load_private_key(path)


def test_public_keys_in_trust_directory_are_loaded_by_key_id(tmp_path, key):
    other = generate_key()
    save_public_key(key.public_key(), tmp_path / "a.pem")
    save_public_key(other.public_key(), tmp_path / "b.pem")
    (tmp_path / "notes.txt").write_text("ignored")
    trusted = load_trusted_keys(tmp_path)
    assert set(trusted) == {key_id(key.public_key()), key_id(other.public_key())}
    verify(_envelope(other), trusted, ReplayGuard(), NOW)


def test_bad_key_files_raise_key_file_error_naming_the_file(tmp_path):
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    garbage.chmod(0o600)
    with pytest.raises(KeyFileError, match="garbage.pem: not a PEM private key"):
        load_private_key(garbage)
    with pytest.raises(KeyFileError, match="garbage.pem: not a PEM public key"):
        load_public_key(garbage)
    with pytest.raises(KeyFileError, match="missing.pem: cannot read"):
        load_public_key(tmp_path / "missing.pem")
    with pytest.raises(KeyFileError, match="not a directory"):
        load_trusted_keys(tmp_path / "nope")
    with pytest.raises(KeyFileError, match="cannot write private key"):
        save_private_key(generate_key(), tmp_path / "nodir" / "k.pem")
    with pytest.raises(KeyFileError, match="cannot write public key"):
        save_public_key(generate_key().public_key(), tmp_path / "nodir" / "k.pem")


def test_non_ed25519_keys_are_refused(tmp_path):
    ec = generate_private_key(SECP256R1())
    priv = tmp_path / "ec.key"
    priv.write_bytes(
        ec.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    priv.chmod(0o600)
    pub = tmp_path / "ec.pem"
    pub.write_bytes(
        ec.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(KeyFileError, match="expected an ed25519 key"):
        load_private_key(priv)
    with pytest.raises(KeyFileError, match="expected an ed25519 key"):
        load_public_key(pub)
