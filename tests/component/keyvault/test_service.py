"""KeyVault use-cases against real Postgres: storage, audit, replacement, rewrap."""

import asyncio
import base64
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.keyvault.crypto import MasterKeyRing
from tzurot.keyvault.domain import KeyUse
from tzurot.keyvault.masterkey import load_master_key_ring
from tzurot.keyvault.service import KeyVault
from tzurot.keyvault.store import PostgresKeyStore
from tzurot.keyvault.tables import api_keys, audit_log
from tzurot.runtime.errors import Internal, InvalidArgument, NotFound

pytestmark = pytest.mark.component

PLANTED = "sk-or-v1-planted0123456789abcdefXYZ"


def vault(engine: AsyncEngine, ring: MasterKeyRing, caller: str = "gateway") -> KeyVault:
    return KeyVault(PostgresKeyStore(engine), ring, caller=lambda: caller, default_batch_size=7)


async def rows(engine: AsyncEngine, table: sa.Table) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(sa.select(table))
        return [dict(row._mapping) for row in result]


def user() -> str:
    return str(uuid.uuid4())


async def test_put_list_decrypt_delete(engine: AsyncEngine, ring_v1: MasterKeyRing) -> None:
    kv = vault(engine, ring_v1)
    alice = user()
    record = await kv.put_key(alice, "openrouter", SecretStr(PLANTED))
    assert (record.user_id, record.provider, record.master_key_version) == (alice, "openrouter", 1)
    assert record.hint == "fXYZ"
    assert record.last_used_at is None
    assert record.created_at.tzinfo is not None

    assert [r.provider for r in await kv.list_keys(alice)] == ["openrouter"]
    assert (await kv.decrypt(alice, "openrouter")).get_secret_value() == PLANTED
    await kv.mark_used(alice, "openrouter")
    [listed] = await kv.list_keys(alice)
    assert listed.last_used_at is not None

    assert await kv.delete_key(alice, "openrouter") is True
    assert await kv.delete_key(alice, "openrouter") is False
    assert await kv.list_keys(alice) == []
    with pytest.raises(NotFound) as caught:
        await kv.decrypt(alice, "openrouter")
    assert caught.value.reason == "NO_API_KEY"
    assert caught.value.message == "no openrouter key stored for this user"


async def test_putting_twice_replaces(engine: AsyncEngine, ring_v1: MasterKeyRing) -> None:
    kv = vault(engine, ring_v1)
    bob = user()
    first = await kv.put_key(bob, "openai", SecretStr("sk-first-aaaaaaaaaaaaaaaa"))
    await kv.mark_used(bob, "openai")
    second = await kv.put_key(bob, "openai", SecretStr("sk-second-bbbbbbbbbbbbbbb"))
    assert second.created_at == first.created_at
    assert second.updated_at >= first.updated_at
    assert second.last_used_at is None
    assert second.hint == "bbbb"
    assert len(await kv.list_keys(bob)) == 1
    assert (await kv.decrypt(bob, "openai")).get_secret_value() == "sk-second-bbbbbbbbbbbbbbb"


async def test_ciphertext_never_holds_the_plaintext(
    engine: AsyncEngine, ring_v1: MasterKeyRing
) -> None:
    kv = vault(engine, ring_v1)
    await kv.put_key(user(), "openrouter", SecretStr(PLANTED))
    [row] = await rows(engine, api_keys)
    stored = b"".join(
        bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in row.values()
    )
    assert PLANTED.encode() not in stored
    assert PLANTED[:-4].encode() not in stored
    assert PLANTED.encode().hex().encode() not in stored


async def test_audit_rows_name_caller_and_outcome_never_the_key(
    engine: AsyncEngine, ring_v1: MasterKeyRing
) -> None:
    gateway = vault(engine, ring_v1, caller="gateway")
    inference = vault(engine, ring_v1, caller="inference")
    carol = user()
    await gateway.put_key(carol, "openrouter", SecretStr(PLANTED))
    await inference.decrypt(carol, "openrouter")
    with pytest.raises(NotFound):
        await inference.decrypt(carol, "openai")
    with pytest.raises(InvalidArgument):
        await gateway.put_key(carol, "openrouter", SecretStr(PLANTED + " tail"))
    with pytest.raises(InvalidArgument):
        await gateway.put_key(PLANTED, "openrouter", SecretStr("sk-x"))  # key in the wrong field
    await gateway.delete_key(carol, "nothing")

    audit = await rows(engine, audit_log)
    summary = [(r["caller"], r["method"], r["provider"], r["outcome"]) for r in audit]
    # A provider is named only when a key was found or stored under it (Decrypt's row, written
    # with its read, too: its miss names none).
    assert summary == [
        ("gateway", "PutKey", "openrouter", "ok"),
        ("inference", "Decrypt", "openrouter", "ok"),
        ("inference", "Decrypt", "", "not_found"),
        ("gateway", "PutKey", "", "error"),
        ("gateway", "PutKey", "", "error"),
        ("gateway", "DeleteKey", "", "not_found"),
    ]
    assert [r["user_id"] for r in audit] == [carol] * 4 + ["", carol]
    assert "api_key" in audit[3]["detail"]
    for row in audit:
        assert row["at"].tzinfo is not None
        for value in row.values():
            assert PLANTED not in str(value)
            assert PLANTED[3:20] not in str(value)


async def test_moved_row_fails_to_decrypt(engine: AsyncEngine, ring_v1: MasterKeyRing) -> None:
    kv = vault(engine, ring_v1)
    dave, erin = user(), user()
    await kv.put_key(dave, "openrouter", SecretStr(PLANTED))
    async with engine.begin() as conn:
        await conn.execute(sa.update(api_keys).values(user_id=erin))
    with pytest.raises(Internal) as caught:
        await kv.decrypt(erin, "openrouter")
    assert "authentication failed" in caught.value.message
    assert PLANTED not in repr(caught.value)
    # The row written with the read is corrected: one row for the call, saying how it ended.
    decrypts = [r for r in await rows(engine, audit_log) if r["method"] == "Decrypt"]
    assert [(r["outcome"], r["user_id"]) for r in decrypts] == [("error", erin)]
    assert "authentication failed" in decrypts[0]["detail"]


async def test_rewrap_moves_every_row_to_the_newest_version(
    engine: AsyncEngine, ring_v1: MasterKeyRing, ring_v2: MasterKeyRing
) -> None:
    old = vault(engine, ring_v1)
    keys = {
        (user(), provider): f"sk-key-{i:04d}-{provider}"
        for i in range(25)
        for provider in ("openai", "openrouter")
    }
    for (uid, provider), key in keys.items():
        await old.put_key(uid, provider, SecretStr(key))
    before = {
        (r["user_id"], r["provider"]): bytes(r["nonce"]) for r in await rows(engine, api_keys)
    }

    new = vault(engine, ring_v2, caller="cli")
    progress = [p async for p in new.rewrap(batch_size=8)]
    assert [p.rewrapped for p in progress] == [8, 16, 24, 32, 40, 48, 50]
    assert {(p.master_key_version, p.total) for p in progress} == {(2, 50)}

    after = await rows(engine, api_keys)
    assert {r["master_key_version"] for r in after} == {2}
    assert all(bytes(r["nonce"]) != before[(r["user_id"], r["provider"])] for r in after)
    for (uid, provider), key in keys.items():
        assert (await new.decrypt(uid, provider)).get_secret_value() == key
        with pytest.raises(Internal):  # the old ring lacks version 2
            await old.decrypt(uid, provider)

    again = [p async for p in new.rewrap()]
    assert [(p.rewrapped, p.total) for p in again] == [(0, 0)]
    rewrap_audit = [r for r in await rows(engine, audit_log) if r["method"] == "RewrapKeys"]
    assert [(r["caller"], r["outcome"], r["detail"]) for r in rewrap_audit] == [
        ("cli", "ok", "50 of 50 to version 2"),
        ("cli", "ok", "0 of 0 to version 2"),
    ]


async def test_rewrap_is_online_while_decrypts_and_marks_run(
    engine: AsyncEngine, ring_v1: MasterKeyRing, ring_v2: MasterKeyRing
) -> None:
    old = vault(engine, ring_v1)
    keys = {user(): f"sk-online-{i:04d}-xxxxxxxxxx" for i in range(60)}
    for uid, key in keys.items():
        await old.put_key(uid, "openrouter", SecretStr(key))
    new = vault(engine, ring_v2, caller="inference")
    done = asyncio.Event()
    checked = 0

    async def traffic() -> None:
        nonlocal checked
        while not done.is_set() or checked == 0:
            for uid, key in keys.items():
                assert (await new.decrypt(uid, "openrouter")).get_secret_value() == key
                await new.mark_used(uid, "openrouter")  # takes row locks rewrap must respect
                checked += 1

    async def rewrap() -> list[int]:
        try:
            return [p.rewrapped async for p in vault(engine, ring_v2, "cli").rewrap(batch_size=5)]
        finally:
            done.set()

    readers = [asyncio.create_task(traffic()) for _ in range(3)]
    progress = await rewrap()
    await asyncio.gather(*readers)
    assert progress[-1] == 60
    assert checked >= 60
    assert {r["master_key_version"] for r in await rows(engine, api_keys)} == {2}
    for uid, key in keys.items():
        assert (await new.decrypt(uid, "openrouter")).get_secret_value() == key


async def test_rewrap_resumes_after_an_interruption(
    engine: AsyncEngine, ring_v1: MasterKeyRing, ring_v2: MasterKeyRing
) -> None:
    old = vault(engine, ring_v1)
    for i in range(20):
        await old.put_key(user(), "openai", SecretStr(f"sk-resume-{i:03d}"))
    new = vault(engine, ring_v2, caller="cli")
    stream = new.rewrap(batch_size=6)
    first = await anext(stream)
    await stream.aclose()  # the operator's connection dropped after one batch
    assert first.rewrapped == 6
    versions = [r["master_key_version"] for r in await rows(engine, api_keys)]
    assert sorted(versions) == [1] * 14 + [2] * 6

    progress = [p async for p in new.rewrap(batch_size=6)]
    assert [(p.rewrapped, p.total) for p in progress] == [(6, 14), (12, 14), (14, 14)]
    audit = [r for r in await rows(engine, audit_log) if r["method"] == "RewrapKeys"]
    assert [(r["outcome"], r["detail"]) for r in audit] == [
        ("error", "cancelled (6 of 20 to version 2)"),
        ("ok", "14 of 14 to version 2"),
    ]


async def test_refusals_can_be_audited(engine: AsyncEngine, ring_v1: MasterKeyRing) -> None:
    kv = vault(engine, ring_v1)
    await kv.record_refusal("bot", "Decrypt", "not authorized")
    [row] = await rows(engine, audit_log)
    assert (row["caller"], row["method"], row["outcome"], row["detail"]) == (
        "bot",
        "Decrypt",
        "denied",
        "not authorized",
    )


async def test_two_rewraps_at_once_share_the_work(
    engine: AsyncEngine, ring_v1: MasterKeyRing, ring_v2: MasterKeyRing
) -> None:
    old = vault(engine, ring_v1)
    keys = {user(): f"sk-pair-{i:03d}" for i in range(40)}
    for uid, key in keys.items():
        await old.put_key(uid, "openai", SecretStr(key))

    async def run() -> int:
        progress = [p async for p in vault(engine, ring_v2, "cli").rewrap(batch_size=3)]
        return progress[-1].rewrapped

    first, second = await asyncio.gather(run(), run())
    assert first + second == 40
    new = vault(engine, ring_v2, "inference")
    assert {r["master_key_version"] for r in await rows(engine, api_keys)} == {2}
    for uid, key in keys.items():
        assert (await new.decrypt(uid, "openai")).get_secret_value() == key


def key_line(version: int) -> str:
    return f"{version}:{base64.b64encode(secrets.token_bytes(32)).decode()}\n"


async def test_a_version_added_to_the_key_file_is_picked_up_by_every_replica(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """Rotation with two replicas: one rewraps, the other keeps decrypting without a failure."""
    key_file = tmp_path / "master.key"
    key_file.write_text(key_line(1))

    def source() -> MasterKeyRing:
        return load_master_key_ring(None, key_file)

    def replica(caller: str) -> KeyVault:
        return KeyVault(
            PostgresKeyStore(engine), source(), caller=lambda: caller, ring_source=source
        )

    reader, rotator = replica("inference"), replica("cli")
    keys = {user(): f"sk-replica-{i:04d}-xxxxxxxx" for i in range(30)}
    for uid, key in keys.items():
        await reader.put_key(uid, "openrouter", SecretStr(key))

    key_file.write_text(key_file.read_text() + key_line(2))
    done = asyncio.Event()
    decrypted = 0

    async def traffic() -> None:
        nonlocal decrypted
        while not done.is_set():
            for uid, key in keys.items():
                assert (await reader.decrypt(uid, "openrouter")).get_secret_value() == key
                decrypted += 1

    readers = asyncio.create_task(traffic())
    try:
        progress = [p async for p in rotator.rewrap(batch_size=4)]
    finally:
        done.set()
    await readers
    assert (progress[-1].master_key_version, progress[-1].rewrapped) == (2, 30)
    assert decrypted >= 30
    assert reader.newest_version == 2  # reloaded on meeting a version-2 row
    assert {r["master_key_version"] for r in await rows(engine, api_keys)} == {2}


async def test_a_reload_that_would_lose_a_version_is_refused(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    key_file = tmp_path / "master.key"
    first = key_line(1)
    key_file.write_text(first)
    kv = KeyVault(
        PostgresKeyStore(engine),
        load_master_key_ring(None, key_file),
        caller=lambda: "cli",
        ring_source=lambda: load_master_key_ring(None, key_file),
    )
    uid = user()
    await kv.put_key(uid, "openai", SecretStr(PLANTED))
    for text in (key_line(2), key_line(1) + key_line(2), "not a key\n"):  # v1 gone or changed
        key_file.write_text(text)
        assert not await kv.reload_ring()
        assert (await kv.decrypt(uid, "openai")).get_secret_value() == PLANTED
    key_file.write_text(first + key_line(2))
    assert await kv.reload_ring()
    assert kv.newest_version == 2


async def test_a_batch_of_uses_sets_last_used_and_rejections_make_a_key_inactive(
    engine: AsyncEngine, ring_v1: MasterKeyRing
) -> None:
    kv = vault(engine, ring_v1)
    alice, gone = user(), user()
    await kv.put_key(alice, "openrouter", SecretStr(PLANTED))
    t0 = datetime(2026, 3, 1, 12, tzinfo=UTC)

    touched = await kv.record_uses(
        [
            KeyUse(alice, "openrouter", t0 + timedelta(minutes=5)),
            KeyUse(alice, "openrouter", t0),  # an older use never moves it back
            KeyUse(gone, "openrouter", t0),  # no such key (removed since): skipped
        ]
    )
    [listed] = await kv.list_keys(alice)
    assert touched == 2
    assert listed.last_used_at == t0 + timedelta(minutes=5)
    assert listed.active

    await kv.record_uses([KeyUse(alice, "openrouter", t0 + timedelta(minutes=6), rejected=True)])
    [rejected] = await kv.list_keys(alice)
    assert not rejected.active
    assert rejected.rejected_at == t0 + timedelta(minutes=6)

    # A use that worked before the rejection does not hide it; one after it does.
    await kv.record_uses([KeyUse(alice, "openrouter", t0 + timedelta(minutes=5, seconds=30))])
    assert not (await kv.list_keys(alice))[0].active
    await kv.record_uses([KeyUse(alice, "openrouter", t0 + timedelta(minutes=7))])
    assert (await kv.list_keys(alice))[0].active

    # Storing a new key makes it active again.
    await kv.record_uses([KeyUse(alice, "openrouter", t0 + timedelta(minutes=8), rejected=True)])
    replaced = await kv.put_key(alice, "openrouter", SecretStr("sk-or-a-new-key-0123456789"))
    assert replaced.active
    assert replaced.last_used_at is None


async def test_a_batch_is_validated_whole(engine: AsyncEngine, ring_v1: MasterKeyRing) -> None:
    kv = vault(engine, ring_v1)
    alice = user()
    await kv.put_key(alice, "openrouter", SecretStr(PLANTED))
    now = datetime.now(UTC)
    with pytest.raises(InvalidArgument):
        await kv.record_uses(
            [KeyUse(alice, "openrouter", now, rejected=True), KeyUse(alice, "", now)]
        )
    assert (await kv.list_keys(alice))[0].active  # nothing of the refused batch was applied
