"""Reads the master key ring from its configured text, failing in one line that never echoes it.

The file (`TZUROT_MASTER_KEY_FILE`, a mounted Secret: a regular file behind symlinks) is
read without waiting: a FIFO, a socket or a folder there stops keyvault at start in one line.

Accepted forms:
- one key, 32 bytes as base64 (standard or URL-safe alphabet) or 64 hex digits: version 1;
- one line per version, `<version>:<base64-or-hex>`; blank lines and `#` comments are skipped.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path

from pydantic import SecretStr

from tzurot.keyvault.crypto import KEY_BYTES, MasterKey, MasterKeyRing
from tzurot.runtime.errors import StartupError
from tzurot.runtime.regular_file import read_regular_file

ENV_VALUE = "TZUROT_MASTER_KEY"
ENV_FILE = "TZUROT_MASTER_KEY_FILE"

_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
# Lengths of base64 for 32 bytes (unpadded, padded): a hex-only string of these is base64.
_BASE64_KEY_LENGTHS = (43, 44)
_VERSION = re.compile(r"[1-9][0-9]{0,8}")
_SHAPE = f"master key must be {KEY_BYTES} bytes as base64 or hex"


def read_master_key_text(value: SecretStr | None, file: Path | None) -> SecretStr:
    """The configured master key text, from the env value or the mounted file (not both)."""
    if value is not None and file is not None:
        raise StartupError(f"set only one of {ENV_VALUE} and {ENV_FILE}")
    if file is not None:
        try:
            # Never waits: a FIFO (or a socket, a folder) there is refused, not read.
            data, _ = read_regular_file("master key file", file)
            return SecretStr(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise StartupError(f"master key file {file} is not UTF-8 text") from None
        except OSError as exc:
            reason = (exc.strerror or type(exc).__name__).lower()
            raise StartupError(f"cannot read master key file {file}: {reason}") from None
    if value is None or not value.get_secret_value().strip():
        raise StartupError(f"no master key: set {ENV_VALUE} or {ENV_FILE}")
    return value


def parse_master_key_ring(text: SecretStr) -> MasterKeyRing:
    """Parses one key (version 1) or `<version>:<key>` lines into a ring."""
    lines = [
        (number, line.strip())
        for number, line in enumerate(text.get_secret_value().splitlines(), start=1)
        if line.strip() and not line.strip().startswith("#")
    ]
    if not lines:
        raise StartupError("master key is empty")
    if len(lines) == 1 and ":" not in lines[0][1]:
        return MasterKeyRing.single(_decode_key(lines[0][1], where=""))
    keys: list[MasterKey] = []
    seen: set[int] = set()
    for number, line in lines:
        version_text, sep, encoded = line.partition(":")
        if not sep or not _VERSION.fullmatch(version_text.strip()):
            raise StartupError(
                f"master key line {number}: expected <version>:<base64-or-hex> "
                "with a positive integer version"
            )
        version = int(version_text)
        if version in seen:
            raise StartupError(f"master key version {version} appears twice")
        seen.add(version)
        keys.append(MasterKey(version, _decode_key(encoded.strip(), where=f" (version {version})")))
    return MasterKeyRing(keys)


def _decode_key(encoded: str, *, where: str) -> bytes:
    """32 key bytes from hex or base64; a StartupError stating only the length otherwise."""
    if _HEX.fullmatch(encoded) and len(encoded) not in _BASE64_KEY_LENGTHS:
        raw = bytes.fromhex(encoded)
        if len(raw) != KEY_BYTES:
            raise StartupError(f"{_SHAPE}{where} (got {len(raw)} bytes)")
        return raw
    try:
        normalized = encoded.replace("-", "+").replace("_", "/")
        raw = base64.b64decode(normalized + "=" * (-len(normalized) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise StartupError(f"{_SHAPE}{where} (it is neither)") from None
    if len(raw) != KEY_BYTES:
        raise StartupError(f"{_SHAPE}{where} (got {len(raw)} bytes)")
    return raw


def load_master_key_ring(value: SecretStr | None, file: Path | None) -> MasterKeyRing:
    """Reads and parses the configured master key; every failure is one StartupError line."""
    return parse_master_key_ring(read_master_key_text(value, file))


def master_key_secrets(text: SecretStr) -> list[str]:
    """Every form the master key takes in its text (lines and encoded keys), for redaction."""
    found: list[str] = []
    for line in text.get_secret_value().splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            found += [stripped, stripped.partition(":")[2].strip()]
    return [value for value in found if value]
