"""AES-256-GCM envelope for user API keys, under a versioned master key ring.

Every encryption draws a fresh random 96-bit nonce. The associated data binds a
ciphertext to (user id, provider, master key version), so a row copied onto another
user, provider or version fails authentication instead of decrypting. Fields are
length-prefixed in the associated data, so no two distinct triples share an encoding.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
AAD_PREFIX = b"tzurot/keyvault/v1\x00"


class KeyDecryptError(Exception):
    """A stored key failed to decrypt: tampered, moved, or wrapped by an unknown version.

    Names the row (user and provider) and the version, never any key bytes.
    """

    def __init__(self, user_id: str, provider: str, version: int, reason: str) -> None:
        self.user_id = user_id
        self.provider = provider
        self.version = version
        super().__init__(
            f"cannot decrypt the {provider} key of user {user_id} "
            f"(master key version {version}): {reason}"
        )


@dataclass(frozen=True)
class MasterKey:
    """One version of the master key. Its repr never shows the key material."""

    version: int
    material: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if self.version < 1:
            raise ValueError("master key version must be a positive integer")
        if len(self.material) != KEY_BYTES:
            raise ValueError(f"master key must be {KEY_BYTES} bytes (got {len(self.material)})")

    def __repr__(self) -> str:
        return f"MasterKey(version={self.version}, material=**********)"


@dataclass(frozen=True)
class SealedKey:
    """What is stored for one key: the wrapping version, the nonce and ciphertext‖tag."""

    master_key_version: int
    nonce: bytes
    ciphertext: bytes


def associated_data(user_id: str, provider: str, version: int) -> bytes:
    """The bytes a ciphertext is bound to: prefix, version, then length-prefixed ids."""
    user = user_id.encode()
    prov = provider.encode()
    return b"".join(
        (
            AAD_PREFIX,
            struct.pack(">I", version),
            struct.pack(">I", len(user)),
            user,
            struct.pack(">I", len(prov)),
            prov,
        )
    )


class MasterKeyRing:
    """Versions of the master key: the newest wraps new keys, every version still unwraps."""

    def __init__(self, keys: Iterable[MasterKey]) -> None:
        ciphers: dict[int, AESGCM] = {}
        digests: dict[int, bytes] = {}
        for key in keys:
            if key.version in ciphers:
                raise ValueError(f"master key version {key.version} appears twice")
            ciphers[key.version] = AESGCM(key.material)
            digests[key.version] = hashlib.sha256(b"tzurot/keyvault/id\x00" + key.material).digest()
        if not ciphers:
            raise ValueError("a master key ring needs at least one key")
        self._ciphers: Mapping[int, AESGCM] = ciphers
        self._digests: Mapping[int, bytes] = digests
        self._newest = max(ciphers)

    @classmethod
    def single(cls, material: bytes) -> MasterKeyRing:
        """A ring of one key, version 1."""
        return cls([MasterKey(1, material)])

    @property
    def newest_version(self) -> int:
        return self._newest

    @property
    def versions(self) -> tuple[int, ...]:
        return tuple(sorted(self._ciphers))

    def __repr__(self) -> str:
        return f"MasterKeyRing(versions={list(self.versions)})"

    def extends(self, other: MasterKeyRing) -> bool:
        """Whether this ring holds every version of `other` with the same key material."""
        return all(self._digests.get(v) == digest for v, digest in other._digests.items())

    def encrypt(self, user_id: str, provider: str, plaintext: SecretStr) -> SealedKey:
        """Wraps `plaintext` under the newest version with a fresh random nonce."""
        version = self._newest
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._ciphers[version].encrypt(
            nonce,
            plaintext.get_secret_value().encode(),
            associated_data(user_id, provider, version),
        )
        return SealedKey(master_key_version=version, nonce=nonce, ciphertext=ciphertext)

    def decrypt(self, user_id: str, provider: str, sealed: SealedKey) -> SecretStr:
        """Unwraps a stored key; raises KeyDecryptError unless it belongs to this row."""
        version = sealed.master_key_version
        cipher = self._ciphers.get(version)
        if cipher is None:
            raise KeyDecryptError(user_id, provider, version, "version not in the key ring")
        if len(sealed.nonce) != NONCE_BYTES or len(sealed.ciphertext) < TAG_BYTES:
            raise KeyDecryptError(user_id, provider, version, "malformed ciphertext")
        try:
            raw = cipher.decrypt(
                sealed.nonce, sealed.ciphertext, associated_data(user_id, provider, version)
            )
        except InvalidTag:
            raise KeyDecryptError(user_id, provider, version, "authentication failed") from None
        try:
            return SecretStr(raw.decode())
        except UnicodeDecodeError:
            raise KeyDecryptError(user_id, provider, version, "not UTF-8 text") from None

    def rewrap(self, user_id: str, provider: str, sealed: SealedKey) -> SealedKey:
        """Re-encrypts a stored key under the newest version (a new nonce, same plaintext)."""
        return self.encrypt(user_id, provider, self.decrypt(user_id, provider, sealed))
