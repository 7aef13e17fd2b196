"""Master key text → ring; every bad input is one StartupError line that never echoes it."""

import base64
from pathlib import Path

import pytest
from pydantic import SecretStr

from tzurot.keyvault.crypto import MasterKeyRing
from tzurot.keyvault.masterkey import (
    load_master_key_ring,
    master_key_secrets,
    parse_master_key_ring,
)
from tzurot.runtime.errors import StartupError

K1 = bytes(range(32))
K2 = bytes(range(50, 82))


def ring_of(text: str) -> MasterKeyRing:
    return parse_master_key_ring(SecretStr(text))


@pytest.mark.parametrize(
    "encoded",
    [
        base64.b64encode(K1).decode(),
        base64.b64encode(K1).decode().rstrip("="),
        base64.urlsafe_b64encode(K1).decode(),
        K1.hex(),
        K1.hex().upper(),
        f"\n  {K1.hex()}  \n",
    ],
)
def test_single_key_is_version_one(encoded: str) -> None:
    ring = ring_of(encoded)
    assert ring.versions == (1,)
    sealed = ring.encrypt("u", "p", SecretStr("sk-x"))
    reference = parse_master_key_ring(SecretStr(K1.hex()))
    assert reference.decrypt("u", "p", sealed).get_secret_value() == "sk-x"


def test_versioned_lines_make_a_ring() -> None:
    text = f"# rotated 2025-01-01\n1:{K1.hex()}\n\n2:{base64.b64encode(K2).decode()}\n"
    ring = ring_of(text)
    assert ring.versions == (1, 2)
    assert ring.newest_version == 2
    single = ring_of(f"1:{K1.hex()}")
    old = single.encrypt("u", "p", SecretStr("sk-old"))
    assert ring.decrypt("u", "p", old).get_secret_value() == "sk-old"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (base64.b64encode(K1[:31]).decode(), "got 31 bytes"),
        (base64.b64encode(K1 + b"x").decode(), "got 33 bytes"),
        ("not a key at all!", "it is neither"),
        (K1.hex()[:-1] + "g", "got 48 bytes"),
        ("key=$%^&*", "it is neither"),
        ("   \n# only a comment\n", "empty"),
        (f"1:{K1.hex()}\n1:{K2.hex()}", "version 1 appears twice"),
        (f"0:{K1.hex()}", "line 1"),
        (f"1:{K1.hex()}\nx:{K2.hex()}", "line 2"),
        (f"1:{K1.hex()}\n{K2.hex()}", "line 2"),
        (f"1:{K1.hex()}\n2:{K2.hex()[:60]}", "(version 2) (got 30 bytes)"),
    ],
)
def test_bad_keys_fail_in_one_line_without_the_value(text: str, message: str) -> None:
    with pytest.raises(StartupError) as caught:
        ring_of(text)
    error = str(caught.value)
    assert message in error
    assert "\n" not in error
    for line in text.splitlines():
        for part in line.split(":"):
            if len(part.strip()) >= 8:
                assert part.strip() not in error


def test_exact_message_for_a_short_key() -> None:
    with pytest.raises(
        StartupError, match=r"^master key must be 32 bytes as base64 or hex \(got 31 bytes\)$"
    ):
        ring_of(base64.b64encode(K1[:31]).decode())


def test_load_from_env_value_or_file(tmp_path: Path) -> None:
    mounted = tmp_path / "master.key"
    mounted.write_text(f"1:{K1.hex()}\n2:{K2.hex()}\n")
    assert load_master_key_ring(None, mounted).versions == (1, 2)
    assert load_master_key_ring(SecretStr(K1.hex()), None).versions == (1,)


def test_load_failures(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match=r"^no master key: set TZUROT_MASTER_KEY or"):
        load_master_key_ring(None, None)
    with pytest.raises(StartupError, match=r"^no master key"):
        load_master_key_ring(SecretStr("  "), None)
    with pytest.raises(StartupError, match="set only one of"):
        load_master_key_ring(SecretStr(K1.hex()), tmp_path / "k")
    missing = tmp_path / "absent.key"
    with pytest.raises(StartupError, match=f"cannot read master key file {missing}: no such file"):
        load_master_key_ring(None, missing)
    binary = tmp_path / "binary.key"
    binary.write_bytes(b"\xff\xfe" + K1)
    with pytest.raises(StartupError, match="not UTF-8") as caught:
        load_master_key_ring(None, binary)
    assert K1.hex() not in str(caught.value)


def test_master_key_secrets_cover_lines_and_keys() -> None:
    encoded = base64.b64encode(K2).decode()
    text = SecretStr(f"# comment\n1:{K1.hex()}\n 2: {encoded}\n")
    assert master_key_secrets(text) == [f"1:{K1.hex()}", K1.hex(), f"2: {encoded}", encoded]
