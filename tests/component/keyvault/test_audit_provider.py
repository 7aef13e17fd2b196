"""The audit log names a provider only when the call found or stored a key under it.

A key pasted into the `provider` field (`/wallet remove <key>`) that fits the provider
pattern (an ElevenLabs key: `sk_` and 48 hex, lowercase) must not land in the audit log.
"""

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.keyvault.crypto import MasterKeyRing
from tzurot.keyvault.service import KeyVault
from tzurot.keyvault.store import PostgresKeyStore
from tzurot.keyvault.tables import audit_log
from tzurot.runtime.errors import InvalidArgument, NotFound

pytestmark = pytest.mark.component

EL_KEY = "sk_" + "0123456789abcdef" * 3
HEX_KEY = "0123456789abcdef" * 2  # a legacy ElevenLabs key
PLANTED = "sk-or-v1-planted0123456789abcdefXYZ"


async def audit_rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(sa.select(audit_log).order_by(audit_log.c.id))
        return [dict(row._mapping) for row in result]


@pytest.mark.parametrize("typed", [EL_KEY, HEX_KEY])
async def test_a_key_typed_as_the_provider_never_lands_in_the_audit_log(
    engine: AsyncEngine, ring_v1: MasterKeyRing, typed: str
) -> None:
    kv = KeyVault(PostgresKeyStore(engine), ring_v1, caller=lambda: "gateway")
    alice = str(uuid.uuid4())
    assert await kv.delete_key(alice, typed) is False
    with pytest.raises(NotFound):
        await kv.mark_used(alice, typed)
    with pytest.raises(InvalidArgument):  # the key's own check fails: nothing stored
        await kv.put_key(alice, typed, SecretStr(PLANTED + " tail"))

    rows = await audit_rows(engine)
    assert [(r["method"], r["user_id"], r["provider"], r["outcome"]) for r in rows] == [
        ("DeleteKey", alice, "", "not_found"),
        ("MarkUsed", alice, "", "not_found"),
        ("PutKey", alice, "", "error"),
    ]
    assert rows[1]["detail"] == "no … key stored for this user"
    for row in rows:
        for value in row.values():
            assert typed not in str(value)
            assert typed[:12] not in str(value)


async def test_a_provider_a_key_is_stored_under_is_named(
    engine: AsyncEngine, ring_v1: MasterKeyRing
) -> None:
    kv = KeyVault(PostgresKeyStore(engine), ring_v1, caller=lambda: "gateway")
    alice = str(uuid.uuid4())
    await kv.put_key(alice, "elevenlabs", SecretStr(PLANTED))
    await kv.mark_used(alice, "elevenlabs")
    assert await kv.delete_key(alice, "elevenlabs") is True
    assert await kv.delete_key(alice, "elevenlabs") is False

    rows = await audit_rows(engine)
    assert [(r["method"], r["provider"], r["outcome"]) for r in rows] == [
        ("PutKey", "elevenlabs", "ok"),
        ("MarkUsed", "elevenlabs", "ok"),
        ("DeleteKey", "elevenlabs", "ok"),
        ("DeleteKey", "", "not_found"),  # nothing stored under it for her any more
    ]


@pytest.mark.parametrize("asked", [EL_KEY, "openai"])
async def test_a_decrypt_that_finds_no_key_leaves_the_provider_out(
    engine: AsyncEngine, ring_v1: MasterKeyRing, asked: str
) -> None:
    """Decrypt's row, written with its read, names the provider only when a key was there;
    a miss is audited as the other methods audit one (blank provider, detail unquoted)."""
    gateway = KeyVault(PostgresKeyStore(engine), ring_v1, caller=lambda: "gateway")
    inference = KeyVault(PostgresKeyStore(engine), ring_v1, caller=lambda: "inference")
    alice = str(uuid.uuid4())
    await gateway.put_key(alice, "openrouter", SecretStr(PLANTED))
    with pytest.raises(NotFound):
        await inference.decrypt(alice, asked)
    assert (await inference.decrypt(alice, "openrouter")).get_secret_value() == PLANTED

    rows = await audit_rows(engine)
    assert [
        (r["method"], r["user_id"], r["provider"], r["outcome"], r["detail"]) for r in rows
    ] == [
        ("PutKey", alice, "openrouter", "ok", "master key version 1"),
        ("Decrypt", alice, "", "not_found", "no … key stored for this user"),
        ("Decrypt", alice, "openrouter", "ok", ""),
    ]
    for row in rows:
        for value in row.values():
            assert asked not in str(value)
            assert PLANTED not in str(value)
