"""A stored key's store time (KeyRecord.stored_at, `api_keys.updated_at`) moves on every
write of the key, the same key stored again too, and on nothing else (a use, a rejection, a
rewrap): gateway's read-back of an unconfirmed `/wallet set` tells by it whether its write
landed (key_landing.py). Real Postgres."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.keyvault import convert
from tzurot.keyvault.crypto import MasterKeyRing
from tzurot.keyvault.domain import KeyUse
from tzurot.keyvault.service import KeyVault
from tzurot.keyvault.store import PostgresKeyStore
from tzurot.keyvault.tables import api_keys

pytestmark = pytest.mark.component

KEY = "sk-or-v1-planted0123456789abcdefXYZ"
USER = "5b0c1e7a-4f11-4c6e-9d3b-2a8f0e6d7c15"


def vault(engine: AsyncEngine, ring: MasterKeyRing) -> KeyVault:
    return KeyVault(PostgresKeyStore(engine), ring, caller=lambda: "gateway")


async def test_the_same_key_stored_again_has_a_later_store_time(
    engine: AsyncEngine, ring_v1: MasterKeyRing
) -> None:
    kv = vault(engine, ring_v1)
    first = await kv.put_key(USER, "openrouter", SecretStr(KEY))
    again = await kv.put_key(USER, "openrouter", SecretStr(KEY))
    assert again.hint == first.hint
    assert again.updated_at > first.updated_at
    [listed] = await kv.list_keys(USER)
    wire = convert.key_record(listed)
    assert wire.stored_at.ToDatetime(tzinfo=UTC) == again.updated_at
    assert wire.stored_at != convert.key_record(first).stored_at


async def test_a_clock_stepped_back_still_moves_it_forward(
    engine: AsyncEngine, ring_v1: MasterKeyRing
) -> None:
    kv = vault(engine, ring_v1)
    await kv.put_key(USER, "openrouter", SecretStr(KEY))
    ahead = datetime.now(UTC) + timedelta(hours=1)  # as if the clock stepped back since
    async with engine.begin() as conn:
        await conn.execute(sa.update(api_keys).values(updated_at=ahead))
    again = await kv.put_key(USER, "openrouter", SecretStr(KEY))
    assert again.updated_at > ahead


async def test_uses_rejections_and_rewraps_leave_it(
    engine: AsyncEngine, ring_v1: MasterKeyRing, ring_v2: MasterKeyRing
) -> None:
    kv = vault(engine, ring_v1)
    stored = await kv.put_key(USER, "openrouter", SecretStr(KEY))
    now = datetime.now(UTC)
    await kv.mark_used(USER, "openrouter")
    await kv.record_uses([KeyUse(USER, "openrouter", now + timedelta(seconds=1), rejected=True)])
    await kv.record_uses([KeyUse(USER, "openrouter", now + timedelta(seconds=2))])
    _ = [progress async for progress in vault(engine, ring_v2).rewrap(batch_size=8)]
    [listed] = await vault(engine, ring_v2).list_keys(USER)
    assert listed.master_key_version == 2
    assert listed.updated_at == stored.updated_at
