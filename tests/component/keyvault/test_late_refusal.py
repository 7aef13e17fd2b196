"""A refusal that arrives after the user stored a new key marks only the key that was read:
a reply reads K1, the user stores K2 (`/wallet set`), then the provider refuses K1. The use
says when the key was read at the earliest (KeyUse.taken_after, the reply's start); keyvault
applies it only to a key stored by then (`api_keys.updated_at`, KeyRecord.stored_at), so K2
stays active and unused. A refusal of the key stored now still marks it, and a use without
the bound (an older gateway) is applied to whatever key is stored, as before. Real
Postgres, through MarkUsed's conversion."""

from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.keyvault import convert
from tzurot.keyvault.crypto import MasterKeyRing
from tzurot.keyvault.domain import KeyRecord
from tzurot.keyvault.service import KeyVault
from tzurot.keyvault.store import PostgresKeyStore
from tzurot.v1 import keyvault_pb2 as kv

pytestmark = pytest.mark.component

K1 = "BSAfirstBraveKey0q7f3e9c1x"
K2 = "BSAsecondBraveKey8h2k4m6n7y"
USER = "5b0c1e7a-4f11-4c6e-9d3b-2a8f0e6d7c15"


def vault(engine: AsyncEngine, ring: MasterKeyRing) -> KeyVault:
    return KeyVault(PostgresKeyStore(engine), ring, caller=lambda: "gateway")


def _ts(at: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(at)
    return ts


async def marked(
    kv_: KeyVault, used_at: datetime, taken_after: datetime | None, *, rejected: bool = True
) -> KeyRecord:
    """Gateway's MarkUsed of one brave use, as keyvault's server reads it; the record after."""
    use = kv.KeyUse(user_id=USER, provider="brave", used_at=_ts(used_at), rejected=rejected)
    if taken_after is not None:
        use.taken_after.CopyFrom(_ts(taken_after))
    request = kv.MarkUsedRequest(uses=[use])
    await kv_.record_uses(convert.key_uses(request, datetime.now(UTC)))
    [record] = await kv_.list_keys(USER)
    return record


async def test_a_late_refusal_of_the_old_key_leaves_the_new_one_active(
    engine: AsyncEngine, ring_v1: MasterKeyRing
) -> None:
    kv_ = vault(engine, ring_v1)
    await kv_.put_key(USER, "brave", SecretStr(K1))
    began = datetime.now(UTC)  # the reply starts; inference reads K1 after this
    stored = await kv_.put_key(USER, "brave", SecretStr(K2))  # /wallet set meanwhile
    assert stored.updated_at > began
    record = await marked(kv_, datetime.now(UTC), began)  # brave refuses K1 now
    assert record.active
    assert record.rejected_at is None
    assert record.last_used_at is None  # K2 was not used either
    assert record.hint == stored.hint


async def test_a_refusal_of_the_key_stored_now_marks_it(
    engine: AsyncEngine, ring_v1: MasterKeyRing
) -> None:
    kv_ = vault(engine, ring_v1)
    await kv_.put_key(USER, "brave", SecretStr(K1))
    stored = await kv_.put_key(USER, "brave", SecretStr(K2))
    began = datetime.now(UTC)  # the reply starts after K2 was stored: it reads K2
    assert stored.updated_at <= began
    refused_at = began + timedelta(seconds=1)
    record = await marked(kv_, refused_at, began)
    assert not record.active
    assert record.rejected_at == refused_at


async def test_a_refusal_from_an_older_gateway_marks_whatever_is_stored(
    engine: AsyncEngine, ring_v1: MasterKeyRing
) -> None:
    kv_ = vault(engine, ring_v1)
    await kv_.put_key(USER, "brave", SecretStr(K1))
    await kv_.put_key(USER, "brave", SecretStr(K2))
    record = await marked(kv_, datetime.now(UTC), None)  # no taken_after: as before
    assert not record.active


async def test_a_use_of_the_old_key_neither_counts_nor_reactivates_the_new_one(
    engine: AsyncEngine, ring_v1: MasterKeyRing
) -> None:
    kv_ = vault(engine, ring_v1)
    await kv_.put_key(USER, "brave", SecretStr(K1))
    began = datetime.now(UTC)
    await kv_.put_key(USER, "brave", SecretStr(K2))
    refused = await marked(kv_, datetime.now(UTC), datetime.now(UTC))  # K2 refused itself
    assert not refused.active
    after = await marked(kv_, datetime.now(UTC), began, rejected=False)  # K1 worked, late
    assert not after.active
    assert after.last_used_at == refused.last_used_at
