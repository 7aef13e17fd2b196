"""AES-256-GCM under the master key ring: round trips, tamper and swap detection."""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from tzurot.keyvault.crypto import (
    KEY_BYTES,
    NONCE_BYTES,
    KeyDecryptError,
    MasterKey,
    MasterKeyRing,
    SealedKey,
    associated_data,
)

V1 = bytes(range(32))
V2 = bytes(range(100, 132))
RING = MasterKeyRing([MasterKey(1, V1), MasterKey(2, V2)])

# No per-example deadline: a slow CI machine must not fail a correctness property.
no_deadline = settings(deadline=None)

key_text = st.text(min_size=1, max_size=300)
ids = st.text(min_size=1, max_size=40)
providers = st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,20}", fullmatch=True)


@no_deadline
@given(key_text, ids, providers)
def test_round_trip_for_any_key_text(plaintext: str, user_id: str, provider: str) -> None:
    sealed = RING.encrypt(user_id, provider, SecretStr(plaintext))
    assert sealed.master_key_version == 2
    assert len(sealed.nonce) == NONCE_BYTES
    assert plaintext.encode() not in sealed.ciphertext or len(plaintext.encode()) < 8
    assert RING.decrypt(user_id, provider, sealed).get_secret_value() == plaintext


def _flip(data: bytes, bit: int) -> bytes:
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


@no_deadline
@given(key_text, st.data())
def test_any_flipped_bit_fails(plaintext: str, data: st.DataObject) -> None:
    sealed = RING.encrypt("user-1", "openrouter", SecretStr(plaintext))
    # The ciphertext field holds ciphertext then the 16-byte tag: flipping anywhere in it
    # covers both; the nonce is its own field.
    target = data.draw(st.sampled_from(["nonce", "ciphertext"]))
    original = getattr(sealed, target)
    bit = data.draw(st.integers(0, len(original) * 8 - 1))
    if target == "nonce":
        tampered = SealedKey(sealed.master_key_version, _flip(original, bit), sealed.ciphertext)
    else:
        tampered = SealedKey(sealed.master_key_version, sealed.nonce, _flip(original, bit))
    with pytest.raises(KeyDecryptError):
        RING.decrypt("user-1", "openrouter", tampered)


@no_deadline
@given(key_text, ids, ids, providers, providers)
def test_swapped_rows_fail(
    plaintext: str, user: str, other_user: str, provider: str, other_provider: str
) -> None:
    sealed = RING.encrypt(user, provider, SecretStr(plaintext))
    if other_user != user:
        with pytest.raises(KeyDecryptError):
            RING.decrypt(other_user, provider, sealed)
    if other_provider != provider:
        with pytest.raises(KeyDecryptError):
            RING.decrypt(user, other_provider, sealed)
    relabelled = SealedKey(1, sealed.nonce, sealed.ciphertext)
    with pytest.raises(KeyDecryptError):
        RING.decrypt(user, provider, relabelled)


def test_version_relabel_fails_even_with_the_same_key_material() -> None:
    """The version is bound by associated data, not only by which key is picked."""
    ring = MasterKeyRing([MasterKey(1, V1), MasterKey(2, V1)])
    sealed = ring.encrypt("u", "openrouter", SecretStr("sk-secret"))
    with pytest.raises(KeyDecryptError):
        ring.decrypt("u", "openrouter", SealedKey(1, sealed.nonce, sealed.ciphertext))


def test_associated_data_is_unambiguous() -> None:
    assert associated_data("a\x00b", "c", 1) != associated_data("a", "b\x00c", 1)
    assert associated_data("u", "p", 1) != associated_data("u", "p", 2)


def test_nonces_are_fresh() -> None:
    nonces = {RING.encrypt("u", "p", SecretStr("same")).nonce for _ in range(200)}
    assert len(nonces) == 200


def test_older_versions_still_decrypt_and_rewrap_moves_to_newest() -> None:
    old_ring = MasterKeyRing.single(V1)
    sealed = old_ring.encrypt("u", "openrouter", SecretStr("sk-or-v1-abc"))
    assert sealed.master_key_version == 1
    assert RING.decrypt("u", "openrouter", sealed).get_secret_value() == "sk-or-v1-abc"
    moved = RING.rewrap("u", "openrouter", sealed)
    assert moved.master_key_version == 2
    assert moved.nonce != sealed.nonce
    assert RING.decrypt("u", "openrouter", moved).get_secret_value() == "sk-or-v1-abc"
    with pytest.raises(KeyDecryptError, match="version not in the key ring"):
        old_ring.decrypt("u", "openrouter", moved)


def test_decrypt_error_names_the_row_but_no_key_bytes() -> None:
    sealed = RING.encrypt("user-7", "openai", SecretStr("sk-planted-secret"))
    tampered = SealedKey(2, sealed.nonce, _flip(sealed.ciphertext, 0))
    with pytest.raises(KeyDecryptError) as caught:
        RING.decrypt("user-7", "openai", tampered)
    text = str(caught.value) + repr(caught.value)
    assert "user-7" in text
    assert "openai" in text
    for secret in (V1, V2, sealed.ciphertext, sealed.nonce):
        assert secret.hex() not in text
        assert repr(secret) not in text
    assert "sk-planted-secret" not in text


def test_malformed_rows_fail_cleanly() -> None:
    with pytest.raises(KeyDecryptError, match="malformed"):
        RING.decrypt("u", "p", SealedKey(2, b"short", b"x" * 32))
    with pytest.raises(KeyDecryptError, match="malformed"):
        RING.decrypt("u", "p", SealedKey(2, os.urandom(12), b"x"))


def test_master_key_repr_hides_material() -> None:
    key = MasterKey(3, V2)
    for text in (repr(key), str(key), repr(RING), str(RING), repr([key])):
        assert V2.hex() not in text
        assert repr(V2) not in text
        assert "100" not in text  # first byte of V2 in any list-of-ints rendering
    assert "version=3" in repr(key)


def test_master_key_rejects_wrong_sizes_and_versions() -> None:
    with pytest.raises(ValueError, match=f"{KEY_BYTES} bytes"):
        MasterKey(1, b"x" * 31)
    with pytest.raises(ValueError, match="positive"):
        MasterKey(0, V1)
    with pytest.raises(ValueError, match="appears twice"):
        MasterKeyRing([MasterKey(1, V1), MasterKey(1, V2)])
    with pytest.raises(ValueError, match="at least one"):
        MasterKeyRing([])
